            // One 16-deep k-step of the (64 * MQ) x 64 tile from workgroup memory: each thread
            // adds its (4 * MQ) x 4 block's outer products, each B quad feeding MQ A quads
            // (shared by conv.wgsl, conv1x1.wgsl and conv1x1_squeeze.wgsl; conv.rs fills `fma`
            // with straight-line code for the MQ quads).
            for (var kk = 0u; kk < 16u; kk = kk + 1u) {
                let bq = Bs[kk * 16u + tx];
{{fma}}
            }
