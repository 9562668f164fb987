    // (splitk_squeeze's `squeeze`: the lanes' sums of each plane, added in workgroup memory.)
{{sum}}
    if (lane == 0u && c < COUT) {
        partials[(img * CHUNKS + wg.z) * COUT + c] = red[lid.x];
    }
