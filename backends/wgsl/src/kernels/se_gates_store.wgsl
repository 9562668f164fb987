    // (se_gates' `finish`: the next 1x1 conv applies the scale as it loads; store the gates.)
    if (lane == 0u && c0 + cb < C) {
        gates[n * C + c0 + cb] = gs[cb];
    }
