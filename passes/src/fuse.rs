//! `fuse`: turns every squeeze-and-excitation block into one `SeBlock` kernel and every
//! convolution's epilogue (activation, residual add, activation) into one `FusedConv`, by
//! equality saturation ([`crate::eqsat`]).
//!
//! It expects the canonical form `canonicalize` produces and fuses only what it can prove:
//! each absorbed intermediate is read by nothing else, the squeeze pools the very tensor the
//! gate scales, the FCs are 1x1 convolutions on the pooled `[N,C,1,1]` map, the gate is
//! `[N,C,1,1]`, and a residual has exactly the output's shape. Everything else is left as it
//! was, with its name, op and attributes. For example
//! ```text
//! node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
//! node fc1 = Conv(s, w1, b1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> z: f32[N,2,1,1]
//! node act = Relu(z) -> za: f32[N,2,1,1]
//! node fc2 = Conv(za, w2, b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> e: f32[N,8,1,1]
//! node gate = Sigmoid(e) -> g: f32[N,8,1,1]
//! node scale = Mul(x, g) -> y: f32[N,8,4,4]
//! node sum = Add(r, y) -> z2: f32[N,8,4,4]
//! node out = Relu(z2) -> o: f32[N,8,4,4]
//! ```
//! becomes
//! ```text
//! node out = SeBlock(x, w1, b1, w2, b2, r) {act=Relu, gate=Sigmoid, bias1=true, bias2=true, residual=true, post_act=Relu} -> o: f32[N,8,4,4]
//! ```
//! and a Conv followed by Relu becomes a `FusedConv {act=Relu}` named after the Relu.
//! Each fused node is recorded for `--explain` with the rule that made it and the names of
//! the nodes it absorbed.

use excite_ir::Graph;

use crate::eqsat;
use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct Fuse;

impl Pass for Fuse {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let Some((fused_graph, fused)) = eqsat::fuse_graph(g, cx)? else {
            return Ok(());
        };
        for f in fused {
            cx.record(
                "fuse",
                f.rule,
                f.node,
                format!("absorbed: {}", f.absorbed.join(", ")),
            );
        }
        *g = fused_graph;
        Ok(())
    }
}
