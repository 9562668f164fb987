    // (se_fc's `squeeze`: the producing conv wrote partial sums per channel: TILES per image,
    // or, over tiles straddling images, one per image each tile meets; {{lanes}} lanes per
    // channel add those of image n, then their sums are added in workgroup memory.)
{{setup}}
    let sl = t % {{lanes}};
    for (var c0 = 0u; c0 < C; c0 = c0 + 256u / {{lanes}}) {
        let c = c0 + t / {{lanes}};
        var s = 0.0;
        if (c < C) {
            for (var i = {{first}} + sl; i < {{end}}; i = i + {{lanes}}) {
                s = s + partials[{{index}}];
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
