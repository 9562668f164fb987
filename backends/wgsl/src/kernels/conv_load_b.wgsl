            // (conv.wgsl's `load_b`: the four columns' window pixels of k-row kb, gathered.)
            var bv = vec4<f32>(0.0);
            if (kb < K) {
                let kx = kb % KW;
                let ky = (kb / KW) % KH;
                let ci = kb / (KW * KH);
                let dy = i32(ky * DH);
                let dx = i32(kx * DW);
                let coff = ci * u32(H * W);
{{gather}}
            }
            rb = bv;
