    // (splitk_squeeze's `squeeze`: the lanes' sums of each plane.)
    let total = plane_sum(s, lane, lid.x / THREADS);
    if (lane == 0u && c < COUT) {
        partials[(img * CHUNKS + wg.z) * COUT + c] = total;
    }
