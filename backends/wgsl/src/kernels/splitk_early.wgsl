    // (splitk_squeeze's `early`: the first unit's partial products, loaded before the gate.)
    if (c < COUT && q0 < qe) {
        let ou0 = (img * COUT + c) * HWU + q0;
        for (var k = 0u; k < KS; k = k + 1u) {
            t0 = t0 + part[k * SLABU + ou0];
        }
    }
