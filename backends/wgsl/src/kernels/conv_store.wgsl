    // (output {{r}}.{{lane}}: row {{i}} of the thread's 64-row block {{blk}}, its column {{j}})
    {
        let i = {{i}}u;
        let m = m0 + {{blk}}u * 64u + ty * 4u + i;
        let n = n0 + {{col}};
        if (m < MG && n < NTOT) {
            let c = g * MG + m;
            let o = ((n / HW) * COUT + c) * HW + n % HW;
            var v = acc[{{r}}].{{lane}};
{{epilogue}}
            y[{{ysplit}}o] = v;
{{rowsum}}
        }
    }
