//! The SE block's channel-split path (fewer images than threads) against the reference
//! interpreter: odd channel counts, channel counts not a multiple of 4, planes of 1 and more
//! elements, with and without biases, residual and post activation, and with the channel
//! means coming from the producing convolution (squeeze fusion).

use std::collections::HashMap;
use std::sync::Arc;

use excite_ir::op::Conv;
use excite_ir::{Act, Graph, Op, SeBlock, Shape, Tensor, TensorType, ValueId, interp, verify};
use excite_runtime::cpu;
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

/// One SE case: images, channels, reduced channels, plane, and whether `x` comes from a 1x1
/// convolution (so its epilogue computes the channel means).
struct Case {
    n: usize,
    c: usize,
    cr: usize,
    hw: (usize, usize),
    conv: bool,
    se: SeBlock,
}

/// Builds the graph for `case`, runs it on `threads` threads and returns the relative L2 error
/// against the interpreter.
fn run(case: &Case, threads: usize, seed: u64) -> f64 {
    let Case { n, c, cr, hw, .. } = *case;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut g = Graph::new("se_split");
    let mut feed = HashMap::new();
    let shape = [n, c, hw.0, hw.1];
    let mut input = |g: &mut Graph, feed: &mut HashMap<String, Tensor>, name: &str| {
        let id = g
            .add_input(name, TensorType::f32(Shape::fixed(&shape)))
            .expect("input");
        feed.insert(name.to_string(), rand_tensor(&mut rng, &shape));
        id
    };
    let x0 = input(&mut g, &mut feed, "x");
    let r = case.se.residual.then(|| input(&mut g, &mut feed, "r"));
    let mut weight = |g: &mut Graph, name: &str, s: &[usize]| -> ValueId {
        g.add_weight(name, Arc::new(rand_tensor(&mut rng, s)))
            .expect("weight")
    };
    let x = if case.conv {
        let w = weight(&mut g, "cw", &[c, c, 1, 1]);
        g.add_node("conv", Op::Conv(Conv::default()), &[x0, w], &["t"])
            .expect("conv");
        g.find_value("t").expect("t")
    } else {
        x0
    };
    let mut ins = vec![x, weight(&mut g, "w1", &[cr, c, 1, 1])];
    if case.se.bias1 {
        ins.push(weight(&mut g, "b1", &[cr]));
    }
    ins.push(weight(&mut g, "w2", &[c, cr, 1, 1]));
    if case.se.bias2 {
        ins.push(weight(&mut g, "b2", &[c]));
    }
    ins.extend(r);
    g.add_node("se", Op::SeBlock(case.se.clone()), &ins, &["y"])
        .expect("se");
    let y = g.find_value("y").expect("y");
    g.add_output(y).expect("output");
    verify::verify(&mut g).expect("verify");
    let want = interp::run(&g, &feed).expect("interp");
    let prog = cpu::compile(&g, n, threads).expect("compile");
    assert_eq!(prog.threads(), threads);
    let got = prog.run(&feed).expect("run");
    assert_eq!(got[0].1.shape(), want[0].1.shape());
    let (a, b) = (got[0].1.data(), want[0].1.data());
    assert!(b.iter().any(|v| *v != 0.0), "all-zero reference");
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

#[test]
fn split_se_matches_the_interpreter() {
    let full = SeBlock {
        act: Act::Relu,
        gate: Act::Sigmoid,
        bias1: true,
        bias2: true,
        residual: true,
        post_act: Some(Act::Relu),
    };
    let bare = SeBlock {
        act: Act::Silu,
        gate: Act::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        bias1: false,
        bias2: false,
        residual: false,
        post_act: None,
    };
    let case = |n, c, cr, hw, conv, se: &SeBlock| Case {
        n,
        c,
        cr,
        hw,
        conv,
        se: se.clone(),
    };
    let cases = [
        case(1, 7, 3, (1, 1), false, &full),
        case(1, 7, 3, (5, 5), false, &full),
        case(1, 13, 5, (3, 3), false, &bare),
        case(1, 6, 2, (1, 1), false, &bare),
        case(1, 10, 4, (4, 3), true, &full),
        case(1, 9, 3, (1, 1), true, &bare),
        case(1, 2, 1, (2, 3), false, &full),
        case(1, 67, 5, (7, 7), true, &full),
    ];
    let mut compared = 0;
    for (i, cs) in cases.iter().enumerate() {
        let e = run(cs, 2, 400 + i as u64);
        assert!(e <= 1e-5, "case {i}: rel L2 {e:e}");
        compared += 1;
    }
    // Two images on three threads also take the split path, image by image.
    for (i, conv) in [false, true].into_iter().enumerate() {
        let e = run(&case(2, 11, 3, (3, 5), conv, &full), 3, 500 + i as u64);
        assert!(e <= 1e-5, "batch 2 case {i}: rel L2 {e:e}");
        compared += 1;
    }
    assert_eq!(compared, cases.len() + 2);
}
