    // (se_fc's `squeeze`: read image n itself, eight channels at a time, 32 neighbouring pixels
    // per channel per step.)
    for (var c0 = 0u; c0 < SE_C; c0 = c0 + 8u) {
        let c = c0 + t / 32u;
        let pl = t % 32u;
        var s = 0.0;
        if (c < SE_C) {
            for (var p = pl; p < SE_HW; p = p + 32u) {
                s = s + se_x[(n * SE_C + c) * SE_HW + p];
            }
        }
        se_red[t] = s;
        workgroupBarrier();
        if (pl == 0u && c < SE_C) {
            var a = 0.0;
            for (var i = 0u; i < 32u; i = i + 1u) {
                a = a + se_red[t + i];
            }
            se_sm[c] = a * SE_SCALE;
        }
        workgroupBarrier();
    }
