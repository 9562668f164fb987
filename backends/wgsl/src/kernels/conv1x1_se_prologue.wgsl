            // (conv1x1's `prologue`: the SE block that produced this input left its scale
            // here. Apply gate, residual and act to the quad; the first row of workgroups also
            // stores the result, the SE block's output, for its other readers.)
            let xi = (qbase + kb * HW) / 4u;
            let g = gates[(nq / HW) * CIN + kb];
{{load_res}}
            var out: vec4<f32>;
            for (var j = 0u; j < 4u; j = j + 1u) {
                var v = bv[j];
{{epilogue}}
                out[j] = v;
            }
            bv = out;
            if (wg.y == 0u) {
                ymat[xi] = bv;
            }
