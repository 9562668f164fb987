    // (splitk_squeeze's `squeeze`: the lanes' sums of each plane, added in workgroup memory.)
    red[lid.x] = s;
    workgroupBarrier();
    for (var w = THREADS / 2u; w > 0u; w = w / 2u) {
        if (lane < w) {
            red[lid.x] = red[lid.x] + red[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lane == 0u && c < COUT) {
        partials[(img * CHUNKS + wg.z) * COUT + c] = red[lid.x];
    }
