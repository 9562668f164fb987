//! Graph-editing helpers shared by the clean-up passes.
//!
//! Every rewrite in `remove-identity`, `fold-bn` and `canonicalize` is built from three moves:
//! - **replace**: remove a node and add another that defines the *same* output value (the
//!   graph keeps the `ValueId`, its readers and its graph-output status, so the user's output
//!   names survive every rewrite);
//! - **bypass**: make a value's readers read another, existing value;
//! - **retire**: remove the producers a rewrite left without readers.
//!
//! Nodes added here get their output type at once from shape inference, so a later rule in
//! the same pass can read it without re-running the verifier. The [`Editor`] remembers which
//! nodes it removed, because a pass iterating over a snapshot of node ids must skip them
//! (petgraph reuses the indices of removed nodes).

use std::collections::HashSet;
use std::sync::Arc;

use excite_ir::infer::infer_node;
use excite_ir::{Graph, IrError, Node, NodeId, Op, Shape, Tensor, TensorType, ValueId};

/// `base` if no node has that name, else `base.1`, `base.2`, ...
pub(crate) fn fresh_name(g: &Graph, base: &str) -> String {
    fresh(base, |n| g.find_node(n).is_some())
}

/// `base` if no value (defined or not) has that name, else `base.1`, `base.2`, ...
pub(crate) fn fresh_value_name(g: &Graph, base: &str) -> String {
    fresh(base, |n| g.find_value(n).is_some())
}

fn fresh(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|k| format!("{base}.{k}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string()) // an unbounded range always finds one
}

/// The output type inference gives `op` on inputs of shapes `ins`, computed on a scratch
/// one-node graph; `None` when the op rejects them.
pub(crate) fn infer_op(op: &Op, ins: &[Shape]) -> Option<Shape> {
    let mut g = Graph::new("scratch");
    let mut ids = Vec::with_capacity(ins.len());
    for (i, s) in ins.iter().enumerate() {
        ids.push(
            g.add_input(&format!("in{i}"), TensorType::f32(s.clone()))
                .ok()?,
        );
    }
    let id = g.add_node("n", op.clone(), &ids, &["out"]).ok()?;
    infer_node(&g, id, ins).ok()?.pop()
}

/// A graph being rewritten by one round of a pass.
#[derive(Debug)]
pub(crate) struct Editor<'g> {
    pub(crate) g: &'g mut Graph,
    removed: HashSet<NodeId>,
}

impl<'g> Editor<'g> {
    pub(crate) fn new(g: &'g mut Graph) -> Editor<'g> {
        Editor {
            g,
            removed: HashSet::new(),
        }
    }

    /// True when this editor removed node `id` (its index may since name a new node).
    pub(crate) fn was_removed(&self, id: NodeId) -> bool {
        self.removed.contains(&id)
    }

    pub(crate) fn is_output(&self, v: ValueId) -> bool {
        self.g.outputs().contains(&v)
    }

    /// The shape of `v` (every value is typed: on entry by the verifier, after by [`add`]).
    ///
    /// [`add`]: Editor::add
    pub(crate) fn shape(&self, v: ValueId) -> Option<&Shape> {
        self.g.ty_of(v).map(|t| &t.shape)
    }

    /// The tensor of `v` when `v` is a weight.
    pub(crate) fn weight(&self, v: ValueId) -> Option<Arc<Tensor>> {
        self.g.value(v).weight().cloned()
    }

    /// The node producing `v` and its op, when a node does.
    pub(crate) fn producer(&self, v: ValueId) -> Option<(NodeId, &Node)> {
        self.g.producer(v).map(|id| (id, self.g.node(id)))
    }

    /// The value of `v` when it is a weight holding one element.
    pub(crate) fn scalar(&self, v: ValueId) -> Option<f32> {
        let w = self.g.value(v).weight()?;
        match w.data() {
            [x] => Some(*x),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, id: NodeId) -> Option<Node> {
        self.removed.insert(id);
        self.g.remove_node(id)
    }

    /// Adds node `name` computing `op` on `inputs` into the value named `out` (filling the
    /// placeholder a removed node left, or creating it), typed by shape inference.
    pub(crate) fn add(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
        out: &str,
    ) -> Result<ValueId, IrError> {
        let op_name = op.name();
        let shapes: Option<Vec<Shape>> = inputs.iter().map(|&v| self.shape(v).cloned()).collect();
        let id = self.g.add_node(name, op, inputs, &[out])?;
        let shapes = shapes.ok_or_else(|| IrError::node(name, op_name, "an input has no type"))?;
        let shape = infer_node(self.g, id, &shapes)?
            .pop()
            .ok_or_else(|| IrError::node(name, op_name, "inference gave no output"))?;
        let v = self.g.node(id).outputs[0]; // add_node defined exactly one output
        self.g.value_mut(v).ty = Some(TensorType::f32(shape));
        Ok(v)
    }

    /// Adds a weight under a fresh name derived from `base`.
    pub(crate) fn add_weight(&mut self, base: &str, t: Tensor) -> Result<ValueId, IrError> {
        let name = fresh_value_name(self.g, base);
        self.g.add_weight(&name, Arc::new(t))
    }

    /// Replaces node `id` by one node of the same name computing `op` on `inputs` into the
    /// same output value. Returns the output.
    pub(crate) fn replace(
        &mut self,
        id: NodeId,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, IrError> {
        let (name, out) = self.name_and_output(id);
        let old = self.remove(id);
        let v = self.add(&name, op, inputs, &out)?;
        if let Some(old) = old {
            self.retire_all(&old.inputs);
        }
        Ok(v)
    }

    /// The node's name and the name of its (single) output value.
    pub(crate) fn name_and_output(&self, id: NodeId) -> (String, String) {
        let n = self.g.node(id);
        let out = n.outputs.first().map(|&v| self.g.value(v).name.clone());
        (n.name.clone(), out.unwrap_or_default())
    }

    /// Removes node `id` and makes the readers of its output read `to` instead. When that
    /// output is a graph output it must keep its name, so `to`'s producer is rebuilt to define
    /// it; if `to` has no producer (an input or weight) or is itself a graph output, nothing
    /// changes and the result is `false`.
    pub(crate) fn bypass(&mut self, id: NodeId, to: ValueId) -> Result<bool, IrError> {
        let Some(&y) = self.g.node(id).outputs.first() else {
            return Ok(false);
        };
        if !self.is_output(y) {
            self.remove(id);
            self.g.replace_uses(y, to);
            self.retire(to);
            return Ok(true);
        }
        let Some(p) = self.g.producer(to).filter(|_| !self.is_output(to)) else {
            return Ok(false);
        };
        let out = self.g.value(y).name.clone();
        self.remove(id);
        let Some(pn) = self.remove(p) else {
            return Ok(false); // `p` produced `to`, so it exists
        };
        let y2 = self.add(&pn.name, pn.op, &pn.inputs, &out)?;
        self.g.replace_uses(to, y2);
        Ok(true)
    }

    /// Removes the producer of `v` if nothing reads `v` and it is not a graph output, then
    /// does the same for that producer's inputs.
    pub(crate) fn retire(&mut self, v: ValueId) {
        self.retire_all(&[v]);
    }

    pub(crate) fn retire_all(&mut self, vs: &[ValueId]) {
        let mut stack = vs.to_vec();
        while let Some(v) = stack.pop() {
            if !self.g.users(v).is_empty() || self.is_output(v) {
                continue;
            }
            let Some(p) = self.g.producer(v) else {
                continue;
            };
            let dead = self
                .g
                .node(p)
                .outputs
                .iter()
                .all(|&o| self.g.users(o).is_empty() && !self.g.outputs().contains(&o));
            if dead && let Some(n) = self.remove(p) {
                stack.extend(n.inputs);
            }
        }
    }
}
