    // (se_fc's `squeeze`: the producing conv wrote {{parts}} partial sums per 64-column tile, for
    // the tile's first image and the next ones; {{lanes}} lanes per channel add those of the
    // tiles meeting image n, then their sums are added in workgroup memory.)
    let ta = (n * HW) / 64u;
    let tb = ((n + 1u) * HW - 1u) / 64u;
    let sl = t % {{lanes}};
    for (var c0 = 0u; c0 < C; c0 = c0 + 256u / {{lanes}}) {
        let c = c0 + t / {{lanes}};
        var s = 0.0;
        if (c < C) {
            for (var i = ta + sl; i <= tb; i = i + {{lanes}}) {
                s = s + partials[(i * {{parts}} + n - (i * 64u) / HW) * C + c];
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
