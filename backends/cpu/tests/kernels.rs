//! Generated kernels against the reference interpreter (`excite_ir::interp`): every activation
//! emitter, binary ops, the conv epilogue, plane means, convolutions with random attributes,
//! pooling with random attributes, the length checks of the safe call wrapper, and proptests
//! over random SE-block shapes (the SE kernel alone, and folded into the 1x1 convolution that
//! produces its input).

use excite_cpu::conv::{ConvKernel, ConvKernelSet, ConvShape, Reads};
use excite_cpu::kernels::{self, BinOp, Epilogue, SeShape};
use excite_cpu::{Arg, Jit, Kernel};
use excite_ir::op::{Conv, Pool};
use excite_ir::{Act, Op, SeBlock, Tensor, interp};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn one(p: impl FnOnce(&Jit) -> excite_cpu::Pending) -> Kernel {
    let mut jit = Jit::new().expect("jit");
    let pending = p(&jit);
    jit.add(pending).expect("add");
    jit.finish().expect("finish").remove(0)
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

const ACTS: [Act; 7] = [
    Act::Relu,
    Act::Sigmoid,
    Act::HardSigmoid {
        alpha: 0.2,
        beta: 0.5,
    },
    Act::HardSwish,
    Act::Silu,
    Act::Clip { min: 0.0, max: 6.0 },
    Act::Clip {
        min: f32::NEG_INFINITY,
        max: 1.5,
    },
];

#[test]
fn every_activation_matches_the_interpreter_elementwise() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // 1031 elements: vector body plus a 3-element tail; values up to ±100 reach exp's clamps.
    let mut x = rand_vec(&mut rng, 1031, 8.0);
    x.extend([-100.0, 100.0, 0.0, -0.0, 88.5, -88.5]);
    let mut compared = 0;
    for a in ACTS {
        let k = one(|j| kernels::unary(j, Some(a)));
        let mut y = vec![0f32; x.len()];
        k.call(x.len(), &mut [Arg::In(&x), Arg::Out(&mut y)])
            .expect("call");
        for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
            let want = interp::act(a, xi);
            // Relative, plus an absolute term for cancellation (HardSwish near -3).
            let tol = 2e-6 * want.abs() + 2e-7 * xi.abs().max(1.0);
            assert!(
                (yi - want).abs() <= tol,
                "{a:?} at x[{i}]={xi}: {yi} vs {want}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, ACTS.len() * x.len());
}

#[test]
fn binary_ops_match_scalar_arithmetic() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let a = rand_vec(&mut rng, 37, 3.0);
    let b: Vec<f32> = rand_vec(&mut rng, 37, 3.0)
        .iter()
        .map(|v| v + 4.0)
        .collect();
    for (op, f) in [
        (BinOp::Add, (|x, y| x + y) as fn(f32, f32) -> f32),
        (BinOp::Sub, |x, y| x - y),
        (BinOp::Mul, |x, y| x * y),
        (BinOp::Div, |x, y| x / y),
    ] {
        let k = one(|j| kernels::binary(j, op));
        let mut y = vec![0f32; 37];
        k.call(37, &mut [Arg::In(&a), Arg::In(&b), Arg::Out(&mut y)])
            .expect("call");
        let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect();
        assert_eq!(y, want, "{op:?}");
    }
}

#[test]
fn epilogue_and_means_match_a_scalar_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (c, hw) = (5, 13);
    let y0 = rand_vec(&mut rng, c * hw, 2.0);
    let bias = rand_vec(&mut rng, c, 1.0);
    let r = rand_vec(&mut rng, c * hw, 1.0);
    let g = rand_vec(&mut rng, c, 1.0);
    let e = Epilogue {
        bias: true,
        act: Some(Act::Silu),
        gate: true,
        residual: true,
        post_act: Some(Act::Relu),
        means: true,
    };
    let k = one(|j| kernels::epilogue(j, hw, e));
    let mut y = y0.clone();
    let mut means = vec![0f32; c];
    let args = &mut [
        Arg::Out(&mut y),
        Arg::In(&bias),
        Arg::In(&r),
        Arg::Out(&mut means),
        Arg::In(&g),
    ];
    k.call(c, args).expect("call");
    let want: Vec<f32> = (0..c * hw)
        .map(|i| {
            let v = interp::act(Act::Silu, y0[i] + bias[i / hw]) * g[i / hw];
            interp::act(Act::Relu, v + r[i])
        })
        .collect();
    assert!(rel_l2(&y, &want) < 1e-6, "{y:?} vs {want:?}");
    // The fused squeeze: each finished plane's mean.
    let want_means: Vec<f32> = want
        .chunks(hw)
        .map(|p| p.iter().sum::<f32>() / hw as f32)
        .collect();
    assert!(
        rel_l2(&means, &want_means) < 1e-6,
        "{means:?} vs {want_means:?}"
    );
    let k = one(|j| kernels::mean_planes(j, hw));
    let mut m = vec![0f32; c];
    k.call(c, &mut [Arg::In(&y0), Arg::Out(&mut m)])
        .expect("call");
    let want: Vec<f32> = y0
        .chunks(hw)
        .map(|p| p.iter().sum::<f32>() / hw as f32)
        .collect();
    assert!(rel_l2(&m, &want) < 1e-6);
}

#[test]
fn short_buffers_and_wrong_roles_are_refused() {
    let k = one(|j| kernels::unary(j, Some(Act::Relu)));
    let x = vec![1f32; 8];
    let mut y = vec![0f32; 7];
    let err = k
        .call(8, &mut [Arg::In(&x), Arg::Out(&mut y)])
        .expect_err("short output");
    assert!(err.to_string().contains("needs 8"), "{err}");
    let err = k
        .call(4, &mut [Arg::In(&x), Arg::In(&x)])
        .expect_err("read-only output");
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = k.call(4, &mut [Arg::In(&x)]).expect_err("arity");
    assert!(err.to_string().contains("takes 2"), "{err}");
    assert!(y.iter().all(|v| *v == 0.0), "a refused call wrote");
}

#[test]
fn convolutions_with_random_attributes_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut cases = 0;
    for _ in 0..24 {
        let group = [1, 1, 2, 3][rng.random_range(0..4)];
        let depthwise = rng.random_bool(0.25);
        let (c, m) = if depthwise {
            (6, 6)
        } else {
            (
                group * rng.random_range(1..4),
                group * rng.random_range(1..4),
            )
        };
        let group = if depthwise { 6 } else { group };
        let (kh, kw) = (rng.random_range(1..4), rng.random_range(1..4));
        let attrs = Conv {
            strides: [rng.random_range(1..3), rng.random_range(1..3)],
            pads: [0; 4].map(|_| rng.random_range(0..2)),
            dilations: [rng.random_range(1..3), rng.random_range(1..3)],
            group,
        };
        let (n, h, w) = (2, rng.random_range(5..9), rng.random_range(5..9));
        let x = Tensor::new(vec![n, c, h, w], rand_vec(&mut rng, n * c * h * w, 1.0)).expect("x");
        let wt = Tensor::new(
            vec![m, c / group, kh, kw],
            rand_vec(&mut rng, m * c / group * kh * kw, 1.0),
        )
        .expect("w");
        let b = Tensor::new(vec![m], rand_vec(&mut rng, m, 1.0)).expect("b");
        let want =
            interp::eval_op("conv", &Op::Conv(attrs.clone()), &[&x, &wt, &b]).expect("interp");
        let (oh, ow) = (want.shape()[2], want.shape()[3]);
        let shape = ConvShape {
            n,
            c,
            h,
            w,
            m,
            oh,
            ow,
            kh,
            kw,
            attrs,
        };
        let mut col = vec![0f32; shape.scratch_len()];
        let ck = ConvKernel::new(shape, wt.data().to_vec(), b.data().to_vec());
        let e = Epilogue {
            bias: true,
            act: None,
            gate: false,
            residual: false,
            post_act: None,
            means: false,
        };
        let set = ConvKernelSet::compile(&ck.shape, e).expect("kernels");
        let ks = set.kernels();
        let mut y = vec![0f32; want.numel()];
        ck.run(ks, x.data(), Reads::default(), &mut y, &mut [], &mut col, 1)
            .expect("run");
        let err = rel_l2(&y, want.data());
        assert!(err < 1e-5, "{:?}: {err:e}", ck.shape);
        cases += 1;
    }
    assert_eq!(cases, 24);
}

/// The generated pool kernel on `planes` planes of `x`.
fn run_pool(
    p: &Pool,
    max: bool,
    (planes, h, w): (usize, usize, usize),
    (oh, ow): (usize, usize),
    x: &[f32],
) -> Vec<f32> {
    let k = one(|j| kernels::pool(j, max, p, (h, w), (oh, ow)));
    let (rdiv, cdiv) = if max {
        (Vec::new(), Vec::new())
    } else {
        (
            kernels::pool_divisors(p, 0, h, oh),
            kernels::pool_divisors(p, 1, w, ow),
        )
    };
    let mut y = vec![0f32; planes * oh * ow];
    let mut row = vec![0f32; kernels::pool_row_len(p, w, ow)];
    let args = &mut [
        Arg::In(x),
        Arg::In(&rdiv),
        Arg::In(&cdiv),
        Arg::Out(&mut y),
        Arg::Out(&mut row),
    ];
    k.call(planes, args).expect("pool");
    y
}

/// Strides 1 and 2 take the kernel's vector column paths, 3 the scalar one.
#[test]
fn pools_with_random_attributes_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut cases = 0;
    for _ in 0..40 {
        let kernel = [rng.random_range(1..4), rng.random_range(1..4)];
        let p = Pool {
            kernel,
            strides: [rng.random_range(1..4), rng.random_range(1..4)],
            pads: [0, 1, 0, 1]
                .map(|i| rng.random_range(0..kernel[i].min(2) + 1).min(kernel[i] - 1)),
            dilations: [rng.random_range(1..3), rng.random_range(1..3)],
            ceil_mode: rng.random_bool(0.5),
            count_include_pad: rng.random_bool(0.5),
        };
        let (planes, h, w) = (3, rng.random_range(6..10), rng.random_range(6..10));
        let x = Tensor::new(
            vec![1, planes, h, w],
            rand_vec(&mut rng, planes * h * w, 1.0),
        )
        .expect("x");
        for (op, max) in [
            (Op::MaxPool(p.clone()), true),
            (Op::AveragePool(p.clone()), false),
        ] {
            let Ok(want) = interp::eval_op("pool", &op, &[&x]) else {
                continue;
            };
            let (oh, ow) = (want.shape()[2], want.shape()[3]);
            let y = run_pool(&p, max, (planes, h, w), (oh, ow), x.data());
            assert!(rel_l2(&y, want.data()) < 1e-6, "{op:?} {p:?}");
            cases += 1;
        }
    }
    assert!(cases >= 60, "only {cases} pool cases ran");
}

/// The stride-2 max pool of ResNet's stem (3 taps, one column of left pad): odd and even
/// widths, ceil mode on and off, with or without the end pad, and NaNs in the input.
#[test]
fn stride_two_max_pools_match_the_interpreter() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut cases = 0;
    for (h, w) in [(7, 7), (8, 10), (9, 6), (3, 2), (17, 32)] {
        for ceil_mode in [false, true] {
            for pads in [[1, 1, 1, 1], [0, 1, 0, 0], [1, 1, 0, 1]] {
                let p = Pool {
                    kernel: [3, 3],
                    strides: [2, 2],
                    pads,
                    dilations: [1, 1],
                    ceil_mode,
                    count_include_pad: false,
                };
                let planes = 2;
                let mut data = rand_vec(&mut rng, planes * h * w, 1.0);
                let at = rng.random_range(0..data.len());
                data[at] = f32::NAN;
                let x = Tensor::new(vec![1, planes, h, w], data).expect("x");
                let op = Op::MaxPool(p.clone());
                let want = interp::eval_op("pool", &op, &[&x]).expect("interp");
                let (oh, ow) = (want.shape()[2], want.shape()[3]);
                let y = run_pool(&p, true, (planes, h, w), (oh, ow), x.data());
                let same = y.iter().zip(want.data()).all(|(a, b)| a == b);
                assert!(same, "{p:?} on {h}x{w}: {y:?} vs {:?}", want.data());
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 30);
}

fn se_case(
    c: usize,
    cr: usize,
    hw: (usize, usize),
    batch: usize,
    acts: (Act, Act, Option<Act>),
    flags: (bool, bool, bool),
    seed: u64,
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (h, w) = hw;
    let se = SeBlock {
        act: acts.0,
        gate: acts.1,
        bias1: flags.0,
        bias2: flags.1,
        residual: flags.2,
        post_act: acts.2,
    };
    let t = |rng: &mut ChaCha8Rng, s: Vec<usize>| {
        let n = s.iter().product();
        Tensor::new(s, rand_vec(rng, n, 1.0)).expect("tensor")
    };
    let x = t(&mut rng, vec![batch, c, h, w]);
    let w1 = t(&mut rng, vec![cr, c, 1, 1]);
    let b1 = t(&mut rng, vec![cr]);
    let w2 = t(&mut rng, vec![c, cr, 1, 1]);
    let b2 = t(&mut rng, vec![c]);
    let r = t(&mut rng, vec![batch, c, h, w]);
    let mut ins: Vec<&Tensor> = vec![&x, &w1];
    let empty = Tensor::zeros(vec![0]);
    let mut args = [
        x.data(),
        w1.data(),
        empty.data(),
        w2.data(),
        empty.data(),
        empty.data(),
    ];
    if se.bias1 {
        ins.push(&b1);
        args[2] = b1.data();
    }
    ins.push(&w2);
    if se.bias2 {
        ins.push(&b2);
        args[4] = b2.data();
    }
    if se.residual {
        ins.push(&r);
        args[5] = r.data();
    }
    let want = interp::eval_op("se", &Op::SeBlock(se.clone()), &ins).expect("interp");
    // Both variants: the kernel squeezes itself, or reads means a conv epilogue computed.
    let mut worst = 0f64;
    for pre_squeezed in [false, true] {
        let sh = SeShape { c, cr, hw: h * w };
        let k = one(|j| kernels::se_block(j, sh, &se, pre_squeezed));
        let mut y = vec![0f32; x.numel()];
        let mut scratch = vec![0f32; cr + c];
        if pre_squeezed {
            scratch = vec![0f32; cr];
            for plane in x.data().chunks(h * w) {
                let m = plane.iter().map(|v| f64::from(*v)).sum::<f64>() / (h * w) as f64;
                scratch.push(m as f32);
            }
        }
        let mut call: Vec<Arg<'_>> = args.iter().map(|a| Arg::In(a)).collect();
        call.push(Arg::Out(&mut y));
        call.push(Arg::Out(&mut scratch));
        k.call(batch, &mut call).expect("call");
        worst = worst.max(rel_l2(&y, want.data()));
    }
    worst
}

#[test]
fn se_block_on_resnet_like_shapes() {
    let e = se_case(
        64,
        4,
        (7, 9),
        2,
        (Act::Relu, Act::Sigmoid, Some(Act::Relu)),
        (true, true, true),
        9,
    );
    assert!(e < 1e-5, "{e:e}");
}

/// An SE block folded into the 1x1 convolution `u = W3 x + b3` that produces its input: the
/// gate kernel on `x`, then the convolution with a gating epilogue, against the interpreter's
/// convolution followed by its SE block. Runs on `threads` threads (images side by side, or
/// one image split across threads).
#[allow(clippy::too_many_arguments)]
fn se_folded_case(
    (c_in, c, cr): (usize, usize, usize),
    hw: (usize, usize),
    batch: usize,
    acts: (Act, Act, Option<Act>),
    flags: (bool, bool, bool, bool),
    threads: usize,
    seed: u64,
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (h, w) = hw;
    let (bias3, bias1, bias2, residual) = flags;
    let se = SeBlock {
        act: acts.0,
        gate: acts.1,
        bias1,
        bias2,
        residual,
        post_act: acts.2,
    };
    let t = |rng: &mut ChaCha8Rng, s: Vec<usize>| {
        let n = s.iter().product();
        Tensor::new(s, rand_vec(rng, n, 1.0)).expect("tensor")
    };
    let x = t(&mut rng, vec![batch, c_in, h, w]);
    let w3 = t(&mut rng, vec![c, c_in, 1, 1]);
    let b3 = t(&mut rng, vec![c]);
    let w1 = t(&mut rng, vec![cr, c, 1, 1]);
    let b1 = t(&mut rng, vec![cr]);
    let w2 = t(&mut rng, vec![c, cr, 1, 1]);
    let b2 = t(&mut rng, vec![c]);
    let r = t(&mut rng, vec![batch, c, h, w]);
    let attrs = Conv {
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
    };
    let mut conv_ins = vec![&x, &w3];
    if bias3 {
        conv_ins.push(&b3);
    }
    let u = interp::eval_op("conv", &Op::Conv(attrs.clone()), &conv_ins).expect("conv");
    let mut ins: Vec<&Tensor> = vec![&u, &w1];
    let empty = Tensor::zeros(vec![0]);
    if bias1 {
        ins.push(&b1);
    }
    ins.push(&w2);
    if bias2 {
        ins.push(&b2);
    }
    if residual {
        ins.push(&r);
    }
    let want = interp::eval_op("se", &Op::SeBlock(se.clone()), &ins).expect("interp");
    fn or_empty<'a>(on: bool, t: &'a Tensor, empty: &'a Tensor) -> &'a [f32] {
        if on { t.data() } else { empty.data() }
    }
    let sh = SeShape { c, cr, hw: h * w };
    // W13 = W1 W3 and b13 = W1 b3 + b1, in f64.
    let w13: Vec<f32> = (0..cr * c_in)
        .map(|i| {
            let (jr, k) = (i / c_in, i % c_in);
            (0..c)
                .map(|ch| f64::from(w1.data()[jr * c + ch]) * f64::from(w3.data()[ch * c_in + k]))
                .sum::<f64>() as f32
        })
        .collect();
    let b13: Vec<f32> = (0..cr)
        .map(|jr| {
            let wb: f64 = if bias3 {
                (0..c)
                    .map(|ch| f64::from(w1.data()[jr * c + ch]) * f64::from(b3.data()[ch]))
                    .sum()
            } else {
                0.0
            };
            (wb + if bias1 { f64::from(b1.data()[jr]) } else { 0.0 }) as f32
        })
        .collect();
    // The channel means of x, for the pre-squeezed variant (a producing conv's epilogue).
    let means: Vec<f32> = x
        .data()
        .chunks(h * w)
        .map(|p| (p.iter().map(|v| f64::from(*v)).sum::<f64>() / (h * w) as f64) as f32)
        .collect();
    // Both variants must give the same gates.
    let mut gates = Vec::new();
    for pre_squeezed in [false, true] {
        let gate_k = one(|j| kernels::se_gate(j, c_in, sh, &se, pre_squeezed));
        let mut g = vec![0f32; batch * c];
        let mut scratch = vec![0f32; c_in + cr];
        let src = if pre_squeezed { &means[..] } else { x.data() };
        let args = &mut [
            Arg::In(src),
            Arg::In(&w13),
            Arg::In(&b13),
            Arg::In(w2.data()),
            Arg::In(or_empty(bias2, &b2, &empty)),
            Arg::Out(&mut g),
            Arg::Out(&mut scratch),
        ];
        gate_k.call(batch, args).expect("gate");
        gates.push(g);
    }
    // The two variants sum the squeeze in f32 (in the kernel) and in f64 (above), so they
    // differ by rounding, which FC1's activation can amplify without bound in relative terms
    // (HardSwish just above -3 maps a z of ~1e-7 to a gate of ~1e-8): compare against the
    // largest gate (at least 1) instead.
    let scale = gates[0].iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = gates[0]
        .iter()
        .zip(&gates[1])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-5 * scale,
        "pre-squeezed gates differ by {diff:e} (largest gate {scale:e})"
    );
    let g = gates.swap_remove(0);
    let shape = ConvShape {
        n: batch,
        c: c_in,
        h,
        w,
        m: c,
        oh: h,
        ow: w,
        kh: 1,
        kw: 1,
        attrs,
    };
    let mut col = vec![0f32; shape.scratch_len_on(threads)];
    let bias = if bias3 {
        b3.data().to_vec()
    } else {
        Vec::new()
    };
    let ck = ConvKernel::new(shape, w3.data().to_vec(), bias);
    let e = Epilogue {
        bias: bias3,
        act: None,
        gate: true,
        residual,
        post_act: se.post_act,
        means: false,
    };
    let set = ConvKernelSet::compile(&ck.shape, e).expect("kernels");
    let ks = set.kernels();
    let mut y = vec![0f32; want.numel()];
    let reads = Reads {
        r: or_empty(residual, &r, &empty),
        g: &g,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| ck.run(ks, x.data(), reads, &mut y, &mut [], &mut col, threads))
        .expect("run");
    rel_l2(&y, want.data())
}

fn act_strategy() -> impl Strategy<Value = Act> {
    (0..ACTS.len()).prop_map(|i| ACTS[i])
}

/// A case proptest found (CI, 2026-11-27): one hidden unit, HardSwish on it and on the gates,
/// no FC2 bias, where the f32 and f64 squeezes gave relatively different (tiny) gates.
#[test]
fn se_block_folded_with_a_near_zero_hidden_unit() {
    let e = se_folded_case(
        (12, 11, 1),
        (2, 3),
        1,
        (Act::HardSwish, Act::HardSwish, None),
        (true, false, false, false),
        1,
        346,
    );
    assert!(e < 1e-5, "rel L2 {e:e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn se_block_matches_the_interpreter(
        c in 1usize..41, cr in 1usize..9, h in 1usize..6, w in 1usize..6, batch in 1usize..4,
        act in act_strategy(), gate in act_strategy(), post in proptest::option::of(act_strategy()),
        flags in (any::<bool>(), any::<bool>(), any::<bool>()), seed in 0u64..1000,
    ) {
        let post = if flags.2 { post } else { None };
        let e = se_case(c, cr, (h, w), batch, (act, gate, post), flags, seed);
        prop_assert!(e < 1e-5, "rel L2 {:e}", e);
    }

    #[test]
    fn se_block_folded_into_its_conv_matches_the_interpreter(
        c_in in 1usize..21, c in 1usize..41, cr in 1usize..9, h in 1usize..6, w in 1usize..6,
        batch in 1usize..4, threads in 1usize..3,
        act in act_strategy(), gate in act_strategy(), post in proptest::option::of(act_strategy()),
        flags in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()), seed in 0u64..1000,
    ) {
        let post = if flags.3 { post } else { None };
        let shape = (c_in, c, cr);
        let e = se_folded_case(shape, (h, w), batch, (act, gate, post), flags, threads, seed);
        prop_assert!(e < 1e-5, "rel L2 {:e}", e);
    }
}
