//! What `excite inspect` shows: a summary, the JSON report, Graphviz DOT (fused kernels
//! coloured), and the `--explain` list of rewrites.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use excite_ir::{Graph, Op, ValueDef, stats};
use excite_passes::metrics::{bytes_moved, kernel_count, se_blocks};
use excite_passes::{EqsatReport, RewriteEvent};
use serde_json::json;

/// Kernel count and estimated bytes moved (batch 1) of one stage of a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub kernels: usize,
    pub bytes_moved: u64,
}

impl Cost {
    pub fn of(g: &Graph) -> Cost {
        Cost {
            kernels: kernel_count(g),
            bytes_moved: bytes_moved(g, 1),
        }
    }
}

/// A graph at some stage, with what the passes did to get it there.
#[derive(Debug)]
pub struct Report<'a> {
    /// `imported`, `optimized`, or `after <pass>`.
    pub stage: String,
    pub graph: &'a Graph,
    /// The imported graph's cost, when passes ran.
    pub before: Option<Cost>,
    pub events: &'a [RewriteEvent],
    pub eqsat: &'a [EqsatReport],
    pub timings: &'a [(&'static str, std::time::Duration)],
    /// Peak activation bytes of the CPU backend's memory plan at batch 1, when compiled.
    pub planned_peak_bytes: Option<usize>,
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

/// The JSON report: `nodes`, `ops`, `kernels`, `se_blocks_fused`, bytes moved before and after,
/// parameters, MACs, I/O, the passes' timings and equality-saturation runs; `explain` when asked.
pub fn to_json(r: &Report<'_>, explain: bool) -> serde_json::Value {
    let g = r.graph;
    let ops: BTreeMap<&str, usize> = stats::op_histogram(g).into_iter().collect();
    let after = Cost::of(g);
    let mut j = json!({
        "name": g.name,
        "stage": r.stage,
        "nodes": g.node_count(),
        "ops": ops,
        "kernels": after.kernels,
        "kernels_before": r.before.map_or(after.kernels, |b| b.kernels),
        "se_blocks_fused": se_blocks(g),
        "bytes_moved": after.bytes_moved,
        "bytes_moved_before": r.before.map_or(after.bytes_moved, |b| b.bytes_moved),
        "planned_peak_bytes": r.planned_peak_bytes,
        "params": stats::trainable_params(g),
        "weight_elements": g.param_count(),
        "macs_batch1": stats::macs(g, 1).ok(),
        "inputs": value_list(g, g.inputs()),
        "outputs": value_list(g, g.outputs()),
        "passes": r.timings.iter().map(|(p, t)| json!({"pass": p, "ms": t.as_secs_f64() * 1e3})).collect::<Vec<_>>(),
        "eqsat": r.eqsat.iter().map(|e| json!({
            "rule_set": e.rule_set,
            "stop_reason": e.stop_reason,
            "iterations": e.iterations,
            "egraph_nodes": e.egraph_nodes,
            "egraph_classes": e.egraph_classes,
            "ms": e.time.as_secs_f64() * 1e3,
        })).collect::<Vec<_>>(),
    });
    if explain {
        j["explain"] = r
            .events
            .iter()
            .map(|e| json!({"pass": e.pass, "rule": e.rule, "node": e.node, "detail": e.detail}))
            .collect();
    }
    j
}

/// A human summary: stage, I/O, kernels before and after, sizes, the op histogram.
pub fn summary(r: &Report<'_>) -> String {
    let g = r.graph;
    let mut s = String::new();
    let _ = writeln!(s, "graph {} ({})", g.name, r.stage);
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
    let after = Cost::of(g);
    let mb = |b: u64| b as f64 / 1e6;
    match r.before {
        Some(b) => {
            let _ = writeln!(
                s,
                "  kernels: {} imported -> {} {} ({} SE blocks fused)",
                b.kernels,
                after.kernels,
                r.stage,
                se_blocks(g)
            );
            let _ = writeln!(
                s,
                "  bytes moved per image (estimate): {:.1} MB -> {:.1} MB",
                mb(b.bytes_moved),
                mb(after.bytes_moved)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "  {} nodes, {} kernels, {} SE blocks fused, {:.1} MB moved per image (estimate)",
                g.node_count(),
                after.kernels,
                se_blocks(g),
                mb(after.bytes_moved)
            );
        }
    }
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
    for e in r.eqsat {
        let _ = writeln!(
            s,
            "  eqsat `{}`: {} after {} iterations, {} e-nodes, {:.1} ms",
            e.rule_set,
            e.stop_reason,
            e.iterations,
            e.egraph_nodes,
            e.time.as_secs_f64() * 1e3
        );
    }
    let _ = writeln!(s, "  ops:");
    for (op, n) in stats::op_histogram(g) {
        let _ = writeln!(s, "    {op:<20} {n}");
    }
    s
}

/// `--explain`: one line per rewrite, by the user's node names.
pub fn explain(events: &[RewriteEvent]) -> String {
    let mut s = String::new();
    for e in events {
        let _ = write!(s, "{:<16} {:<28} {}", e.pass, e.rule, e.node);
        if !e.detail.is_empty() {
            let _ = write!(s, "  ({})", e.detail);
        }
        s.push('\n');
    }
    if events.is_empty() {
        s.push_str("no rewrites\n");
    }
    s
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Fill colour of a node: fused kernels stand out, views are white.
fn colour(op: &Op) -> &'static str {
    match op {
        Op::SeBlock(_) => "orange",
        Op::FusedConv(_) => "lightblue",
        Op::Identity | Op::Dropout | Op::Flatten { .. } | Op::Reshape { .. } => "white",
        _ => "lightgrey",
    }
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
        let _ = writeln!(
            s,
            "  {} [label={}, style=filled, fillcolor={}];",
            dot_id(&format!("n:{}", node.name)),
            dot_id(&format!("{}\n{}", node.name, node.op.name())),
            colour(&node.op)
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

/// Renders DOT to SVG with Graphviz's `dot`, or says clearly that Graphviz is missing.
pub fn to_svg(dot: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "--format svg needs Graphviz's `dot` program ({e}); install Graphviz \
                 (e.g. `apt-get install graphviz`) or use --format dot"
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "Graphviz `dot` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
