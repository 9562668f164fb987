//! Every IR op, alone in a graph with random attributes, compiled for the CPU backend and
//! compared with the reference interpreter (relative L2 ≤ 1e-4); plus input errors.

use std::collections::HashMap;
use std::sync::Arc;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{Act, FusedConv, Graph, Op, SeBlock, Shape, Tensor, TensorType, interp, verify};
use excite_runtime::cpu::{self, CpuError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(
        shape.to_vec(),
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
    )
    .expect("sized")
}

/// One-node graph: `inputs` are graph inputs, `weights` constants, in that order.
fn run_case(op: Op, inputs: &[&[usize]], weights: &[&[usize]], seed: u64) -> f64 {
    let args: Vec<(bool, &[usize])> = inputs
        .iter()
        .map(|s| (true, *s))
        .chain(weights.iter().map(|s| (false, *s)))
        .collect();
    run_ordered(op, &args, seed)
}

/// One-node graph over `args`: `(true, shape)` a graph input, `(false, shape)` a weight.
fn run_ordered(op: Op, args: &[(bool, &[usize])], seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = Graph::new("case");
    let mut ids = Vec::new();
    let mut feed = HashMap::new();
    for (i, (is_input, s)) in args.iter().enumerate() {
        let name = format!("a{i}");
        let mut t = rand_tensor(&mut rng, s);
        if matches!(op, Op::BatchNorm { .. }) && !is_input {
            // BatchNorm's variance (and the other statistics) kept positive.
            t.data_mut().iter_mut().for_each(|v| *v = v.abs() + 0.1);
        }
        if *is_input {
            ids.push(
                g.add_input(&name, TensorType::f32(Shape::fixed(s)))
                    .expect("input"),
            );
            feed.insert(name, t);
        } else {
            ids.push(g.add_weight(&name, Arc::new(t)).expect("weight"));
        }
    }
    g.add_node("node", op.clone(), &ids, &["y"]).expect("node");
    let y = g.find_value("y").expect("y");
    g.add_output(y).expect("output");
    verify::verify(&mut g).expect("verify");
    let want = interp::run(&g, &feed).expect("interp");
    let prog = cpu::compile(&g, 1, 1).expect("compile");
    let got = prog.run(&feed).expect("run");
    assert_eq!(got[0].1.shape(), want[0].1.shape(), "{op:?}");
    let (a, b) = (got[0].1.data(), want[0].1.data());
    assert!(b.iter().any(|v| *v != 0.0), "{op:?}: all-zero reference");
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    let e = (num / den).sqrt();
    assert!(e <= 1e-4, "{op:?}: rel L2 {e:e}");
    e
}

#[test]
fn unary_and_binary_ops() {
    let s: &[usize] = &[2, 3, 5, 7];
    let unary = [
        Op::Relu,
        Op::Sigmoid,
        Op::HardSigmoid {
            alpha: 0.3,
            beta: 0.4,
        },
        Op::HardSwish,
        Op::Silu,
        Op::Clip {
            min: -0.5,
            max: 0.25,
        },
        Op::Identity,
        Op::Dropout,
    ];
    let mut n = 0;
    for op in unary {
        run_case(op, &[s], &[], 1);
        n += 1;
    }
    for op in [Op::Add, Op::Sub, Op::Mul, Op::Div] {
        run_case(op.clone(), &[s, s], &[], 2);
        // Broadcasting against a per-channel weight.
        run_case(op, &[s], &[&[3, 1, 1]], 3);
        n += 2;
    }
    assert_eq!(n, 16);
}

#[test]
fn reductions_pools_and_layout_ops() {
    let s: &[usize] = &[2, 4, 6, 5];
    run_case(Op::GlobalAveragePool, &[s], &[], 1);
    run_case(
        Op::ReduceMean {
            axes: vec![2, 3],
            keepdims: true,
        },
        &[s],
        &[],
        2,
    );
    run_case(
        Op::ReduceMean {
            axes: vec![2, 3],
            keepdims: false,
        },
        &[s],
        &[],
        3,
    );
    run_case(
        Op::ReduceMean {
            axes: vec![1],
            keepdims: true,
        },
        &[s],
        &[],
        4,
    );
    run_case(Op::Softmax { axis: 1 }, &[s], &[], 5);
    run_case(Op::Flatten { axis: 1 }, &[s], &[], 6);
    run_case(
        Op::Reshape {
            shape: vec![2, -1],
            allowzero: false,
        },
        &[s],
        &[],
        7,
    );
    run_case(
        Op::Expand {
            shape: vec![2, 4, 6, 5],
        },
        &[&[1, 4, 1, 5]],
        &[],
        8,
    );
    run_case(Op::Concat { axis: 1 }, &[s, &[2, 3, 6, 5]], &[], 9);
    // Last axis, three inputs, one of them a weight.
    run_case(
        Op::Concat { axis: 3 },
        &[s, &[2, 4, 6, 2]],
        &[&[2, 4, 6, 1]],
        13,
    );
    run_case(Op::MatMul, &[&[3, 4]], &[&[4, 5]], 10);
    run_case(
        Op::BatchNorm { epsilon: 1e-5 },
        &[s],
        &[&[4], &[4], &[4], &[4]],
        11,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for i in 0..10 {
        let k = [rng.random_range(1..4), rng.random_range(1..4)];
        let p = Pool {
            kernel: k,
            strides: [rng.random_range(1..3), rng.random_range(1..3)],
            pads: [
                rng.random_range(0..k[0]),
                rng.random_range(0..k[1]),
                0,
                rng.random_range(0..k[1]),
            ],
            dilations: [1, rng.random_range(1..3)],
            ceil_mode: rng.random_bool(0.5),
            count_include_pad: rng.random_bool(0.5),
        };
        run_case(Op::MaxPool(p.clone()), &[&[1, 3, 9, 8]], &[], 20 + i);
        run_case(Op::AveragePool(p), &[&[1, 3, 9, 8]], &[], 40 + i);
    }
}

#[test]
fn gemm_conv_and_fused_ops() {
    let gm = |trans_b, alpha, beta| {
        Op::Gemm(Gemm {
            alpha,
            beta,
            trans_a: false,
            trans_b,
        })
    };
    run_case(gm(true, 1.0, 1.0), &[&[3, 8]], &[&[5, 8], &[5]], 1);
    run_case(gm(false, 0.5, 2.0), &[&[3, 8]], &[&[8, 5], &[1, 5]], 2);
    run_case(gm(false, 1.0, 1.0), &[&[3, 8]], &[&[8, 5]], 3);
    run_case(gm(true, 1.0, 1.0), &[&[3, 8], &[5, 8]], &[], 4);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for i in 0..8 {
        let group = [1, 2, 4][rng.random_range(0..3)];
        let conv = Conv {
            strides: [rng.random_range(1..3), rng.random_range(1..3)],
            pads: [0; 4].map(|_| rng.random_range(0..2)),
            dilations: [rng.random_range(1..3), 1],
            group,
        };
        let (c, m) = (4, 4 * rng.random_range(1..3));
        let w: &[usize] = &[m, c / group, 3, 2];
        run_case(
            Op::Conv(conv.clone()),
            &[&[2, c, 9, 8]],
            &[w, &[m]],
            100 + i,
        );
        let f = FusedConv {
            conv,
            bias: true,
            act: Some(Act::Silu),
            residual: false,
            post_act: None,
        };
        run_case(Op::FusedConv(f), &[&[2, c, 9, 8]], &[w, &[m]], 200 + i);
    }
    // 1x1 with a residual input and a post activation.
    let f = FusedConv {
        conv: Conv::default(),
        bias: true,
        act: Some(Act::Relu),
        residual: true,
        post_act: Some(Act::HardSwish),
    };
    let args: [(bool, &[usize]); 4] = [
        (true, &[2, 6, 5, 5]),
        (false, &[4, 6, 1, 1]),
        (false, &[4]),
        (true, &[2, 4, 5, 5]),
    ];
    run_ordered(Op::FusedConv(f), &args, 300);
    let se = SeBlock {
        act: Act::Relu,
        gate: Act::Sigmoid,
        bias1: true,
        bias2: true,
        residual: true,
        post_act: Some(Act::Relu),
    };
    let args: [(bool, &[usize]); 6] = [
        (true, &[2, 6, 3, 3]),
        (false, &[2, 6, 1, 1]),
        (false, &[2]),
        (false, &[6, 2, 1, 1]),
        (false, &[6]),
        (true, &[2, 6, 3, 3]),
    ];
    run_ordered(Op::SeBlock(se), &args, 301);
}

/// The paths with no constant operand to specialise on: broadcasting binaries between two
/// inputs of different ranks, Expand, batched and vector MatMul with broadcast batches, Gemm
/// with a transposed A or B and C as inputs, convolutions whose weights are graph inputs.
#[test]
fn strided_kernels_matmuls_and_runtime_weights() {
    let mut n = 0;
    run_case(Op::Add, &[&[2, 3, 5, 7], &[5, 1]], &[], 1);
    run_case(Op::Div, &[&[5, 1], &[2, 1, 1, 7]], &[], 2);
    run_case(Op::Mul, &[&[1, 3, 1, 1], &[4, 3, 2, 2]], &[], 3);
    n += 3;
    run_case(
        Op::Expand {
            shape: vec![2, 3, 4],
        },
        &[&[3, 1]],
        &[],
        4,
    );
    n += 1;
    run_case(Op::MatMul, &[&[2, 1, 3, 4], &[3, 4, 2]], &[], 5);
    run_case(Op::MatMul, &[&[4], &[2, 4, 3]], &[], 6);
    run_case(Op::MatMul, &[&[2, 3, 4], &[4]], &[], 7);
    n += 3;
    for (i, (ta, tb)) in [(true, false), (true, true), (false, true)]
        .into_iter()
        .enumerate()
    {
        let op = Op::Gemm(Gemm {
            alpha: 0.5,
            beta: 1.5,
            trans_a: ta,
            trans_b: tb,
        });
        let a: &[usize] = if ta { &[8, 3] } else { &[3, 8] };
        let b: &[usize] = if tb { &[5, 8] } else { &[8, 5] };
        run_case(op, &[a, b, &[3, 1]], &[], 10 + i as u64);
        n += 1;
    }
    let conv = Conv {
        strides: [1, 2],
        pads: [1, 0, 1, 1],
        dilations: [1, 1],
        group: 1,
    };
    run_case(
        Op::Conv(conv),
        &[&[2, 3, 8, 9], &[4, 3, 3, 3], &[4]],
        &[],
        20,
    );
    n += 1;
    // A stride far wider than the input (one output column, taps 0 and 2 dilated apart): the
    // im2col kernel splits out only the column phases the taps read, not one per stride step.
    let wide = Conv {
        strides: [1, 1 << 20],
        pads: [0, 1, 0, 1],
        dilations: [1, 2],
        group: 1,
    };
    run_case(Op::Conv(wide), &[&[2, 3, 6, 7], &[4, 3, 3, 3]], &[], 21);
    n += 1;
    assert_eq!(n, 12);
}

/// `y = Relu(x)` with `x` of type `ty`, verified.
fn relu_graph(ty: TensorType) -> Graph {
    let mut g = Graph::new("g");
    let x = g.add_input("x", ty).expect("input");
    g.add_node("r", Op::Relu, &[x], &["y"]).expect("node");
    let y = g.find_value("y").expect("y");
    g.add_output(y).expect("output");
    verify::verify(&mut g).expect("verify");
    g
}

/// Each feed of `cases` is refused with an input error naming its input.
fn assert_input_errors(
    prog: &cpu::CpuProgram,
    cases: Vec<(Vec<(&str, Tensor)>, &str)>,
    mode: &str,
) {
    for (feed, name) in cases {
        let feed: HashMap<String, Tensor> =
            feed.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        match prog.run(&feed) {
            Err(CpuError::Input { input, .. }) => assert_eq!(input, name),
            other => panic!("{mode}: expected an input error for {name}, got {other:?}"),
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let g = relu_graph(TensorType::f32(Shape::fixed(&[1, 3])));
    let prog = cpu::compile(&g, 1, 1).expect("compile");
    let t = |s: Vec<usize>| Tensor::new(s.clone(), vec![1.0; s.iter().product()]).expect("t");
    let cases = vec![
        (vec![("x", t(vec![1, 4]))], "x"),
        (vec![], "x"),
        (vec![("x", t(vec![1, 3])), ("z", t(vec![1]))], "z"),
    ];
    assert_input_errors(&prog, cases, "whole batch");
    let ok: HashMap<String, Tensor> = [("x".to_string(), t(vec![1, 3]))].into();
    assert_eq!(prog.run(&ok).expect("run")[0].1.data(), [1.0, 1.0, 1.0]);
    assert!(matches!(
        cpu::compile(&g, 1, 100_000),
        Err(CpuError::Threads(m)) if m.contains("at most 1024")
    ));
    // The same checks in the per-image mode (a batched input, 2 images on 2 threads).
    let bt = TensorType::f32(Shape(vec![excite_ir::Dim::Batch, excite_ir::Dim::Fixed(3)]));
    let g = relu_graph(bt);
    let prog = cpu::compile_with(&g, 2, 2, true).expect("compile");
    assert!(prog.per_image());
    let cases = vec![
        (vec![("x", t(vec![1, 3]))], "x"),
        (vec![], "x"),
        (vec![("x", t(vec![2, 3])), ("z", t(vec![1]))], "z"),
    ];
    assert_input_errors(&prog, cases, "per-image");
    let x = Tensor::new(vec![2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).expect("t");
    let ok: HashMap<String, Tensor> = [("x".to_string(), x)].into();
    assert_eq!(
        prog.run(&ok).expect("run")[0].1.data(),
        [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]
    );
}

#[test]
fn programs_are_shareable_and_show_their_clif() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<cpu::CpuProgram>();
    let opts = excite_zoo::BuildOptions {
        input_size: Some(32),
        classes: 10,
        ..Default::default()
    };
    let g = excite_zoo::build("se-resnet50", &opts).expect("zoo");
    let g = excite_passes::optimize(g, &excite_passes::Options::default())
        .expect("optimize")
        .graph;
    let prog = cpu::compile(&g, 1, 1).expect("compile");
    let clif = prog.clif();
    let se: Vec<_> = clif
        .iter()
        .filter(|(n, _)| n.starts_with("se_block"))
        .collect();
    assert!(
        !se.is_empty(),
        "no SE kernel among {:?}",
        clif.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    for (name, text) in se {
        assert!(
            text.contains("f32x4") && text.contains("fma"),
            "{name}: {text}"
        );
    }
    assert!(prog.planned_peak_bytes() > 0);
    assert_eq!(
        prog.steps().len(),
        prog.run_profiled(&HashMap::from([(
            g.value(g.inputs()[0]).name.clone(),
            Tensor::new(
                vec![1, 3, 32, 32],
                (0..3072).map(|i| (i % 11) as f32 / 11.0).collect()
            )
            .expect("t"),
        )]))
        .expect("profiled")
        .1
        .len()
    );
}

/// The per-image mode runs only graphs whose images are independent: ops over the batch axis
/// (a softmax or a reduction over axis 0) keep the whole-batch program. Each graph is
/// checked against the interpreter at batch 4 on 2 threads, in whichever mode it runs.
#[test]
fn per_image_mode_only_where_images_are_independent() {
    use excite_ir::Dim;
    let batched = |rest: &[usize]| {
        TensorType::f32(Shape(
            std::iter::once(Dim::Batch)
                .chain(rest.iter().map(|&d| Dim::Fixed(d)))
                .collect(),
        ))
    };
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    // (op, its graph input's shape after the batch, the weight's shape, per-image expected)
    let gemm = Op::Gemm(Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: false,
    });
    type Case = (Op, Vec<usize>, Option<Vec<usize>>, bool);
    let cases: Vec<Case> = vec![
        (Op::Softmax { axis: 1 }, vec![6], None, true),
        (Op::Softmax { axis: 0 }, vec![6], None, false),
        (Op::Concat { axis: 1 }, vec![6], None, true),
        (gemm, vec![6], Some(vec![6, 3]), true),
        (
            Op::ReduceMean {
                axes: vec![1],
                keepdims: true,
            },
            vec![6],
            None,
            true,
        ),
        (
            Op::ReduceMean {
                axes: vec![0],
                keepdims: true,
            },
            vec![6],
            None,
            false,
        ),
    ];
    let mut checked = 0;
    for (op, rest, w, per_image) in cases {
        let mut g = Graph::new("sep");
        let x = g.add_input("x", batched(&rest)).expect("input");
        let mut ins = vec![x];
        if let Some(ws) = &w {
            ins.push(
                g.add_weight("w", Arc::new(rand_tensor(&mut rng, ws)))
                    .expect("weight"),
            );
        }
        if matches!(op, Op::Concat { .. }) {
            ins.push(x);
        }
        g.add_node("n", op.clone(), &ins, &["y"]).expect("node");
        let y = g.find_value("y").expect("y");
        g.add_output(y).expect("output");
        if verify::verify(&mut g).is_err() {
            panic!("{op:?}: graph does not verify");
        }
        assert_eq!(cpu::image_separable(&g), per_image, "{op:?}");
        let feed: HashMap<String, Tensor> = [(
            "x".to_string(),
            rand_tensor(&mut rng, &[&[4][..], &rest].concat()),
        )]
        .into();
        let prog = cpu::compile_with(&g, 4, 2, true).expect("compile");
        assert_eq!(prog.per_image(), per_image, "{op:?}");
        let want = interp::run(&g, &feed).expect("interp");
        let got = prog.run(&feed).expect("run");
        let (a, b) = (got[0].1.data(), want[0].1.data());
        assert_eq!(got[0].1.shape(), want[0].1.shape(), "{op:?}");
        assert!(b.iter().any(|v| *v != 0.0), "{op:?}: all-zero reference");
        let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
        assert!(
            (num / den).sqrt() <= 1e-5,
            "{op:?}: rel L2 {:e}",
            (num / den).sqrt()
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}
