//! Graph → text → graph: random graphs built through the API (every op, random attribute
//! values including infinities, signed zeros and subnormals, awkward names, declared and
//! undeclared types, shared values, variadic Concat, several outputs) survive `print` then
//! `parse` structurally intact. The graphs need not be valid; the text form must not care.

use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::text::{self, WeightStore};
use excite_ir::{Dim, Graph, Op, Shape, Tensor, TensorType, ValueId};

use super::structure;

const NAME_STEMS: [&str; 12] = [
    "x",
    "/layer1/0/conv1/Conv",
    "name with spaces",
    "quote\"d",
    "back\\slash",
    "tab\there",
    "new\nline",
    "ünï ✓",
    "trailing:",
    "#hash",
    "->arrow",
    "",
];

fn name(rng: &mut ChaCha8Rng, k: usize) -> String {
    let stem = NAME_STEMS.choose(rng).copied().unwrap_or("x");
    format!("{stem}{k}")
}

fn float(rng: &mut ChaCha8Rng) -> f32 {
    match rng.random_range(0..6) {
        0 => f32::INFINITY,
        1 => f32::NEG_INFINITY,
        2 => -0.0,
        3 => f32::from_bits(rng.random_range(1..0x0080_0000)), // subnormal
        4 => rng.random_range(-10.0..10.0),
        _ => {
            // Any finite value, by its bits.
            let v = f32::from_bits(rng.random());
            if v.is_finite() { v } else { 1.5 }
        }
    }
}

fn arr<const K: usize>(rng: &mut ChaCha8Rng) -> [usize; K] {
    std::array::from_fn(|_| rng.random_range(0..5))
}

fn pool(rng: &mut ChaCha8Rng) -> Pool {
    Pool {
        kernel: arr(rng),
        strides: arr(rng),
        pads: arr(rng),
        dilations: arr(rng),
        ceil_mode: rng.random(),
        count_include_pad: rng.random(),
    }
}

fn random_op(rng: &mut ChaCha8Rng) -> Op {
    let big = |rng: &mut ChaCha8Rng| rng.random_range(0..usize::MAX);
    match rng.random_range(0..25) {
        0 => Op::Conv(Conv {
            strides: arr(rng),
            pads: arr(rng),
            dilations: arr(rng),
            group: big(rng),
        }),
        1 => Op::BatchNorm {
            epsilon: float(rng),
        },
        2 => Op::Relu,
        3 => Op::Sigmoid,
        4 => Op::HardSigmoid {
            alpha: float(rng),
            beta: float(rng),
        },
        5 => Op::HardSwish,
        6 => Op::Silu,
        7 => Op::Clip {
            min: float(rng),
            max: float(rng),
        },
        8 => Op::Add,
        9 => Op::Sub,
        10 => Op::Mul,
        11 => Op::Div,
        12 => Op::GlobalAveragePool,
        13 => {
            let mut axes: Vec<usize> = (0..rng.random_range(0..4)).map(|_| big(rng)).collect();
            axes.sort_unstable();
            axes.dedup();
            Op::ReduceMean {
                axes,
                keepdims: rng.random(),
            }
        }
        14 => Op::AveragePool(pool(rng)),
        15 => Op::MaxPool(pool(rng)),
        16 => Op::Gemm(Gemm {
            alpha: float(rng),
            beta: float(rng),
            trans_a: rng.random(),
            trans_b: rng.random(),
        }),
        17 => Op::MatMul,
        18 => Op::Flatten { axis: big(rng) },
        19 => Op::Reshape {
            shape: (0..rng.random_range(0..5)).map(|_| rng.random()).collect(),
            allowzero: rng.random(),
        },
        20 => Op::Expand {
            shape: (0..rng.random_range(0..5)).map(|_| rng.random()).collect(),
        },
        21 => Op::Concat { axis: big(rng) },
        22 => Op::Softmax { axis: big(rng) },
        23 => Op::Identity,
        _ => Op::Dropout,
    }
}

fn random_type(rng: &mut ChaCha8Rng) -> TensorType {
    let dims = (0..rng.random_range(0..5))
        .map(|_| {
            if rng.random_bool(0.2) {
                Dim::Batch
            } else {
                Dim::Fixed(rng.random_range(0..300))
            }
        })
        .collect();
    TensorType::f32(Shape(dims))
}

fn random_graph(rng: &mut ChaCha8Rng) -> Graph {
    let mut k = 0;
    let mut fresh = |rng: &mut ChaCha8Rng| {
        k += 1;
        name(rng, k)
    };
    let mut g = Graph::new(fresh(rng));
    let mut values: Vec<ValueId> = Vec::new();
    for _ in 0..rng.random_range(1..4) {
        let ty = random_type(rng);
        values.push(g.add_input(&fresh(rng), ty).expect("fresh name"));
    }
    for _ in 0..rng.random_range(0..4) {
        let shape: Vec<usize> = (0..rng.random_range(0..4))
            .map(|_| rng.random_range(1..4))
            .collect();
        let n = shape.iter().product();
        let data = (0..n).map(|_| f32::from_bits(rng.random())).collect();
        let t = Arc::new(Tensor::new(shape, data).expect("sizes agree"));
        values.push(g.add_weight(&fresh(rng), t).expect("fresh name"));
    }
    for _ in 0..rng.random_range(1..12) {
        let op = random_op(rng);
        let (lo, hi) = op.arity();
        let arity = rng.random_range(lo..=hi.min(lo + 7));
        let ins: Vec<ValueId> = (0..arity)
            .map(|_| *values.choose(rng).expect("at least one input"))
            .collect();
        let n_outs = if rng.random_bool(0.1) { 2 } else { 1 };
        let outs: Vec<String> = (0..n_outs).map(|_| fresh(rng)).collect();
        let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let node = g
            .add_node(&fresh(rng), op, &ins, &out_refs)
            .expect("fresh names");
        for v in g.node(node).outputs.clone() {
            if rng.random_bool(0.5) {
                g.value_mut(v).ty = Some(random_type(rng));
            }
            values.push(v);
        }
    }
    let n_outputs = rng.random_range(1..4);
    for _ in 0..n_outputs {
        let v = *values.choose(rng).expect("non-empty");
        let _ = g.add_output(v); // a repeat is refused; skipping it is fine
    }
    g
}

#[test]
fn random_graphs_survive_print_then_parse() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e1e);
    let (mut graphs, mut nodes) = (0, 0);
    for _ in 0..300 {
        let g = random_graph(&mut rng);
        let printed = text::print(&g);
        let store = WeightStore::from_graph(&g);
        let back = match text::parse(&printed, &store) {
            Ok(b) => b,
            Err(e) => panic!("{e}\n--- in ---\n{printed}"),
        };
        assert_eq!(structure(&back), structure(&g), "\n{printed}");
        assert_eq!(text::print(&back), printed);
        graphs += 1;
        nodes += g.node_count();
    }
    assert_eq!(graphs, 300);
    assert!(nodes > 1000, "only {nodes} nodes compared");
}

#[test]
fn random_graphs_survive_inline_weights_and_safetensors() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut weights = 0;
    for _ in 0..100 {
        let g = random_graph(&mut rng);
        // Through the weight file: every bit, NaN payloads included.
        let bytes = WeightStore::from_graph(&g)
            .to_safetensors()
            .expect("serialises");
        let store = WeightStore::from_safetensors(&bytes).expect("reads back");
        let back = text::parse(&text::print(&g), &store).expect("parses");
        assert_eq!(structure(&back), structure(&g));
        // Through inline text: every bit except NaN payloads.
        let inline = text::print_inline_weights(&g);
        let back = text::parse(&inline, &WeightStore::new()).expect("parses");
        for ((_, a), (_, b)) in g.weights().zip(back.weights()) {
            for (x, y) in a.data().iter().zip(b.data()) {
                assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
            }
            weights += 1;
        }
        assert_eq!(text::print_inline_weights(&back), inline);
    }
    assert!(weights > 50, "only {weights} weights compared");
}
