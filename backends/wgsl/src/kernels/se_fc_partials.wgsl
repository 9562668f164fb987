    // (se_fc's `squeeze`: the producing conv wrote TILES partial sums per channel and image.)
    for (var c = t; c < C; c = c + 256u) {
        var s = 0.0;
        for (var i = 0u; i < TILES; i = i + 1u) {
            s = s + partials[(n * TILES + i) * C + c];
        }
        sm[c] = s * SCALE;
    }
