//! Property test: random SE-block shapes, attributes, producers and consumers, run through the
//! fused WGSL kernels on the GPU (lavapipe in CI), match the reference interpreter. Covers the
//! SE block squeezing its input itself, a producing 1x1 conv squeezing for it (per-image or
//! straddling tiles, or a split-K reduction), a block folded into the linear 1x1 conv feeding
//! it (its gates from a 3x3 conv's squeeze), and a consuming 1x1 conv applying its scale.

mod gpu_common;

use std::cell::Cell;

use excite_ir::op::Conv;
use excite_ir::{Act, FusedConv, Op, SeBlock};
use gpu_common::Builder;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const TOL: f64 = 1e-4;

fn act(i: usize) -> Act {
    [
        Act::Relu,
        Act::Silu,
        Act::HardSwish,
        Act::Sigmoid,
        Act::Clip { min: 0.0, max: 6.0 },
    ][i % 5]
}

#[derive(Debug, Clone)]
struct Case {
    c: usize,
    cr: usize,
    hw: [usize; 2],
    batch: usize,
    acts: [usize; 3],
    biases: [bool; 2],
    residual: bool,
    hard_gate: bool,
    /// 0: graph input; 1: a 1x1 conv from `cin` channels; 2: a 3x3 conv (act) to `cin`
    /// channels then a linear 1x1 conv, which the SE block folds into.
    producer: usize,
    cin: usize,
    consumer: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (
            1..=96usize,
            1..=24usize,
            1..=12usize,
            1..=12usize,
            1..=3usize,
        ),
        (0..5usize, 0..5usize, 0..5usize),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (0..3usize, 1..=200usize, any::<bool>()),
    )
        .prop_map(
            |((c, cr, h, w, batch), (a0, a1, a2), (b1, b2, residual, hard_gate), (p, cin, k))| {
                Case {
                    c,
                    cr,
                    hw: [h, w],
                    batch,
                    acts: [a0, a1, a2],
                    biases: [b1, b2],
                    residual,
                    hard_gate,
                    producer: p,
                    cin,
                    consumer: k,
                }
            },
        )
}

/// Builds and checks one case; false when the GPU test was skipped.
fn check(case: &Case, seed: u64) -> bool {
    let mut b = Builder::new(&format!("se-prop{seed}"), seed, case.batch);
    let [h, w] = case.hw;
    let x = if case.producer == 0 {
        b.input("x", &[case.c, h, w])
    } else if case.producer == 2 {
        let cmid = case.cin.min(48);
        let cx = 1 + case.cin % 13;
        let x = b.input("x", &[cx, h, w]);
        let wt = b.weight(&[cmid, cx, 3, 3]);
        let bias = b.weight(&[cmid]);
        let f = FusedConv {
            conv: Conv {
                pads: [1; 4],
                ..Conv::default()
            },
            bias: true,
            act: Some(act(case.acts[2])),
            residual: false,
            post_act: None,
        };
        let t = b.node(Op::FusedConv(f), &[x, wt, bias]);
        let w3 = b.weight(&[case.c, cmid, 1, 1]);
        b.node(Op::Conv(Conv::default()), &[t, w3])
    } else {
        let x = b.input("x", &[case.cin, h, w]);
        let wt = b.weight(&[case.c, case.cin, 1, 1]);
        let bias = b.weight(&[case.c]);
        let f = FusedConv {
            conv: Conv::default(),
            bias: true,
            act: Some(act(case.acts[2])),
            residual: false,
            post_act: None,
        };
        b.node(Op::FusedConv(f), &[x, wt, bias])
    };
    let se = SeBlock {
        act: act(case.acts[0]),
        gate: if case.hard_gate {
            Act::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            }
        } else {
            Act::Sigmoid
        },
        bias1: case.biases[0],
        bias2: case.biases[1],
        residual: case.residual,
        post_act: case.residual.then_some(act(case.acts[1])),
    };
    let mut ins = vec![x, b.weight(&[case.cr, case.c, 1, 1])];
    if se.bias1 {
        ins.push(b.weight(&[case.cr]));
    }
    ins.push(b.weight(&[case.c, case.cr, 1, 1]));
    if se.bias2 {
        ins.push(b.weight(&[case.c]));
    }
    if se.residual {
        // A separate input when x is the folded conv's output, which only the SE block reads.
        let r = if case.producer == 2 {
            b.input("r", &[case.c, h, w])
        } else {
            b.node(Op::Relu, &[x])
        };
        ins.push(r);
    }
    let mut y = b.node(Op::SeBlock(se), &ins);
    if case.consumer {
        let wt = b.weight(&[case.c, case.c, 1, 1]);
        let conv = b.node(Op::Conv(Conv::default()), &[y, wt]);
        y = b.node(Op::Add, &[conv, y]);
    }
    b.check_program(y, TOL, &[], usize::from(case.producer == 2), false)
}

#[test]
fn random_se_blocks_match_the_interpreter() {
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let ran = Cell::new(0usize);
    let seed = Cell::new(5000u64);
    let folded = Cell::new(0usize);
    let result = runner.run(&cases(), |case| {
        seed.set(seed.get() + 1);
        if check(&case, seed.get()) {
            ran.set(ran.get() + 1);
            folded.set(folded.get() + usize::from(case.producer == 2));
        }
        Ok(())
    });
    let ran = ran.get();
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "compared {ran} random SE blocks, {} folded into their conv",
        folded.get()
    );
    if std::env::var("EXCITE_REQUIRE_GPU").as_deref() == Ok("1") {
        assert!(ran >= 32, "only {ran} cases ran");
    }
}
