//! The `.seir` printer.
//!
//! Output is deterministic: inputs in declaration order, weights in creation order, nodes in
//! [`Graph::topo_order`] (insertion order where the dependencies allow; plain insertion order if
//! the graph has a cycle, so even a broken graph prints), then the graph outputs. Every
//! attribute is written, in canonical order; node output types are written when known.

use std::fmt::Write;

use super::attrs::{attrs_of, fmt_f32};
use super::cursor::is_plain_char;
use crate::graph::{Graph, ValueId};
use crate::shape::{Shape, TensorType};

/// The text form of `g`. Weight data is not included: it lives in the weight store
/// (`model.safetensors` beside `model.seir`).
pub fn print(g: &Graph) -> String {
    write_graph(g, false)
}

/// The text form of `g` with every weight's data written inline (`weight b: f32[2] = [..]`),
/// giving a self-contained text. Meant for small graphs: tests and hand-written examples.
pub fn print_inline_weights(g: &Graph) -> String {
    write_graph(g, true)
}

/// Appends `name`, quoted and escaped unless it is a non-empty run of `[A-Za-z0-9_.:/-]` that
/// does not end in `:`.
pub(super) fn push_name(out: &mut String, name: &str) {
    if !name.is_empty() && name.chars().all(is_plain_char) && !name.ends_with(':') {
        out.push_str(name);
        return;
    }
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_value(out: &mut String, g: &Graph, v: ValueId) {
    push_name(out, &g.value(v).name);
}

fn write_graph(g: &Graph, inline: bool) -> String {
    let mut out = String::from("graph ");
    push_name(&mut out, &g.name);
    out.push_str(" {\n");
    for &v in g.inputs() {
        out.push_str("  input ");
        push_value(&mut out, g, v);
        if let Some(ty) = g.ty_of(v) {
            let _ = write!(out, ": {ty}");
        }
        out.push('\n');
    }
    for (v, t) in g.weights() {
        out.push_str("  weight ");
        push_value(&mut out, g, v);
        let _ = write!(out, ": {}", TensorType::f32(Shape::fixed(t.shape())));
        if inline {
            out.push_str(" = [");
            for (i, x) in t.data().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&fmt_f32(*x));
            }
            out.push(']');
        }
        out.push('\n');
    }
    let order = g
        .topo_order()
        .unwrap_or_else(|_| g.node_ids().collect::<Vec<_>>());
    for id in order {
        let node = g.node(id);
        out.push_str("  node ");
        push_name(&mut out, &node.name);
        let _ = write!(out, " = {}(", node.op.name());
        for (i, &v) in node.inputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_value(&mut out, g, v);
        }
        out.push(')');
        let attrs = attrs_of(&node.op);
        if !attrs.is_empty() {
            out.push_str(" {");
            for (i, (k, a)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k}={a}");
            }
            out.push('}');
        }
        for (i, &v) in node.outputs.iter().enumerate() {
            out.push_str(if i == 0 { " -> " } else { ", " });
            push_value(&mut out, g, v);
            if let Some(ty) = g.ty_of(v) {
                let _ = write!(out, ": {ty}");
            }
        }
        out.push('\n');
    }
    for &v in g.outputs() {
        out.push_str("  output ");
        push_value(&mut out, g, v);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}
