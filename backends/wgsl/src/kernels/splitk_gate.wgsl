    // (splitk_squeeze's `gate`: this plane's SE gate, the block folded into this conv.)
    var ga = 0.0;
    if (c < COUT) {
        for (var j = lane; j < {{cr}}; j = j + THREADS) {
            ga = ga + se_w2[c * {{cr}} + j] * se_z[img * {{cr}} + j];
        }
    }
    red[lid.x] = ga;
    workgroupBarrier();
    for (var w = THREADS / 2u; w > 0u; w = w / 2u) {
        if (lane < w) {
            red[lid.x] = red[lid.x] + red[lid.x + w];
        }
        workgroupBarrier();
    }
    let gv = red[lid.x - lane] + {{b2}};
    let g = {{gate}};
    workgroupBarrier();
