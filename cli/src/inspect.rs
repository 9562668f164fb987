//! What `excite inspect` shows: a summary, the JSON report, and Graphviz DOT.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use excite_ir::{Graph, Op, ValueDef, stats};
use serde_json::json;

/// Ops that move no data (views or no-ops) and so launch no kernel of their own.
pub fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity | Op::Dropout | Op::Flatten { .. } | Op::Reshape { .. }
    )
}

/// Number of kernels the graph launches as it stands (one per node that moves data).
pub fn kernel_count(g: &Graph) -> usize {
    g.node_ids().filter(|&n| !is_view(&g.node(n).op)).count()
}

fn value_list(g: &Graph, ids: &[excite_ir::ValueId]) -> Vec<serde_json::Value> {
    ids.iter()
        .map(|&v| {
            let val = g.value(v);
            json!({
                "name": val.name,
                "type": val.ty.as_ref().map(|t| t.to_string()),
            })
        })
        .collect()
}

/// The JSON report: `nodes`, `ops`, `kernels`, `se_blocks_fused`, parameters, MACs, I/O.
pub fn to_json(g: &Graph) -> serde_json::Value {
    let ops: BTreeMap<&str, usize> = stats::op_histogram(g).into_iter().collect();
    let weight_bytes: usize = g.weights().map(|(_, t)| t.numel() * 4).sum();
    json!({
        "name": g.name,
        "nodes": g.node_count(),
        "ops": ops,
        "kernels": kernel_count(g),
        "se_blocks_fused": 0,
        "params": stats::trainable_params(g),
        "weight_elements": g.param_count(),
        "weight_bytes": weight_bytes,
        "macs_batch1": stats::macs(g, 1).ok(),
        "inputs": value_list(g, g.inputs()),
        "outputs": value_list(g, g.outputs()),
    })
}

/// A human summary: I/O, sizes, the op histogram.
pub fn summary(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "graph {}", g.name);
    for &v in g.inputs() {
        let val = g.value(v);
        let ty = val.ty.as_ref().map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(s, "  input  {}: {ty}", val.name);
    }
    for &v in g.outputs() {
        let val = g.value(v);
        let ty = val.ty.as_ref().map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(s, "  output {}: {ty}", val.name);
    }
    let _ = writeln!(
        s,
        "  {} nodes, {} kernels, {} SE blocks fused",
        g.node_count(),
        kernel_count(g),
        0
    );
    let _ = writeln!(
        s,
        "  {} parameters ({} weight elements, {:.1} MB)",
        stats::trainable_params(g),
        g.param_count(),
        g.param_count() as f64 * 4.0 / 1e6
    );
    if let Ok(m) = stats::macs(g, 1) {
        let _ = writeln!(s, "  {:.3} GMACs per image", m as f64 / 1e9);
    }
    let _ = writeln!(s, "  ops:");
    for (op, n) in stats::op_histogram(g) {
        let _ = writeln!(s, "    {op:<20} {n}");
    }
    s
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT: one box per node, edges labelled with the value's type.
pub fn to_dot(g: &Graph) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", dot_id(&g.name));
    let _ = writeln!(s, "  node [shape=box, fontname=\"monospace\"];");
    for &v in g.inputs() {
        let name = &g.value(v).name;
        let _ = writeln!(s, "  {} [shape=ellipse];", dot_id(&format!("in:{name}")));
    }
    for &v in g.outputs() {
        let name = &g.value(v).name;
        let _ = writeln!(s, "  {} [shape=ellipse];", dot_id(&format!("out:{name}")));
    }
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids().collect());
    for n in order {
        let node = g.node(n);
        let fill = if is_view(&node.op) {
            "white"
        } else {
            "lightgrey"
        };
        let _ = writeln!(
            s,
            "  {} [label={}, style=filled, fillcolor={fill}];",
            dot_id(&format!("n:{}", node.name)),
            dot_id(&format!("{}\n{}", node.name, node.op.name()))
        );
        for &v in &node.inputs {
            let val = g.value(v);
            let label = val.ty.as_ref().map(|t| t.to_string()).unwrap_or_default();
            let src = match val.def {
                ValueDef::Node { node: p, .. } => format!("n:{}", g.node(p).name),
                ValueDef::Input => format!("in:{}", val.name),
                _ => continue,
            };
            let _ = writeln!(
                s,
                "  {} -> {} [label={}];",
                dot_id(&src),
                dot_id(&format!("n:{}", node.name)),
                dot_id(&label)
            );
        }
    }
    for &v in g.outputs() {
        if let Some(p) = g.producer(v) {
            let _ = writeln!(
                s,
                "  {} -> {};",
                dot_id(&format!("n:{}", g.node(p).name)),
                dot_id(&format!("out:{}", g.value(v).name))
            );
        }
    }
    s.push_str("}\n");
    s
}
