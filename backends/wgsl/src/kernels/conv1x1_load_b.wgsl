            // (conv1x1.wgsl's `load_b`: one aligned quad, with a deferred SE scale if any.)
            var bv = vec4<f32>(0.0);
            if (kb < K && live) {
                bv = x4[(qbase + kb * HW) / 4u];
{{prologue}}
            }
            rb = bv;
