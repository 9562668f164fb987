//! Test support for the clean-up passes: run a pass on a `.seir` graph, print the result with
//! the rewrite events, and check the rewritten graph against the original in the reference
//! interpreter on seeded random inputs.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;

use excite_ir::text::{WeightStore, parse_with_placeholder_weights, print};
use excite_ir::verify::verify;
use excite_ir::{Graph, Tensor, interp};
use excite_passes::{Pass, PassContext};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The batch size random inputs use for the symbolic batch `N`.
pub const BATCH: usize = 2;
/// Random input sets compared per graph.
pub const SEEDS: u64 = 3;

/// What running a pass did.
#[derive(Debug)]
pub struct Outcome {
    pub before: Graph,
    pub after: Graph,
    /// The rewritten graph as `.seir`, followed by one `# pass/rule @node: detail` line per
    /// event.
    pub text: String,
    /// Output elements compared with the unrewritten graph, over every seed.
    pub compared: usize,
}

/// Parses `src` (placeholder weights) and verifies it.
pub fn parse(src: &str) -> Graph {
    let mut g =
        parse_with_placeholder_weights(src, &WeightStore::new()).expect("test graph parses");
    verify(&mut g).expect("test graph verifies");
    g
}

/// Runs `passes` in order on `src`, verifies the result and compares it with the original.
pub fn run(passes: &[&dyn Pass], src: &str) -> Outcome {
    let before = parse(src);
    let mut after = before.clone();
    let mut cx = PassContext::default();
    for p in passes {
        p.run(&mut after, &mut cx).expect("the pass succeeds");
        if let Err(e) = verify(&mut after) {
            panic!(
                "after {} the graph does not verify: {e}\n{}",
                p.name(),
                print(&after)
            );
        }
    }
    let mut text = print(&after);
    for e in &cx.events {
        text.push_str(&format!(
            "# {}/{} @{}: {}\n",
            e.pass, e.rule, e.node, e.detail
        ));
    }
    let compared = compare(&before, &after);
    Outcome {
        before,
        after,
        text,
        compared,
    }
}

/// Random inputs for `g` from `seed`, uniform in [-4, 4) (both sides of every activation's
/// kinks: ReLU at 0, hard-sigmoid at -3 and 3).
pub fn inputs(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.inputs()
        .iter()
        .map(|&v| {
            let ty = g.ty_of(v).expect("inputs are typed");
            let shape = ty.shape.resolve(BATCH);
            let n = shape.iter().product();
            let data = (0..n).map(|_| rng.random_range(-4.0f32..4.0)).collect();
            let t = Tensor::new(shape, data).expect("sizes agree");
            (g.value(v).name.clone(), t)
        })
        .collect()
}

/// Runs both graphs on [`SEEDS`] random input sets; every output must have the same name and
/// shape and agree within `1e-5 + 1e-5 * |ref|`. Returns the number of elements compared.
pub fn compare(reference: &Graph, rewritten: &Graph) -> usize {
    let mut compared = 0;
    for seed in 0..SEEDS {
        let ins = inputs(reference, seed);
        let want = interp::run(reference, &ins).expect("the original runs");
        let got = interp::run(rewritten, &ins).expect("the rewritten graph runs");
        assert_eq!(want.len(), got.len(), "number of outputs");
        for ((wn, w), (gn, g)) in want.iter().zip(&got) {
            assert_eq!(wn, gn, "output names");
            assert_eq!(w.shape(), g.shape(), "shape of output {wn}");
            for (i, (a, b)) in w.data().iter().zip(g.data()).enumerate() {
                let tol = 1e-5 + 1e-5 * a.abs();
                assert!(
                    (a - b).abs() <= tol,
                    "{wn}[{i}]: want {a}, got {b} (seed {seed})"
                );
                compared += 1;
            }
        }
    }
    compared
}

/// Elements of one output of shape `dims` (with `N` as [`BATCH`]) over every seed.
pub fn elems(dims: &[usize]) -> usize {
    dims.iter().product::<usize>() * SEEDS as usize
}
