//! Every op and fused op on the GPU (lavapipe in CI) against the reference interpreter, with
//! random shapes and attributes; each test counts the cases it compared.

mod gpu_common;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{Act, FusedConv, Op, SeBlock};
use gpu_common::Builder;
use rand::Rng;

const TOL: f64 = 1e-4;

fn acts() -> Vec<Act> {
    vec![
        Act::Relu,
        Act::Sigmoid,
        Act::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        Act::HardSwish,
        Act::Silu,
        Act::Clip {
            min: -0.5,
            max: 0.75,
        },
    ]
}

/// Random conv attributes for `c` input channels; returns (attrs, out channels, kernel).
fn random_conv(b: &mut Builder, c: usize, depthwise: bool) -> (Conv, usize, [usize; 2]) {
    let r = &mut b.rng;
    let group = match (
        depthwise,
        c.is_multiple_of(2) && r.random_bool(0.6),
        r.random_bool(0.5),
    ) {
        (true, _, _) => c,
        (false, true, true) => 2,
        (false, true, false) => c / 2,
        _ => 1,
    };
    let m = if depthwise {
        c
    } else {
        group * r.random_range(1..=40usize)
    };
    let k = [
        r.random_range(1..=3usize) * 2 - 1,
        r.random_range(1..=3usize) * 2 - 1,
    ];
    let conv = Conv {
        strides: [r.random_range(1..=2), r.random_range(1..=2)],
        pads: [
            r.random_range(0..=2),
            r.random_range(0..=2),
            r.random_range(0..=2),
            r.random_range(0..=2),
        ],
        dilations: [if k[0] <= 3 { r.random_range(1..=2) } else { 1 }, 1],
        group,
    };
    (conv, m, k)
}

#[test]
fn convolutions_match_the_interpreter() {
    let mut cases = 0;
    for seed in 0..16u64 {
        let depthwise = seed % 3 == 2;
        let mut b = Builder::new(&format!("conv{seed}"), seed, 1 + (seed as usize % 3));
        let c = b.rng.random_range(1..=9usize) * if depthwise { 1 } else { 2 };
        let (h, w) = (
            b.rng.random_range(6..=13usize),
            b.rng.random_range(6..=13usize),
        );
        let x = b.input("x", &[c, h, w]);
        let (conv, m, k) = random_conv(&mut b, c, depthwise);
        let wt = b.weight(&[m, c / conv.group, k[0], k[1]]);
        let mut ins = vec![x, wt];
        if seed % 2 == 0 {
            ins.push(b.weight(&[m]));
        }
        let y = b.node(Op::Conv(conv), &ins);
        cases += usize::from(b.check(y, TOL));
    }
    eprintln!("compared {cases} convolutions");
}

#[test]
fn fused_convs_match_the_interpreter() {
    let mut cases = 0;
    for (i, act) in acts().into_iter().enumerate() {
        let seed = 100 + i as u64;
        let depthwise = i % 3 == 1;
        let mut b = Builder::new(&format!("fused{i}"), seed, 2);
        let c = if depthwise { 6 } else { 4 };
        let x = b.input("x", &[c, 9, 7]);
        let (conv, m, k) = random_conv(&mut b, c, depthwise);
        let wt = b.weight(&[m, c / conv.group, k[0], k[1]]);
        let bias = b.weight(&[m]);
        let residual = i % 2 == 0;
        let mut ins = vec![x, wt, bias];
        // The residual has the output's shape: compute it with the same conv, unfused.
        if residual {
            let r = b.node(Op::Conv(conv.clone()), &[x, wt]);
            ins.push(r);
        }
        let f = FusedConv {
            conv,
            bias: true,
            act: Some(act),
            residual,
            post_act: residual.then_some(Act::Relu),
        };
        let y = b.node(Op::FusedConv(f), &ins);
        cases += usize::from(b.check(y, TOL));
    }
    eprintln!("compared {cases} fused convolutions");
}

#[test]
fn se_blocks_match_the_interpreter() {
    let gates = [
        Act::Sigmoid,
        Act::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
    ];
    let mut cases = 0;
    for seed in 0..16u64 {
        let mut b = Builder::new(&format!("se{seed}"), 200 + seed, 1 + seed as usize % 3);
        // The workgroup sums by radix-16 (the default), radix-4 and halving trees.
        b.tune = match seed % 4 {
            1 | 3 => |l| l.tree_radix = 4,
            2 => |l| l.tree_radix = 2,
            _ => |_| {},
        };
        // Odd C; the last seeds are wide (more than 256 gates per workgroup, several groups of
        // eight hidden units).
        let wide = seed >= 14;
        let c = b
            .rng
            .random_range(if wide { 150..=350usize } else { 1..=40 })
            * 2
            + 1;
        let cr = b.rng.random_range(if wide { 17..=48usize } else { 1..=8 });
        let (h, w) = if seed % 4 == 0 || seed == 15 {
            (1, 1)
        } else {
            (b.rng.random_range(1..=20), b.rng.random_range(1..=20))
        };
        let x = b.input("x", &[c, h, w]);
        let se = SeBlock {
            act: acts()[seed as usize % 6],
            gate: gates[seed as usize % 2],
            bias1: seed % 3 != 0,
            bias2: seed % 5 != 0,
            residual: seed % 2 == 1,
            post_act: (seed % 4 == 1).then_some(Act::Relu),
        };
        let mut ins = vec![x, b.weight(&[cr, c, 1, 1])];
        if se.bias1 {
            ins.push(b.weight(&[cr]));
        }
        ins.push(b.weight(&[c, cr, 1, 1]));
        if se.bias2 {
            ins.push(b.weight(&[c]));
        }
        if se.residual {
            let r = b.node(Op::Relu, &[x]);
            ins.push(r);
        }
        let y = b.node(Op::SeBlock(se), &ins);
        cases += usize::from(b.check(y, TOL));
    }
    eprintln!("compared {cases} SE blocks");
}

#[test]
fn elementwise_ops_match_the_interpreter() {
    let mut cases = 0;
    for (i, act) in acts().into_iter().enumerate() {
        let mut b = Builder::new(&format!("act{i}"), 300 + i as u64, 2);
        let x = b.input("x", &[3, 5, 7]);
        let y = b.node(act.to_op(), &[x]);
        cases += usize::from(b.check(y, TOL));
    }
    let binaries = [Op::Add, Op::Sub, Op::Mul, Op::Div];
    let others: [&[usize]; 4] = [&[3, 1, 1], &[7], &[1, 5, 1], &[3, 5, 7]];
    for (i, (op, shape)) in binaries.into_iter().zip(others).enumerate() {
        let mut b = Builder::new(&format!("bin{i}"), 310 + i as u64, 2);
        let x = b.input("x", &[3, 5, 7]);
        let w = b.weight_in(shape, 0.5, 1.5);
        let y = b.node(op, &[x, w]);
        cases += usize::from(b.check(y, TOL));
    }
    let mut b = Builder::new("expand", 320, 3);
    let x = b.input("x", &[4, 1]);
    let y = b.node(
        Op::Expand {
            shape: vec![1, 4, 5],
        },
        &[x],
    );
    let y = b.node(Op::Relu, &[y]);
    cases += usize::from(b.check(y, TOL));
    let mut b = Builder::new("bn", 321, 2);
    let x = b.input("x", &[5, 4, 3]);
    let p: Vec<_> = (0..3).map(|_| b.weight(&[5])).collect();
    let var = b.weight_in(&[5], 0.5, 2.0);
    let y = b.node(Op::BatchNorm { epsilon: 1e-5 }, &[x, p[0], p[1], p[2], var]);
    cases += usize::from(b.check(y, TOL));
    eprintln!("compared {cases} elementwise graphs");
}

#[test]
fn pools_and_reductions_match_the_interpreter() {
    let mut cases = 0;
    for seed in 0..8u64 {
        let mut b = Builder::new(&format!("pool{seed}"), 400 + seed, 2);
        let x = b.input("x", &[3, 11, 10]);
        let r = &mut b.rng;
        let k = r.random_range(2..=3usize);
        let p = Pool {
            kernel: [k, r.random_range(2..=3)],
            strides: [r.random_range(1..=2), r.random_range(1..=2)],
            pads: [r.random_range(0..k), 0, r.random_range(0..k), 1],
            dilations: [1, 1],
            ceil_mode: seed % 2 == 0,
            count_include_pad: seed % 4 < 2,
        };
        let op = if seed < 4 {
            Op::MaxPool(p)
        } else {
            Op::AveragePool(p)
        };
        let y = b.node(op, &[x]);
        cases += usize::from(b.check(y, TOL));
    }
    for (i, (axes, keepdims)) in [(vec![2, 3], true), (vec![1], false), (vec![1, 3], true)]
        .into_iter()
        .enumerate()
    {
        let mut b = Builder::new(&format!("mean{i}"), 410 + i as u64, 2);
        let x = b.input("x", &[6, 5, 4]);
        let y = b.node(Op::ReduceMean { axes, keepdims }, &[x]);
        cases += usize::from(b.check(y, TOL));
    }
    let mut b = Builder::new("gap", 420, 3);
    let x = b.input("x", &[7, 9, 9]);
    let y = b.node(Op::GlobalAveragePool, &[x]);
    cases += usize::from(b.check(y, TOL));
    eprintln!("compared {cases} pools and reductions");
}

#[test]
fn linear_algebra_and_layout_ops_match_the_interpreter() {
    let mut cases = 0;
    for (i, tb) in [true, false].into_iter().enumerate() {
        let mut b = Builder::new(&format!("gemm{i}"), 500 + i as u64, 3);
        let x = b.input("x", &[5, 2, 2]);
        let f = b.node(Op::Flatten { axis: 1 }, &[x]);
        let n = 37;
        let w = if tb {
            b.weight(&[n, 20])
        } else {
            b.weight(&[20, n])
        };
        let c = b.weight(&[n]);
        let gm = Gemm {
            alpha: 0.5,
            beta: 2.0,
            trans_a: false,
            trans_b: tb,
        };
        let y = b.node(Op::Gemm(gm), &[f, w, c]);
        let y = b.node(Op::Softmax { axis: 1 }, &[y]);
        cases += usize::from(b.check(y, TOL));
    }
    // trans_a and trans_b: A = w[20, 4]^T, B = x[N, 20]^T, C broadcast from [1].
    let mut b = Builder::new("gemm_t", 502, 3);
    let x = b.input("x", &[20]);
    let w = b.weight(&[20, 4]);
    let c = b.weight(&[1]);
    let gm = Gemm {
        alpha: 1.5,
        beta: -1.0,
        trans_a: true,
        trans_b: true,
    };
    let y = b.node(Op::Gemm(gm), &[w, x, c]);
    cases += usize::from(b.check(y, TOL));
    let mut b = Builder::new("matmul", 510, 2);
    let x = b.input("x", &[4, 19]);
    let w = b.weight(&[19, 18]);
    let y = b.node(Op::MatMul, &[x, w]);
    cases += usize::from(b.check(y, TOL));
    let mut b = Builder::new("concat", 511, 2);
    let x = b.input("x", &[3, 4, 5]);
    let s = b.node(Op::Sigmoid, &[x]);
    let r = b.node(Op::Relu, &[x]);
    let y = b.node(Op::Concat { axis: 1 }, &[s, r, x]);
    cases += usize::from(b.check(y, TOL));
    eprintln!("compared {cases} linear-algebra and layout graphs");
}

#[test]
fn pointwise_convs_match_the_interpreter() {
    // 1x1, stride 1, no padding, H*W a multiple of 4: the vec4 GEMM kernel. Channel counts
    // cross the 16-deep K tiles and 64-wide M tiles; batch > 1 makes quads follow images.
    let mut cases = 0;
    let shapes = [
        (3, 5, 1, [2, 2]),
        (20, 70, 3, [4, 5]),
        (37, 64, 2, [6, 6]),
        (34, 6, 2, [3, 4]),
    ];
    for (i, (c, m, batch, [h, w])) in shapes.into_iter().enumerate() {
        let mut b = Builder::new(&format!("pw{i}"), 600 + i as u64, batch);
        let x = b.input("x", &[c, h, w]);
        let group = if i == 3 { 2 } else { 1 };
        let wt = b.weight(&[m, c / group, 1, 1]);
        let bias = b.weight(&[m]);
        let conv = Conv {
            group,
            ..Conv::default()
        };
        let r = b.node(Op::Conv(conv.clone()), &[x, wt]);
        let f = FusedConv {
            conv,
            bias: true,
            act: Some(acts()[i]),
            residual: true,
            post_act: Some(Act::Relu),
        };
        let y = b.node(Op::FusedConv(f), &[x, wt, bias, r]);
        cases += usize::from(b.check(y, TOL));
    }
    eprintln!("compared {cases} pointwise convolutions");
}

#[test]
fn bad_inputs_are_typed_errors() {
    use excite_runtime::gpu::GpuError;
    use std::collections::HashMap;
    let mut b = Builder::new("bad", 700, 2);
    let x = b.input("x", &[3]);
    let y = b.node(Op::Relu, &[x]);
    b.g.add_output(y).expect("output");
    excite_ir::verify::verify(&mut b.g).expect("verifies");
    let Some(s) = gpu_common::gpu_or_skip(&b.g, 2) else {
        return;
    };
    let good = b.inputs.clone();
    let wrong = HashMap::from([("x".to_string(), b.tensor(&[3, 3], -1.0, 1.0))]);
    let mut extra = good.clone();
    extra.insert("z".into(), b.tensor(&[1], -1.0, 1.0));
    let cases = [HashMap::new(), wrong, extra];
    for inputs in &cases {
        let err = s.run(inputs);
        assert!(matches!(err, Err(GpuError::Input { .. })), "{err:?}");
    }
    // The session is still usable after refusing bad inputs.
    let out = s.run(&good).expect("runs");
    let want: Vec<f32> = good["x"].data().iter().map(|v| v.max(0.0)).collect();
    assert_eq!(out[0].1.data(), want.as_slice());
}

#[test]
fn conv_squeezed_se_blocks_match_the_interpreter() {
    // A 1x1 conv feeding an SE block writes the squeeze's partial sums itself: cover images
    // smaller than one 64-pixel tile, straddling two tiles, exact multiples, several M tiles,
    // batch > 1, and two SE blocks reading one conv output (the second squeezes on its own).
    let mut cases = 0;
    let shapes = [
        (5, 7, 1, [2, 2]),
        (70, 9, 2, [7, 7]),
        (16, 33, 3, [9, 12]),
        (8, 130, 2, [16, 16]),
    ];
    for (i, (cin, c, batch, [h, w])) in shapes.into_iter().enumerate() {
        let mut b = Builder::new(&format!("sq{i}"), 800 + i as u64, batch);
        let x = b.input("x", &[cin, h, w]);
        let wt = b.weight(&[c, cin, 1, 1]);
        let bias = b.weight(&[c]);
        let f = FusedConv {
            conv: Conv::default(),
            bias: true,
            act: Some(Act::Relu),
            residual: false,
            post_act: None,
        };
        let y = b.node(Op::FusedConv(f), &[x, wt, bias]);
        let cr = 1 + c / 8;
        let se = |b: &mut Builder, residual: Option<excite_ir::ValueId>| {
            let w1 = b.weight(&[cr, c, 1, 1]);
            let w2 = b.weight(&[c, cr, 1, 1]);
            let mut ins = vec![y, w1, w2];
            ins.extend(residual);
            let op = SeBlock {
                act: Act::Relu,
                gate: Act::Sigmoid,
                bias1: false,
                bias2: false,
                residual: residual.is_some(),
                post_act: residual.map(|_| Act::Relu),
            };
            b.node(Op::SeBlock(op), &ins)
        };
        let s1 = se(&mut b, None);
        let out = if i % 2 == 1 { se(&mut b, Some(s1)) } else { s1 };
        cases += usize::from(b.check(out, TOL));
    }
    eprintln!("compared {cases} conv-squeezed SE blocks");
}

/// A plain SE block (C/8 hidden units, ReLU, sigmoid, no biases) on `y` of `m` channels.
fn plain_se_after(b: &mut Builder, y: excite_ir::ValueId, m: usize) -> excite_ir::ValueId {
    let cr = m / 8;
    let w1 = b.weight(&[cr, m, 1, 1]);
    let w2 = b.weight(&[m, cr, 1, 1]);
    let op = SeBlock {
        act: Act::Relu,
        gate: Act::Sigmoid,
        bias1: false,
        bias2: false,
        residual: false,
        post_act: None,
    };
    b.node(Op::SeBlock(op), &[y, w1, w2])
}

#[test]
fn winograd_convs_match_the_interpreter() {
    // 3x3 stride-1 convs by Winograd F(2x2, 3x3) and F(4x4, 3x3) (the knob on, and no minimum
    // of tiles so that these small cases qualify): odd sizes (partial edge tiles, tiles straddling images),
    // `same` and `valid` and asymmetric pads, more than 64 output channels, bias, activations,
    // a residual, and a conv feeding an SE block (its squeeze from the output transform).
    let mut cases = 0;
    // (cin, cout, batch, [h, w], pads, residual, SE after)
    let shapes = [
        (5, 7, 2, [9, 7], [1, 1, 1, 1], false, false),
        (16, 70, 1, [8, 8], [0, 0, 0, 0], true, false),
        (3, 9, 3, [5, 6], [1, 0, 0, 1], false, false),
        (24, 40, 2, [11, 13], [1, 1, 1, 1], false, true),
    ];
    // F(2x2, 3x3) and F(4x4, 3x3).
    let variants: [gpu_common::Tune; 2] = [
        |l| {
            l.winograd = 2;
            l.min_workgroups = 0;
        },
        |l| {
            l.winograd = 4;
            l.min_workgroups = 0;
        },
    ];
    let all = variants
        .iter()
        .flat_map(|&t| shapes.iter().map(move |&s| (t, s)));
    for (i, (tune, (cin, m, batch, [h, w], pads, residual, se))) in all.enumerate() {
        let mut b = Builder::new(&format!("wino{i}"), 950 + i as u64, batch);
        b.tune = tune;
        let x = b.input("x", &[cin, h, w]);
        let wt = b.weight(&[m, cin, 3, 3]);
        let bias = b.weight(&[m]);
        let conv = Conv {
            pads,
            ..Conv::default()
        };
        let mut ins = vec![x, wt, bias];
        if residual {
            let wr = b.weight(&[m, cin, 3, 3]);
            ins.push(b.node(Op::Conv(conv.clone()), &[x, wr]));
        }
        let f = FusedConv {
            conv,
            bias: true,
            act: Some(acts()[i % acts().len()]),
            residual,
            post_act: residual.then_some(Act::Relu),
        };
        let mut y = b.node(Op::FusedConv(f), &ins);
        // Every conv (the residual's too) by Winograd: no gathering GEMM kernel.
        let mut kernels = vec!["wino_in", "conv1x1", "wino_out", "!conv"];
        if se {
            y = plain_se_after(&mut b, y, m);
            kernels.extend(["se_fc", "se_scale"]);
        }
        cases += usize::from(b.check_kernels(y, TOL, &kernels));
    }
    eprintln!("compared {cases} Winograd convolutions");
}

#[test]
fn split_k_convs_match_the_interpreter() {
    // Convs with few output tiles and a deep K split K across workgroups (splitk.wgsl adds the
    // parts and runs the epilogue): pointwise, strided 3x3, grouped 3x3 with a residual, and a
    // 1x1 conv whose split reduction also squeezes for an SE block.
    let mut cases = 0;
    // (cin, cout, groups, kernel, stride, batch, [h, w], SE after)
    let shapes = [
        (160, 70, 1, 1, 1, 2, [4, 4], false),
        (48, 20, 1, 3, 2, 1, [9, 7], false),
        (64, 96, 2, 3, 1, 2, [5, 6], false),
        (200, 72, 1, 1, 1, 3, [7, 7], true),
    ];
    for (i, (cin, m, group, k, stride, batch, [h, w], se)) in shapes.into_iter().enumerate() {
        let mut b = Builder::new(&format!("sk{i}"), 900 + i as u64, batch);
        let x = b.input("x", &[cin, h, w]);
        let wt = b.weight(&[m, cin / group, k, k]);
        let bias = b.weight(&[m]);
        let pad = k / 2;
        let conv = Conv {
            group,
            strides: [stride; 2],
            pads: [pad; 4],
            ..Conv::default()
        };
        let residual = i == 2;
        let mut ins = vec![x, wt, bias];
        if residual {
            ins.push(b.node(Op::Conv(conv.clone()), &[x, wt]));
        }
        let f = FusedConv {
            conv,
            bias: true,
            act: Some(acts()[i]),
            residual,
            post_act: residual.then_some(Act::Relu),
        };
        let mut y = b.node(Op::FusedConv(f), &ins);
        let mut kernels = vec![if se { "splitk_squeeze" } else { "splitk" }];
        if se {
            y = plain_se_after(&mut b, y, m);
            kernels.extend(["se_fc", "se_scale"]);
        }
        cases += usize::from(b.check_kernels(y, TOL, &kernels));
    }
    eprintln!("compared {cases} split-K convolutions");
}

#[test]
fn se_scales_applied_by_the_next_conv_match_the_interpreter() {
    // An SE block whose output feeds a 1x1 conv leaves its scale (gate, residual, act) to that
    // conv's input loads, and the conv's first row of workgroups stores the SE output for its
    // other readers (here an Add after the conv). Plain and split-K consumers, with and without
    // the SE residual, a consumer with its own residual, images straddling 64-column tiles.
    let mut cases = 0;
    // (channels, batch, [h, w], SE residual, consumer residual)
    let shapes = [
        (24, 2, [4, 4], true, false),
        (160, 1, [6, 6], false, false),
        (40, 3, [8, 8], true, true),
        (12, 2, [3, 4], false, true),
    ];
    for (i, (c, batch, [h, w], se_res, conv_res)) in shapes.into_iter().enumerate() {
        let mut b = Builder::new(&format!("defer{i}"), 1000 + i as u64, batch);
        let x = b.input("x", &[c, h, w]);
        let w0 = b.weight(&[c, c, 1, 1]);
        let b0 = b.weight(&[c]);
        let fc = |act| FusedConv {
            conv: Conv::default(),
            bias: true,
            act,
            residual: false,
            post_act: None,
        };
        // With an activation, so the SE block is not folded into this conv.
        let t = b.node(Op::FusedConv(fc(Some(Act::Relu))), &[x, w0, b0]);
        let cr = c.div_ceil(4);
        let mut ins = vec![t, b.weight(&[cr, c, 1, 1]), b.weight(&[cr])];
        ins.push(b.weight(&[c, cr, 1, 1]));
        if se_res {
            ins.push(x);
        }
        let se = SeBlock {
            act: acts()[i],
            gate: Act::Sigmoid,
            bias1: true,
            bias2: false,
            residual: se_res,
            post_act: se_res.then_some(Act::Relu),
        };
        let y = b.node(Op::SeBlock(se), &ins);
        let w1 = b.weight(&[c, c, 1, 1]);
        let b1 = b.weight(&[c]);
        let mut f = fc(Some(Act::Relu));
        let mut pins = vec![y, w1, b1];
        if conv_res {
            f.residual = true;
            f.post_act = Some(Act::Relu);
            pins.push(t);
        }
        let p = b.node(Op::FusedConv(f), &pins);
        let out = b.node(Op::Add, &[p, y]);
        let mut kernels = vec!["se_gates", "!se_scale"];
        if i == 1 {
            kernels.push("splitk");
        }
        cases += usize::from(b.check_kernels(out, TOL, &kernels));
    }
    eprintln!("compared {cases} SE blocks scaled by their consumer conv");
}

#[test]
fn se_blocks_folded_into_their_conv_match_the_interpreter() {
    // x -> conv2 (k x k, stride s, act; squeezes its output) -> conv3 (1x1, linear) -> SE: the
    // SE block folds into conv3 (gates from conv2's squeeze through W13 = W1 W3, then gate,
    // residual and act in conv3's epilogue). conv2's squeeze: straddling tiles meeting 1 to 4
    // images, split-K (planes of 576 pixels: two chunks), a 1x1 conv2, none (a depthwise conv2, planes under 16 pixels: se_fc
    // reads the tensor); conv3 with and without bias, split-K (160 channels in; then the SE
    // block needs no dispatch of its own).
    let mut cases = 0;
    // (cin, cmid, c, batch, [h, w], k, stride, depthwise, conv3 bias, SE residual, squeeze kernel)
    let shapes = [
        (8, 16, 24, 2, [8, 8], 3, 1, false, true, true, "conv"),
        (4, 12, 20, 3, [14, 14], 3, 2, false, false, false, "conv"),
        (6, 8, 16, 4, [5, 5], 3, 1, false, true, true, "conv"),
        (
            32,
            24,
            40,
            1,
            [24, 24],
            3,
            1,
            false,
            true,
            true,
            "splitk_squeeze",
        ),
        (
            5,
            7,
            9,
            8,
            [3, 3],
            3,
            1,
            false,
            false,
            true,
            "!splitk_squeeze",
        ),
        (12, 16, 32, 2, [14, 14], 1, 1, false, true, false, "conv1x1"),
        (16, 16, 24, 2, [10, 10], 3, 1, true, true, true, "grouped"),
        (24, 160, 48, 1, [4, 4], 1, 1, false, true, true, "conv1x1"),
        // conv3 splits K from here on: no SE dispatch (the hidden layer in extra workgroups of
        // conv3's GEMM, the gates in its reduction). Planes of 49 (the gathering GEMM kernel),
        // a depthwise conv2 (the extra workgroups read the tensor), tiles meeting 2 images.
        (
            32,
            160,
            48,
            1,
            [7, 7],
            3,
            1,
            false,
            false,
            true,
            "splitk_squeeze",
        ),
        (160, 0, 40, 2, [4, 4], 3, 1, true, true, true, "grouped"),
        (12, 160, 32, 3, [6, 6], 3, 1, false, true, true, "conv"),
        // Cases 0 and 3 (planes of whole 64-column tiles, small blocks, few tiles) and this one
        // (a depthwise conv2: the tiles read the tensor) compute the gates in each of conv3's
        // tiles: no SE dispatch either.
        (16, 0, 24, 2, [8, 8], 3, 1, true, false, true, "grouped"),
    ];
    // The default kernels (radix-16 sums), then halving sums.
    let variants: [gpu_common::Tune; 2] = [|_| {}, |l| l.tree_radix = 2];
    let all = variants
        .iter()
        .flat_map(|&t| shapes.iter().enumerate().map(move |(i, &s)| (t, i, s)));
    for (v, (tune, i, (cin, cmid, c, batch, [h, w], k, s, dw, bias3, se_res, kernel))) in
        all.enumerate()
    {
        let mut b = Builder::new(&format!("fold{v}"), 2000 + v as u64, batch);
        b.tune = tune;
        let x = b.input("x", &[cin, h, w]);
        let (cmid, group) = if dw { (cin, cin) } else { (cmid, 1) };
        let conv2 = FusedConv {
            conv: Conv {
                strides: [s, s],
                pads: [k / 2; 4],
                group,
                ..Conv::default()
            },
            bias: true,
            act: Some(acts()[i % 6]),
            residual: false,
            post_act: None,
        };
        let w2 = b.weight(&[cmid, cin / group, k, k]);
        let b2 = b.weight(&[cmid]);
        let t = b.node(Op::FusedConv(conv2), &[x, w2, b2]);
        let w3 = b.weight(&[c, cmid, 1, 1]);
        let x3 = if bias3 {
            let b3 = b.weight(&[c]);
            let f = FusedConv {
                conv: Conv::default(),
                bias: true,
                act: None,
                residual: false,
                post_act: None,
            };
            b.node(Op::FusedConv(f), &[t, w3, b3])
        } else {
            b.node(Op::Conv(Conv::default()), &[t, w3])
        };
        let cr = c.div_ceil(4);
        let mut ins = vec![x3, b.weight(&[cr, c, 1, 1])];
        if i % 2 == 0 {
            ins.push(b.weight(&[cr]));
        }
        ins.push(b.weight(&[c, cr, 1, 1]));
        if i % 3 != 0 {
            ins.push(b.weight(&[c]));
        }
        let oh = (h + 2 * (k / 2) - k) / s + 1;
        let ow = (w + 2 * (k / 2) - k) / s + 1;
        if se_res {
            let r = b.input("r", &[c, oh, ow]);
            ins.push(r);
        }
        let se = SeBlock {
            act: acts()[(i + 2) % 6],
            gate: if i % 4 == 3 {
                Act::HardSigmoid {
                    alpha: 1.0 / 6.0,
                    beta: 0.5,
                }
            } else {
                Act::Sigmoid
            },
            bias1: i % 2 == 0,
            bias2: i % 3 != 0,
            residual: se_res,
            post_act: se_res.then_some(Act::Relu),
        };
        let y = b.node(Op::SeBlock(se), &ins);
        let kernels = if (7..=10).contains(&i) {
            ["!se_fc", "!se_gates", "!se_scale", "splitk_gate", kernel]
        } else if [0, 3, 11].contains(&i) {
            ["!se_fc", "!se_gates", "!se_scale", "!splitk_gate", kernel]
        } else {
            ["se_fc", "se_gates", "!se_scale", "!splitk_gate", kernel]
        };
        cases += usize::from(b.check_program(y, TOL, &kernels, 1, false));
    }
    eprintln!("compared {cases} SE blocks folded into their conv");
    if std::env::var("EXCITE_REQUIRE_GPU").as_deref() == Ok("1") {
        assert_eq!(cases, 24);
    }
}

#[test]
fn wide_tile_convs_match_the_interpreter() {
    // Pointwise convs with at least 128 output channels per group and K >= 128 run on 128-row
    // tiles (each thread 8 x 4 outputs): split-K (rows padded 160 -> 256), grouped (136 per
    // group), and one with enough tiles (33124 columns) not to split.
    let mut cases = 0;
    // (cin, cout, groups, kernel, batch, [h, w], split-K)
    let shapes = [
        (144, 160, 1, 1, 2, [6, 6], true),
        (256, 272, 2, 1, 2, [7, 4], true),
        (128, 128, 1, 1, 1, [182, 182], false),
    ];
    for (i, (cin, m, group, k, batch, [h, w], split)) in shapes.into_iter().enumerate() {
        let mut b = Builder::new(&format!("wide{i}"), 3000 + i as u64, batch);
        let x = b.input("x", &[cin, h, w]);
        let wt = b.weight(&[m, cin / group, k, k]);
        let bias = b.weight(&[m]);
        let f = FusedConv {
            conv: Conv {
                group,
                pads: [k / 2; 4],
                ..Conv::default()
            },
            bias: true,
            act: Some(acts()[i]),
            residual: false,
            post_act: None,
        };
        let y = b.node(Op::FusedConv(f), &[x, wt, bias]);
        let kernels = if split {
            vec!["splitk"]
        } else {
            vec!["!splitk"]
        };
        cases += usize::from(b.check_program(y, TOL, &kernels, 0, true));
    }
    eprintln!("compared {cases} wide-tile convolutions");
    if std::env::var("EXCITE_REQUIRE_GPU").as_deref() == Ok("1") {
        assert_eq!(cases, 3);
    }
}
