//! `dce`: dead-code elimination. Removes every node none of whose outputs is read by another
//! node or is a graph output (repeatedly, so dead chains go at once), then drops the weights
//! nothing reads any more (left by `const-fold`, `fold-bn` and `canonicalize`), so they no
//! longer count as parameters. Graph inputs always stay, read or not.
//!
//! ```text
//! before:  node a = Relu(x) -> a: f32[N,4]
//!          node dead = Sigmoid(a) -> d: f32[N,4]         # read by nothing
//!          output a
//! after:   node a = Relu(x) -> a: f32[N,4]
//!          output a
//! ```
//! A weight is dropped by turning its value back into an undefined placeholder (the graph has
//! no call to delete a value); nothing reads it, so the verifier does not object, and it is
//! gone from `Graph::weights`, the printed text and the parameter count.

use std::collections::HashSet;

use excite_ir::{Graph, ValueDef};

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct Dce;

/// What [`eliminate`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DceReport {
    /// Names of the removed nodes, in removal order.
    pub nodes: Vec<String>,
    /// Names of the dropped weights, in creation order.
    pub weights: Vec<String>,
    /// Elements of the dropped weights.
    pub params: usize,
}

/// Removes dead nodes and unread weights from `g`.
pub fn eliminate(g: &mut Graph) -> DceReport {
    let mut report = DceReport::default();
    let is_dead = |g: &Graph, id| {
        let n = g.node(id);
        n.outputs
            .iter()
            .all(|&o| g.users(o).is_empty() && !g.outputs().contains(&o))
    };
    let mut work: Vec<_> = g.node_ids().collect();
    // A queued id may already be removed; dce adds no node, so no index is reused.
    let mut removed = HashSet::new();
    while let Some(id) = work.pop() {
        if removed.contains(&id) || !is_dead(g, id) {
            continue;
        }
        removed.insert(id);
        if let Some(n) = g.remove_node(id) {
            work.extend(n.inputs.iter().filter_map(|&v| g.producer(v)));
            report.nodes.push(n.name);
        }
    }
    let unread: Vec<_> = g
        .weights()
        .filter(|(v, _)| g.users(*v).is_empty() && !g.outputs().contains(v))
        .map(|(v, t)| (v, t.numel()))
        .collect();
    for (v, numel) in unread {
        let val = g.value_mut(v);
        val.def = ValueDef::Undefined;
        val.ty = None;
        report.weights.push(val.name.clone());
        report.params += numel;
    }
    report
}

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let r = eliminate(g);
        for n in &r.nodes {
            cx.record("dce", "dead-node", n.clone(), "read by nothing");
        }
        if !r.weights.is_empty() {
            let detail = format!(
                "dropped {} unread weights ({} parameters)",
                r.weights.len(),
                r.params
            );
            cx.record("dce", "unread-weights", "(weights)", detail);
        }
        Ok(())
    }
}
