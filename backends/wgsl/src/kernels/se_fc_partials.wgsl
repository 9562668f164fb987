    // (se_fc's `squeeze`: the producing conv wrote partial sums per channel: TILES per image,
    // or, over tiles straddling images, one per image each tile meets; {{lanes}} lanes per
    // channel add those of image n, then their sums are added in workgroup memory.)
{{setup}}
    let sl = t % {{lanes}};
    for (var c0 = 0u; c0 < SE_C; c0 = c0 + 256u / {{lanes}}) {
        let c = c0 + t / {{lanes}};
        var s = 0.0;
        if (c < SE_C) {
            for (var i = {{first}} + sl; i < {{end}}; i = i + {{lanes}}) {
                s = s + se_partials[{{index}}];
            }
        }
        se_red[t] = s;
        workgroupBarrier();
        if (sl == 0u && c < SE_C) {
            var a = 0.0;
            for (var k = 0u; k < {{lanes}}; k = k + 1u) {
                a = a + se_red[t + k];
            }
            se_sm[c] = a * SE_SCALE;
        }
        workgroupBarrier();
    }
