    // (se_fc's `squeeze`: the producing conv wrote {{parts}} partial sums per 64-column tile, for
    // the tile's first image and the next ones; add those of the tiles meeting image n.)
    let ta = (n * HW) / 64u;
    let tb = ((n + 1u) * HW - 1u) / 64u;
    for (var c = t; c < C; c = c + 256u) {
        var s = 0.0;
        for (var i = ta; i <= tb; i = i + 1u) {
            s = s + partials[(i * {{parts}} + n - (i * 64u) / HW) * C + c];
        }
        sm[c] = s * SCALE;
    }
