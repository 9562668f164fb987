//! In-crate tests of the op table: every `Op` variant prints and parses back, and the parser's
//! name list matches `Op::name`. The end-to-end text tests live in `ir/tests/text.rs`.

use super::attrs::{AttrBag, OP_NAMES, Raw, attrs_of, build_op};
use super::weights::placeholder;
use crate::op::{Act, Conv, FusedConv, Gemm, Op, Pool, SeBlock};

/// Position of `op`'s variant in `OP_NAMES`. The match has no wildcard, so a new variant
/// fails to compile here until it is added to the table and to [`every_op`].
fn variant_index(op: &Op) -> usize {
    match op {
        Op::Conv(_) => 0,
        Op::BatchNorm { .. } => 1,
        Op::Relu => 2,
        Op::Sigmoid => 3,
        Op::HardSigmoid { .. } => 4,
        Op::HardSwish => 5,
        Op::Silu => 6,
        Op::Clip { .. } => 7,
        Op::Add => 8,
        Op::Sub => 9,
        Op::Mul => 10,
        Op::Div => 11,
        Op::GlobalAveragePool => 12,
        Op::ReduceMean { .. } => 13,
        Op::AveragePool(_) => 14,
        Op::MaxPool(_) => 15,
        Op::Gemm(_) => 16,
        Op::MatMul => 17,
        Op::Flatten { .. } => 18,
        Op::Reshape { .. } => 19,
        Op::Expand { .. } => 20,
        Op::Concat { .. } => 21,
        Op::Softmax { .. } => 22,
        Op::Identity => 23,
        Op::Dropout => 24,
        Op::FusedConv(_) => 25,
        Op::SeBlock(_) => 26,
    }
}

/// One instance of every variant, attributes away from their defaults.
fn every_op() -> Vec<Op> {
    let pool = Pool {
        kernel: [3, 2],
        strides: [2, 1],
        pads: [1, 0, 2, 3],
        dilations: [1, 2],
        ceil_mode: true,
        count_include_pad: true,
    };
    vec![
        Op::Conv(Conv {
            strides: [2, 3],
            pads: [1, 2, 3, 4],
            dilations: [2, 1],
            group: 32,
        }),
        Op::BatchNorm { epsilon: 1e-3 },
        Op::Relu,
        Op::Sigmoid,
        Op::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        Op::HardSwish,
        Op::Silu,
        Op::Clip {
            min: f32::NEG_INFINITY,
            max: 6.0,
        },
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::GlobalAveragePool,
        Op::ReduceMean {
            axes: vec![2, 3],
            keepdims: false,
        },
        Op::AveragePool(pool.clone()),
        Op::MaxPool(Pool {
            ceil_mode: false,
            ..pool
        }),
        Op::Gemm(Gemm {
            alpha: 0.25,
            beta: -0.0,
            trans_a: true,
            trans_b: false,
        }),
        Op::MatMul,
        Op::Flatten { axis: 2 },
        Op::Reshape {
            shape: vec![0, -1, i64::MIN, i64::MAX],
            allowzero: true,
        },
        Op::Expand {
            shape: vec![1, 64, 7, 7],
        },
        Op::Concat { axis: 1 },
        Op::Softmax { axis: 3 },
        Op::Identity,
        Op::Dropout,
        Op::FusedConv(FusedConv {
            conv: Conv {
                strides: [2, 2],
                pads: [1, 1, 1, 1],
                dilations: [1, 1],
                group: 4,
            },
            bias: true,
            act: Some(Act::Clip { min: 0.0, max: 6.0 }),
            residual: true,
            post_act: Some(Act::Relu),
        }),
        Op::SeBlock(SeBlock {
            act: Act::Silu,
            gate: Act::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
            bias1: true,
            bias2: false,
            residual: true,
            post_act: Some(Act::HardSwish),
        }),
    ]
}

/// Prints `op`'s attributes, then feeds the printed tokens back through `build_op`.
fn reparse(op: &Op) -> Op {
    let texts: Vec<(&str, String)> = attrs_of(op)
        .iter()
        .map(|(k, a)| (*k, a.to_string()))
        .collect();
    let mut bag = AttrBag::new("");
    for (k, text) in &texts {
        let raw = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            Some("") => Raw::List(0, vec![]),
            Some(inner) => Raw::List(0, inner.split(',').map(|t| (0, t)).collect()),
            None => Raw::Scalar(0, text),
        };
        assert!(bag.push(0, k, raw).is_ok(), "attribute {k} pushed twice");
    }
    match build_op(0, op.name(), bag) {
        Ok(back) => back,
        Err(e) => panic!("{} does not parse back: {e}", op.name()),
    }
}

#[test]
fn every_variant_round_trips_through_the_attribute_table() {
    let ops = every_op();
    let mut seen = [false; OP_NAMES.len()];
    for op in &ops {
        let i = variant_index(op);
        assert_eq!(OP_NAMES[i], op.name());
        seen[i] = true;
        assert_eq!(&reparse(op), op);
    }
    assert!(seen.iter().all(|&s| s), "every_op misses a variant");
    assert_eq!(ops.len(), OP_NAMES.len());
}

#[test]
fn placeholders_are_deterministic_and_bounded() {
    let a = placeholder("fc1.w", &[4, 64, 1, 1], false);
    let b = placeholder("fc1.w", &[4, 64, 1, 1], false);
    let c = placeholder("fc2.w", &[4, 64, 1, 1], false);
    assert_eq!(a, b);
    assert_ne!(a.data(), c.data());
    // fan_in 64: values within ±1/8, and spread (not all equal).
    let bound = 1.0 / 8.0;
    assert!(a.data().iter().all(|x| x.abs() <= bound));
    let spread = a.data().iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(spread > bound / 2.0, "max |x| = {spread}");
    let var = placeholder("bn.var", &[16], true);
    assert!(var.data().iter().all(|&x| (0.5..1.5).contains(&x)));
    assert_eq!(var.numel(), 16);
}
