    // (se_fc's `squeeze`: the producing conv wrote TILES partial sums per channel and image;
    // {{lanes}} lanes per channel add them, then their sums are added in workgroup memory.)
    let sl = t % {{lanes}};
    for (var c0 = 0u; c0 < C; c0 = c0 + 256u / {{lanes}}) {
        let c = c0 + t / {{lanes}};
        var s = 0.0;
        if (c < C) {
            for (var i = sl; i < TILES; i = i + {{lanes}}) {
                s = s + partials[(n * TILES + i) * C + c];
            }
        }
        red[t] = s;
        workgroupBarrier();
        if (sl == 0u && c < C) {
            var a = 0.0;
            for (var k = 0u; k < {{lanes}}; k = k + 1u) {
                a = a + red[t + k];
            }
            sm[c] = a * SCALE;
        }
        workgroupBarrier();
    }
