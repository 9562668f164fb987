//! Reshapes around the squeezed `[N,C,1,1]` chain: activations move before a reshape (so the
//! chain stays 4-D), two reshapes collapse into one, and a reshape to its input's own shape
//! disappears.
//!
//! ```text
//! before:  node f = Flatten(h.4d) {axis=1} -> h: f32[N,4]
//!          node act = Relu(h) -> a: f32[N,4]
//!          node r = Reshape(a) {shape=[0,4,1,1], allowzero=false} -> a4: f32[N,4,1,1]
//! after:   node act = Relu(h.4d) -> a.4d: f32[N,4,1,1]      # readers of a4 read a.4d
//! ```
//! A reshape whose output is a graph output and whose input cannot take its name (a graph
//! input, a weight, another graph output) stays.

use excite_ir::{Dim, IrError, NodeId, Op, Shape};

use super::Fired;
use super::edit::{Editor, fresh_name, fresh_value_name, infer_op};

fn is_reshape(op: &Op) -> bool {
    matches!(op, Op::Flatten { .. } | Op::Reshape { .. })
}

/// `act(R(v))` -> `R(act(v))`: the activation keeps its name and now reads `v`; a copy of the
/// reshape named `<act>.flatten`/`<act>.reshape` defines the activation's old output.
pub(super) fn act_before_reshape(
    ed: &mut Editor<'_>,
    id: NodeId,
) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let act_op = node.op.clone();
    let Some((_, r)) = ed.producer(node.inputs[0]) else {
        return Ok(None);
    };
    if !is_reshape(&r.op) {
        return Ok(None);
    }
    let (r_op, r_name, v) = (r.op.clone(), r.name.clone(), r.inputs[0]);
    let f = node.inputs[0];
    let (name, out) = ed.name_and_output(id);
    ed.remove(id);
    let a4 = fresh_value_name(ed.g, &format!("{out}.4d"));
    let a4 = ed.add(&name, act_op, &[v], &a4)?;
    let kind = if matches!(r_op, Op::Flatten { .. }) {
        "flatten"
    } else {
        "reshape"
    };
    let copy = fresh_name(ed.g, &format!("{name}.{kind}"));
    ed.add(&copy, r_op, &[a4], &out)?;
    ed.retire(f);
    Ok(Some(Fired::new(
        "act-before-reshape",
        &name,
        format!("moved before `{r_name}`"),
    )))
}

/// `op(R(a), R(b))` -> `R(op(a, b))` for a binary elementwise op whose operands are the same
/// reshape of two values of one shape (e.g. `z * Sigmoid(z)` written on the 2-D FC output after
/// the FC and the Sigmoid moved to 4-D), so the decomposed activation is seen in 4-D.
pub(super) fn binary_before_reshape(
    ed: &mut Editor<'_>,
    id: NodeId,
) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let op = node.op.clone();
    let [x, y] = node.inputs[..] else {
        return Ok(None);
    };
    let (Some((_, rx)), Some((_, ry))) = (ed.producer(x), ed.producer(y)) else {
        return Ok(None);
    };
    if !is_reshape(&rx.op) || rx.op != ry.op {
        return Ok(None);
    }
    let (r_op, r_name, a, b) = (rx.op.clone(), rx.name.clone(), rx.inputs[0], ry.inputs[0]);
    match (ed.shape(a), ed.shape(b)) {
        (Some(sa), Some(sb)) if sa == sb => {}
        _ => return Ok(None),
    }
    let (name, out) = ed.name_and_output(id);
    ed.remove(id);
    let v4 = fresh_value_name(ed.g, &format!("{out}.4d"));
    let v4 = ed.add(&name, op, &[a, b], &v4)?;
    let kind = if matches!(r_op, Op::Flatten { .. }) {
        "flatten"
    } else {
        "reshape"
    };
    let copy = fresh_name(ed.g, &format!("{name}.{kind}"));
    ed.add(&copy, r_op, &[v4], &out)?;
    ed.retire_all(&[x, y]);
    Ok(Some(Fired::new(
        "binary-before-reshape",
        &name,
        format!("moved before `{r_name}`"),
    )))
}

/// A Flatten/Reshape node: drop it if it keeps its input's shape, else merge it with a
/// reshape feeding it.
pub(super) fn reshape(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let (x, y) = (node.inputs[0], node.outputs[0]);
    let (Some(xs), Some(ys)) = (ed.shape(x).cloned(), ed.shape(y).cloned()) else {
        return Ok(None);
    };
    let name = node.name.clone();
    if xs == ys {
        if ed.bypass(id, x)? {
            return Ok(Some(Fired::new(
                "reshape-noop",
                &name,
                format!("to its input's shape {xs}"),
            )));
        }
        return Ok(None);
    }
    let Some((_, inner)) = ed.producer(x) else {
        return Ok(None);
    };
    if !is_reshape(&inner.op) {
        return Ok(None);
    }
    let (inner_name, v) = (inner.name.clone(), inner.inputs[0]);
    let Some(vs) = ed.shape(v).cloned() else {
        return Ok(None);
    };
    let Some(op) = reshape_op(&vs, &ys) else {
        return Ok(None);
    };
    ed.replace(id, op, &[v])?;
    Ok(Some(Fired::new(
        "reshape-of-reshape",
        &name,
        format!("merged with `{inner_name}`"),
    )))
}

/// A Flatten or Reshape taking `from` to `to` (checked by shape inference), preferring
/// `Flatten`, and copying (`0`) the leading dims that stay, so the symbolic batch survives.
fn reshape_op(from: &Shape, to: &Shape) -> Option<Op> {
    if to.rank() == 2 {
        for axis in 0..=from.rank() {
            let op = Op::Flatten { axis };
            if infer_op(&op, std::slice::from_ref(from)).as_ref() == Some(to) {
                return Some(op);
            }
        }
    }
    let mut shape = Vec::with_capacity(to.rank());
    for (i, d) in to.dims().iter().enumerate() {
        shape.push(match d {
            d if from.dims().get(i) == Some(d) => 0,
            Dim::Fixed(n) if *n > 0 => i64::try_from(*n).ok()?,
            Dim::Fixed(_) => return None,
            Dim::Batch => -1,
        });
    }
    let op = Op::Reshape {
        shape,
        allowzero: false,
    };
    (infer_op(&op, std::slice::from_ref(from)).as_ref() == Some(to)).then_some(op)
}
