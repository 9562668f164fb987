//! The e-graph analysis: what rule conditions and the cost function know about each e-class.
//!
//! A value e-class carries its shape (from the verified graph's types) and whether it is
//! *shared*: read by more than one node of the original graph, or a graph output. A fused
//! kernel may absorb only unshared intermediates, since nothing else may need them. Every
//! e-node that stands for a node, original or fused, takes the facts of the node whose name it
//! carries: a fused node is named after the root it replaces and computes that root's value.
//! Leaves that are not values (names, attributes, `none`) have no shape.
//!
//! The analysis also records every fused e-node a rule added, with the rule's name, so that
//! `--explain` can say which rule made each kernel of the extracted graph.

use std::collections::HashMap;

use egg::{Analysis, DidMerge, EGraph, Id, Symbol};
use excite_ir::{Dim, Shape};

use super::lang::SeLang;

/// The e-graph of a network.
pub type SeGraph = EGraph<SeLang, GraphAnalysis>;

/// What is known about one e-class.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueInfo {
    /// `None` for leaves that are not tensors.
    pub shape: Option<Shape>,
    /// Read by more than one node of the original graph, or a graph output.
    pub shared: bool,
    /// A weight (constant tensor).
    pub constant: bool,
}

impl ValueInfo {
    /// The shape as `[N, C, H, W]` when it has rank 4 with a fixed channel count.
    pub fn nchw(&self) -> Option<(Dim, usize, Dim, Dim)> {
        match self.shape.as_ref()?.dims() {
            &[n, Dim::Fixed(c), h, w] => Some((n, c, h, w)),
            _ => None,
        }
    }

    /// The fixed dims of a constant, `None` for anything else.
    pub fn constant_dims(&self) -> Option<Vec<usize>> {
        self.shape.as_ref().filter(|_| self.constant)?.as_fixed()
    }

    /// Number of elements with the batch taken as 1 (0 for non-tensors).
    pub fn numel(&self) -> u64 {
        self.shape
            .as_ref()
            .and_then(|s| s.numel_with(1))
            .map_or(0, |n| n as u64)
    }
}

/// The analysis state: facts about the original graph, keyed by name, and the fused e-nodes
/// the rules added.
#[derive(Debug, Default)]
pub struct GraphAnalysis {
    /// The output of every node of the original graph, by node name.
    pub nodes: HashMap<Symbol, ValueInfo>,
    /// Graph inputs and weights, by value name.
    pub values: HashMap<Symbol, ValueInfo>,
    /// Each fused e-node a rule added (children as they were then) and the rule's name.
    pub created: Vec<(SeLang, Symbol)>,
}

/// The node name an e-class holds, if it is a name leaf.
pub fn name_in(egraph: &SeGraph, id: Id) -> Option<Symbol> {
    egraph[id].nodes.iter().find_map(|n| match n {
        SeLang::Name(name) => Some(name.0),
        _ => None,
    })
}

/// Facts about the node called by the name leaf `id`.
pub fn node_info(egraph: &SeGraph, id: Id) -> Option<&ValueInfo> {
    egraph.analysis.nodes.get(&name_in(egraph, id)?)
}

/// True when the e-class is the `none` leaf (an absent optional input).
pub fn is_none(egraph: &SeGraph, id: Id) -> bool {
    egraph[id]
        .nodes
        .iter()
        .any(|n| matches!(n, SeLang::NoValue))
}

impl Analysis<SeLang> for GraphAnalysis {
    type Data = ValueInfo;

    fn make(egraph: &mut SeGraph, enode: &SeLang, _id: Id) -> ValueInfo {
        if let SeLang::Value(v) = enode {
            return egraph
                .analysis
                .values
                .get(&v.0)
                .cloned()
                .unwrap_or_default();
        }
        enode
            .name_child()
            .and_then(|n| node_info(egraph, n))
            .cloned()
            .unwrap_or_default()
    }

    fn merge(&mut self, a: &mut ValueInfo, b: ValueInfo) -> DidMerge {
        // Only a root's class and the fused nodes named after it ever merge, and they agree
        // on the shape; `shared` is kept conservative either way.
        debug_assert!(
            a.shape.is_none() || b.shape.is_none() || a.shape == b.shape,
            "a rule merged values of shapes {:?} and {:?}",
            a.shape,
            b.shape
        );
        let mut changed_a = false;
        if a.shape.is_none() && b.shape.is_some() {
            a.shape = b.shape.clone();
            changed_a = true;
        }
        if b.shared && !a.shared {
            a.shared = true;
            changed_a = true;
        }
        if a.constant && !b.constant {
            a.constant = false;
            changed_a = true;
        }
        let changed_b = *a != b;
        DidMerge(changed_a, changed_b)
    }
}
