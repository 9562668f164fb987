//! `canonicalize`: brings every SE-block variant that exporters write to the one canonical
//! form that `fuse` matches (see `fusion_contract.md`), iterated to a fixed point (at most
//! [`MAX_ROUNDS`] rounds; every round makes the graph strictly more canonical).
//!
//! Rules, each recorded under its name for `--explain`:
//! - `reducemean-as-pool` (`squeeze`): `ReduceMean(axes=[2,3])` on a 4-D value becomes
//!   `GlobalAveragePool`, followed by `Flatten{axis:1}` when `keepdims=0`.
//! - `fc-as-conv` (`fc`): `Gemm`/`MatMul` with a constant B on the `[N,C]` Flatten/Reshape of
//!   an `[N,C,1,1]` value (plus a constant bias `Add`) becomes a 1x1 `Conv` on the 4-D value,
//!   then `Flatten{axis:1}` defining the old 2-D value.
//! - `act-before-reshape`, `binary-before-reshape`, `reshape-of-reshape`, `reshape-noop`
//!   (`reshape`): unary activations, and binary ops of two equal reshapes, move before the
//!   Flatten/Reshape; two reshapes collapse into one; a reshape to its input's own shape
//!   disappears.
//! - `silu`, `hardswish`, `hardsigmoid-from-clip`, `hardswish-from-clip`, `expand-mul`
//!   (`act`): the decomposed activations of older exports, and `Mul(x, Expand(g))`.
//!
//! Anything else is left alone. Names: a node replaced by one node keeps its name; an op that
//! gains a Flatten after it keeps its name and the Flatten is called `<name>.flatten`; new
//! weights are `<node>.weight`/`<node>.bias`; the 4-D twin of a 2-D value `v` is `v.4d`; all
//! made unique with `edit::fresh_name`. Graph outputs keep their value names.
//!
//! ```text
//! before:  node se.fc1 = Gemm(se.flat, w1, b1) {alpha=1, beta=1, transA=false, transB=true} -> h: f32[N,4]
//!          node se.act = Mul(h, h.sig) -> a: f32[N,4]       # h.sig = Sigmoid(h)
//! after:   node se.fc1 = Conv(s, se.fc1.weight, se.fc1.bias) {...} -> h.4d: f32[N,4,1,1]
//!          node se.act = Silu(h.4d) -> a.4d: f32[N,4,1,1]
//! ```

pub(crate) mod edit;

mod act;
mod fc;
mod reshape;
mod squeeze;

use excite_ir::{Act, Graph, IrError, NodeId, Op};

use crate::pass::{Pass, PassContext, PassError};
use edit::Editor;

/// Most rounds of rewriting; each round visits every node once.
pub const MAX_ROUNDS: usize = 32;

#[derive(Debug)]
pub struct Canonicalize;

/// A rule that fired at a node.
#[derive(Debug)]
pub(crate) struct Fired {
    pub(crate) rule: &'static str,
    pub(crate) node: String,
    pub(crate) detail: String,
}

impl Fired {
    pub(crate) fn new(rule: &'static str, node: &str, detail: impl Into<String>) -> Fired {
        Fired {
            rule,
            node: node.to_string(),
            detail: detail.into(),
        }
    }
}

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let ir = |source| PassError::Ir {
            pass: "canonicalize",
            source,
        };
        for _ in 0..MAX_ROUNDS {
            let order = g.topo_order().map_err(ir)?;
            let mut ed = Editor::new(g);
            let mut fired = 0;
            for id in order {
                if ed.was_removed(id) {
                    continue;
                }
                if let Some(f) = apply(&mut ed, id).map_err(ir)? {
                    cx.record("canonicalize", f.rule, f.node, f.detail);
                    fired += 1;
                }
            }
            if fired == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// Tries the rules that can fire at node `id`; at most one fires.
fn apply(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    match &ed.g.node(id).op {
        Op::ReduceMean { .. } => squeeze::reduce_mean(ed, id),
        Op::Gemm(_) | Op::MatMul => fc::fc_as_conv(ed, id),
        Op::Flatten { .. } | Op::Reshape { .. } => reshape::reshape(ed, id),
        op if Act::from_op(op).is_some() => reshape::act_before_reshape(ed, id),
        Op::Mul | Op::Div => match act::mul_div(ed, id)? {
            Some(f) => Ok(Some(f)),
            None => reshape::binary_before_reshape(ed, id),
        },
        Op::Add | Op::Sub => reshape::binary_before_reshape(ed, id),
        _ => Ok(None),
    }
}
