    // (se_fc's `squeeze`: read image n itself, eight channels at a time, 32 neighbouring pixels
    // per channel per step.)
    for (var c0 = 0u; c0 < C; c0 = c0 + 8u) {
        let c = c0 + t / 32u;
        let pl = t % 32u;
        var s = 0.0;
        if (c < C) {
            for (var p = pl; p < HW; p = p + 32u) {
                s = s + x[(n * C + c) * HW + p];
            }
        }
        red[t] = s;
        workgroupBarrier();
        if (pl == 0u && c < C) {
            var a = 0.0;
            for (var i = 0u; i < 32u; i = i + 1u) {
                a = a + red[t + i];
            }
            sm[c] = a * SCALE;
        }
        workgroupBarrier();
    }
