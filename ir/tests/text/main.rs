//! End-to-end tests of the `.seir` text form: hand-written models round-trip through
//! `parse` + `print`, API-built graphs through `print` + `parse`, weights through safetensors,
//! bad texts give located errors, and no input makes the parser panic.

mod errors;
mod fixtures;
mod fuzz;
mod random_graphs;
mod roundtrip;
mod weights;

use excite_ir::Graph;
use excite_ir::text::{self, WeightStore};

/// A structural fingerprint of a graph built from the derived `Debug` forms (independent of
/// the printer): name, inputs, weights with their exact bits, nodes in topological order with
/// ops, operand and result names and types, and outputs.
pub fn structure(g: &Graph) -> String {
    let mut s = format!("graph {:?}\n", g.name);
    for &v in g.inputs() {
        s += &format!("input {:?} {:?}\n", g.value(v).name, g.ty_of(v));
    }
    for (v, t) in g.weights() {
        let bits: Vec<u32> = t.data().iter().map(|x| x.to_bits()).collect();
        s += &format!("weight {:?} {:?} {bits:?}\n", g.value(v).name, t.shape());
    }
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    for id in order {
        let n = g.node(id);
        let ins: Vec<_> = n.inputs.iter().map(|&v| &g.value(v).name).collect();
        let outs: Vec<_> = n
            .outputs
            .iter()
            .map(|&v| (&g.value(v).name, g.ty_of(v)))
            .collect();
        s += &format!("node {:?} {:?} {ins:?} {outs:?}\n", n.name, n.op);
    }
    let outs: Vec<_> = g.outputs().iter().map(|&v| &g.value(v).name).collect();
    s += &format!("outputs {outs:?}\n");
    s
}

/// Parses with placeholder weights, panicking with the error (tests only).
pub fn parse_ph(src: &str) -> Graph {
    match text::parse_with_placeholder_weights(src, &WeightStore::new()) {
        Ok(g) => g,
        Err(e) => panic!("{e}\n--- in ---\n{src}"),
    }
}
