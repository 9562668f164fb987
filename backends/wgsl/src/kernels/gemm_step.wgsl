        // One 16-deep k-step of the (64 * MQ) x 64 tile from workgroup memory: each thread adds
        // its (4 * MQ) x 4 block's outer products, reusing each B quad for MQ A quads (shared by
        // conv.wgsl, conv1x1.wgsl and conv1x1_squeeze.wgsl; conv.rs fills their `gemm_step`
        // hole with this file).
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let bq = Bs[kk * 16u + tx];
            for (var q = 0u; q < MQ; q = q + 1u) {
                let a = As[(kk * MQ + q) * 16u + ty];
                acc[q * 4u] = acc[q * 4u] + a.x * bq;
                acc[q * 4u + 1u] = acc[q * 4u + 1u] + a.y * bq;
                acc[q * 4u + 2u] = acc[q * 4u + 2u] + a.z * bq;
                acc[q * 4u + 3u] = acc[q * 4u + 3u] + a.w * bq;
            }
        }
        workgroupBarrier();
