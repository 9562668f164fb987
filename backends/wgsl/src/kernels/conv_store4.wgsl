    // (outputs {{r}}: row {{i}} of the thread's 64-row block {{blk}}, its four columns, one
    // aligned quad of one image)
    {
        let i = {{i}}u;
        let m = m0 + {{blk}}u * 64u + ty * 4u + i;
        let n = n0 + tx * 4u;
        if (m < MG && n < NTOT) {
            let c = g * MG + m;
            let o0 = ((n / HW) * COUT + c) * HW + n % HW;
            var q = acc[{{r}}];
{{lanes}}
            y[({{ysplit}}o0) / 4u] = q;
        }
    }
