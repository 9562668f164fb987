    // (se_scale's `finish`: y = post_act(x * gate + r) over this block's channel planes, WIDTH
    // elements per access.)
    let count = min(CB, C - c0) * HW / WIDTH;
    let base = (n * C + c0) * HW / WIDTH;
    for (var e = t; e < count; e = e + 256u) {
        let q = base + e;
        let g = gs[e * WIDTH / HW];
        let xq = x[q];
{{load_res}}
        var out: {{vt}};
        for (var j = 0u; j < WIDTH; j = j + 1u) {
            var v = {{xj}};
{{epilogue}}
            {{outj}} = v;
        }
        y[q] = out;
    }
