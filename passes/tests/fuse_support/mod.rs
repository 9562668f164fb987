//! Test support for the `fuse` pass: run it on a `.seir` graph, print the result with its
//! `--explain` events and op counts, and check it against the unfused graph in the reference
//! interpreter on seeded random inputs.

#![allow(dead_code)] // each test binary uses a different part

use excite_ir::Graph;
use excite_ir::text::print;
use excite_ir::verify::verify;
use excite_passes::{Pass, PassContext, fuse::Fuse};

/// The attributes of a pointwise (1x1, stride 1, unpadded, one group) convolution.
pub const CONV1X1: &str = "{strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1}";

// Parsing, random inputs and the interpreter comparison are the clean-up tests' own.
#[path = "../common/mod.rs"]
mod common;
#[allow(unused_imports)] // each test binary uses a different part
pub use common::{BATCH, SEEDS, compare, inputs, parse};

/// What fusing a graph did.
#[derive(Debug)]
pub struct Outcome {
    pub before: Graph,
    pub after: Graph,
    pub cx: PassContext,
    /// The fused graph as `.seir`, one `# fuse/rule @node: absorbed: ..` line per event, and a
    /// line counting fused ops, nodes and compared elements.
    pub text: String,
    /// Output elements compared with the unfused graph, over every seed.
    pub compared: usize,
}

/// Number of nodes running `op` (by op name).
pub fn op_count(g: &Graph, op: &str) -> usize {
    g.node_ids().filter(|&n| g.node(n).op.name() == op).count()
}

/// Runs `fuse` on `src` with `cx`, verifies the result and compares it with the original.
pub fn fuse_with(src: &str, mut cx: PassContext) -> Outcome {
    let before = parse(src);
    let mut after = before.clone();
    Fuse.run(&mut after, &mut cx).expect("fuse succeeds");
    if let Err(e) = verify(&mut after) {
        panic!(
            "after fuse the graph does not verify: {e}\n{}",
            print(&after)
        );
    }
    let compared = compare(&before, &after);
    assert!(compared > 0, "nothing was compared");
    let mut text = print(&after);
    for e in &cx.events {
        text.push_str(&format!(
            "# {}/{} @{}: {}\n",
            e.pass, e.rule, e.node, e.detail
        ));
    }
    text.push_str(&format!(
        "# SeBlock {}, FusedConv {}, nodes {} -> {}, compared {compared}\n",
        op_count(&after, "SeBlock"),
        op_count(&after, "FusedConv"),
        before.node_count(),
        after.node_count()
    ));
    Outcome {
        before,
        after,
        cx,
        text,
        compared,
    }
}

/// [`fuse_with`] default limits.
pub fn fuse(src: &str) -> Outcome {
    fuse_with(src, PassContext::default())
}

/// An SE block on `x: [N,8,4,4]` as text: `act` and `gate` are op names (with the gate's
/// attributes after it),
/// `bias` says which FCs have biases, `scale` is the Mul's operands and `tail` the lines after
/// it (reading `y`), whose last value is the output.
pub fn se_src(act: &str, gate: &str, bias: (bool, bool), scale: &str, tail: &str) -> String {
    let (gate_op, gate_attrs) = gate.split_once(' ').unwrap_or((gate, ""));
    let gate_attrs = if gate_attrs.is_empty() {
        String::new()
    } else {
        format!(" {gate_attrs}")
    };
    let b1 = if bias.0 { ", b1" } else { "" };
    let b2 = if bias.1 { ", b2" } else { "" };
    let out = tail
        .lines()
        .last()
        .and_then(|l| l.split("-> ").nth(1))
        .unwrap_or("y");
    format!(
        r#"graph se {{
  input x: f32[N,8,4,4]
  input r: f32[N,8,4,4]
  weight w1: f32[2,8,1,1]
  weight b1: f32[2]
  weight w2: f32[8,2,1,1]
  weight b2: f32[8]
  node pool = GlobalAveragePool(x) -> s
  node fc1 = Conv(s, w1{b1}) {CONV1X1} -> z
  node act = {act}(z) -> za
  node fc2 = Conv(za, w2{b2}) {CONV1X1} -> e
  node gate = {gate_op}(e){gate_attrs} -> g
  node scale = Mul({scale}) -> y
{tail}
  output {out}
}}"#
    )
}
