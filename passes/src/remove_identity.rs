//! `remove-identity`: drops `Identity` and `Dropout` (the identity at inference) and makes
//! their readers read the input instead.
//!
//! ```text
//! before:  node drop = Dropout(h) -> h2: f32[N,8]
//!          node fc = Gemm(h2, w, b) {...} -> y: f32[N,4]
//! after:   node fc = Gemm(h, w, b) {...} -> y: f32[N,4]
//! ```
//! Graph outputs keep their names: when the identity writes a graph output, its input's
//! producer is rebuilt to define that output directly. The identity stays when that is
//! impossible, because an output must remain a distinct, named value: when it reads a graph
//! input or a weight (`output y` with `y = Identity(x)`, `x` an input), or another graph
//! output (two outputs that are equal but named differently).

use excite_ir::{Graph, Op};

use crate::canonicalize::edit::Editor;
use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let ir = |source| PassError::Ir {
            pass: "remove-identity",
            source,
        };
        let order = g.topo_order().map_err(ir)?;
        let mut ed = Editor::new(g);
        for id in order {
            if ed.was_removed(id) {
                continue;
            }
            let node = ed.g.node(id);
            let rule = match node.op {
                Op::Identity => "identity",
                Op::Dropout => "dropout",
                _ => continue,
            };
            let (name, x, y) = (node.name.clone(), node.inputs[0], node.outputs[0]);
            let (x_name, y_name) = (ed.g.value(x).name.clone(), ed.g.value(y).name.clone());
            let detail = if ed.is_output(y) {
                format!("the producer of `{x_name}` now defines output `{y_name}`")
            } else {
                format!("readers now read `{x_name}`")
            };
            if ed.bypass(id, x).map_err(ir)? {
                cx.record("remove-identity", rule, name, detail);
            }
        }
        Ok(())
    }
}
