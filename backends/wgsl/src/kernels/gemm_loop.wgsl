    // (The k-loop of the GEMM conv kernels, shared by conv.wgsl, conv1x1.wgsl and
    // conv1x1_squeeze.wgsl; `load_b` is each kernel's B quad for k-row `kb` into `rb`.)
    // Software pipelining: the loads of the next k-step's A and B quads (into registers) are
    // issued before the FMAs of the current one, which hide their latency.
    var ra: array<vec4<f32>, MQ>;
    var rb = vec4<f32>(0.0);
    var kf = kbeg;
    loop {
        if (kf < kend) {
            let wrow = ((g * KPAD + kf + lk) * MPAD + m0) / 4u + lq;
{{load_a}}
            let kb = kf + lk;
{{load_b}}
        }
        if (kf > kbeg) {
{{gemm_step}}
            workgroupBarrier();
        }
        if (kf >= kend) {
            break;
        }
{{stash}}
        Bs[tid] = rb;
        workgroupBarrier();
        kf = kf + 16u;
    }
