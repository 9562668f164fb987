//! The graph: nodes, values, and the petgraph DAG of their data dependencies.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use crate::error::IrError;
use crate::op::Op;
use crate::shape::{Shape, TensorType};
use crate::tensor::Tensor;

/// Handle of a node. Stable across removals of other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex<u32>);

impl NodeId {
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// Handle of a value (a graph input, a weight, or a node output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What defines a value.
#[derive(Clone, Debug)]
pub enum ValueDef {
    /// Referenced but (not yet) defined; the verifier reports any left at the end.
    Undefined,
    /// A graph input fed at run time.
    Input,
    /// A constant tensor, shared by every node that reads it.
    Weight(Arc<Tensor>),
    /// Output `index` of `node`.
    Node { node: NodeId, index: usize },
}

/// A named value.
#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    /// Set for inputs and weights when created, for node outputs by shape inference.
    pub ty: Option<TensorType>,
    pub def: ValueDef,
}

impl Value {
    pub fn weight(&self) -> Option<&Arc<Tensor>> {
        match &self.def {
            ValueDef::Weight(t) => Some(t),
            _ => None,
        }
    }
}

/// One operation.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

/// A network graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    dag: StableDiGraph<Node, ValueId>,
    values: Vec<Value>,
    value_names: HashMap<String, ValueId>,
    node_names: HashMap<String, NodeId>,
    /// Nodes reading each value, once per use, indexed by `ValueId`.
    uses: Vec<Vec<NodeId>>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    fn new_value(&mut self, name: &str, def: ValueDef, ty: Option<TensorType>) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value {
            name: name.to_string(),
            ty,
            def,
        });
        self.uses.push(Vec::new());
        self.value_names.insert(name.to_string(), id);
        id
    }

    /// Defines `name` with `def`: fills a placeholder created by [`Graph::value_ref`], or makes
    /// a new value. Redefinition is an error naming `by`.
    fn define(
        &mut self,
        name: &str,
        def: ValueDef,
        ty: Option<TensorType>,
        by: &str,
    ) -> Result<ValueId, IrError> {
        if let Some(&id) = self.value_names.get(name) {
            let v = &mut self.values[id.index()];
            if !matches!(v.def, ValueDef::Undefined) {
                return Err(IrError::DuplicateValue {
                    value: name.to_string(),
                    by: by.to_string(),
                });
            }
            v.def = def;
            v.ty = ty;
            return Ok(id);
        }
        Ok(self.new_value(name, def, ty))
    }

    /// Declares a graph input.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> Result<ValueId, IrError> {
        let id = self.define(name, ValueDef::Input, Some(ty), "graph input")?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Declares a weight (constant). The tensor is shared, never copied.
    pub fn add_weight(&mut self, name: &str, t: Arc<Tensor>) -> Result<ValueId, IrError> {
        let ty = TensorType::f32(Shape::fixed(t.shape()));
        self.define(name, ValueDef::Weight(t), Some(ty), "weight")
    }

    /// The value called `name`, created undefined if it does not exist yet (for readers that
    /// meet uses before definitions).
    pub fn value_ref(&mut self, name: &str) -> ValueId {
        match self.value_names.get(name) {
            Some(&id) => id,
            None => self.new_value(name, ValueDef::Undefined, None),
        }
    }

    /// Adds a node reading `inputs` and defining values named `outputs`.
    pub fn add_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
        outputs: &[&str],
    ) -> Result<NodeId, IrError> {
        if self.node_names.contains_key(name) {
            return Err(IrError::DuplicateNode {
                node: name.to_string(),
            });
        }
        if let Some(bad) = inputs.iter().find(|v| v.index() >= self.values.len()) {
            return Err(IrError::node(
                name,
                op.name(),
                format!("input handle {} does not belong to this graph", bad.index()),
            ));
        }
        let id = NodeId(self.dag.add_node(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            outputs: Vec::new(),
        }));
        let mut outs = Vec::with_capacity(outputs.len());
        for (index, out) in outputs.iter().enumerate() {
            match self.define(out, ValueDef::Node { node: id, index }, None, name) {
                Ok(v) => outs.push(v),
                Err(e) => {
                    self.dag.remove_node(id.0);
                    return Err(e);
                }
            }
        }
        self.node_names.insert(name.to_string(), id);
        for &v in inputs {
            self.uses[v.index()].push(id);
            if let ValueDef::Node { node, .. } = self.values[v.index()].def {
                self.dag.add_edge(node.0, id.0, v);
            }
        }
        for &v in &outs {
            for &user in &self.uses[v.index()] {
                self.dag.add_edge(id.0, user.0, v);
            }
        }
        self.dag[id.0].outputs = outs;
        Ok(id)
    }

    /// Marks `v` as a graph output.
    pub fn add_output(&mut self, v: ValueId) -> Result<(), IrError> {
        if self.outputs.contains(&v) {
            return Err(IrError::DuplicateOutput {
                value: self.values[v.index()].name.clone(),
            });
        }
        self.outputs.push(v);
        Ok(())
    }

    /// Replaces graph output `old` by `new` (used by passes that rewrite the last node).
    pub fn replace_output(&mut self, old: ValueId, new: ValueId) {
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node; its outputs become undefined.
    pub fn remove_node(&mut self, id: NodeId) -> Option<Node> {
        let node = self.dag.remove_node(id.0)?;
        self.node_names.remove(&node.name);
        for &v in &node.inputs {
            let uses = &mut self.uses[v.index()];
            if let Some(p) = uses.iter().position(|&u| u == id) {
                uses.remove(p);
            }
        }
        for &v in &node.outputs {
            self.values[v.index()].def = ValueDef::Undefined;
        }
        Some(node)
    }

    /// Makes every reader of `old` read `new` instead (graph outputs too).
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        let users = std::mem::take(&mut self.uses[old.index()]);
        for &user in &users {
            for inp in &mut self.dag[user.0].inputs {
                if *inp == old {
                    *inp = new;
                }
            }
            let stale: Vec<_> = self
                .dag
                .edges_directed(user.0, Direction::Incoming)
                .filter(|e| *e.weight() == old)
                .map(|e| e.id())
                .collect();
            for e in stale {
                self.dag.remove_edge(e);
            }
            if let ValueDef::Node { node, .. } = self.values[new.index()].def {
                self.dag.add_edge(node.0, user.0, new);
            }
        }
        self.uses[new.index()].extend(users);
        self.replace_output(old, new);
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id.0]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.dag[id.0]
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }

    pub fn find_value(&self, name: &str) -> Option<ValueId> {
        self.value_names.get(name).copied()
    }

    pub fn find_node(&self, name: &str) -> Option<NodeId> {
        self.node_names.get(name).copied()
    }

    /// All values ever created, including undefined placeholders.
    pub fn value_ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.values.len() as u32).map(ValueId)
    }

    /// Node handles in insertion order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.dag.node_indices().map(NodeId)
    }

    pub fn node_count(&self) -> usize {
        self.dag.node_count()
    }

    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    /// Weights in creation order.
    pub fn weights(&self) -> impl Iterator<Item = (ValueId, &Arc<Tensor>)> + '_ {
        self.value_ids()
            .filter_map(|id| self.values[id.index()].weight().map(|t| (id, t)))
    }

    /// Total number of weight elements (the model's parameter count).
    pub fn param_count(&self) -> usize {
        self.weights().map(|(_, t)| t.numel()).sum()
    }

    /// The node defining `v`, if a node does.
    pub fn producer(&self, v: ValueId) -> Option<NodeId> {
        match self.values[v.index()].def {
            ValueDef::Node { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Nodes reading `v`, once per use.
    pub fn users(&self, v: ValueId) -> &[NodeId] {
        &self.uses[v.index()]
    }

    /// Nodes in a topological order that keeps insertion order wherever the dependencies
    /// allow, or the first node found on a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, IrError> {
        let mut indeg: HashMap<NodeIndex<u32>, usize> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for n in self.dag.node_indices() {
            let d = self
                .dag
                .edges_directed(n, Direction::Incoming)
                .map(|e| e.source())
                .collect::<HashSet<_>>()
                .len();
            indeg.insert(n, d);
            if d == 0 {
                ready.push(Reverse(n));
            }
        }
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(Reverse(n)) = ready.pop() {
            order.push(NodeId(n));
            let succ: HashSet<_> = self
                .dag
                .edges_directed(n, Direction::Outgoing)
                .map(|e| e.target())
                .collect();
            for s in succ {
                if let Some(d) = indeg.get_mut(&s) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse(s));
                    }
                }
            }
        }
        if order.len() != indeg.len() {
            let stuck = self
                .dag
                .node_indices()
                .find(|n| indeg.get(n).is_some_and(|&d| d > 0));
            let node = stuck.map(|n| self.dag[n].name.clone()).unwrap_or_default();
            return Err(IrError::Cycle { node });
        }
        Ok(order)
    }

    /// The type of `v`, or an error naming `node` when shape inference has not set it.
    pub fn ty_of(&self, v: ValueId) -> Option<&TensorType> {
        self.values[v.index()].ty.as_ref()
    }
}
