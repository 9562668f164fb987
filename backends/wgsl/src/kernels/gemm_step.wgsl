        // One 16-deep k-step of the 64x64 tile from workgroup memory: each thread adds its 4x4
        // block's outer products (shared by conv.wgsl, conv1x1.wgsl and conv1x1_squeeze.wgsl;
        // conv.rs fills their `gemm_step` hole with this file).
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            let a = As[kk * 16u + ty];
            let bq = Bs[kk * 16u + tx];
            acc[0] = acc[0] + a.x * bq;
            acc[1] = acc[1] + a.y * bq;
            acc[2] = acc[2] + a.z * bq;
            acc[3] = acc[3] + a.w * bq;
        }
        workgroupBarrier();
