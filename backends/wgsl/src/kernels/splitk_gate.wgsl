    // (splitk_squeeze's `gate`: this plane's SE gate, the block folded into this conv.)
    var ga = 0.0;
    if (c < COUT) {
        for (var j = lane; j < {{cr}}; j = j + THREADS) {
            ga = ga + se_w2[c * {{cr}} + j] * se_z[img * {{cr}} + j];
        }
    }
{{sum}}
    let gv = red[lid.x - lane] + {{b2}};
    let g = {{gate}};
    workgroupBarrier();
