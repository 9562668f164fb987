            // (conv1x1_squeeze.wgsl's `load_b`: up to four pixels of one image.)
            var bv = vec4<f32>(0.0);
            if (kb < K && live) {
                bv = load_quad(qbase + kb * HW, HW - pq);
            }
            rb = bv;
