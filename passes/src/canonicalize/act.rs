//! Activations that exporters write decomposed, and `Expand` before a broadcasting `Mul`.
//!
//! - `silu`: `x * Sigmoid(x)` (either order) -> `Silu(x)`.
//! - `hardswish`: `x * HardSigmoid{alpha=1/6, beta=1/2}(x)` (either order) -> `HardSwish(x)`.
//! - `hardsigmoid-from-clip`: `Clip(x + 3, 0, 6) / 6` -> `HardSigmoid{1/6, 1/2}(x)`.
//! - `hardswish-from-clip`: `x * Clip(x + 3, 0, 6) / 6` -> `HardSwish(x)`.
//! - `expand-mul`: `Mul(x, Expand(g))` -> `Mul(x, g)` when broadcasting `g` against `x` gives
//!   the same output shape.
//!
//! "/ 6" is `Div` by a one-element constant 6 or `Mul` by one close to 1/6; "+ 3" is `Add` of
//! a one-element constant 3 in either order. The replacement keeps the root node's name
//! (the `Mul` or `Div`) and its output value.
//!
//! ```text
//! before:  node sig = Sigmoid(h) -> h.sig: f32[N,4,1,1]
//!          node act = Mul(h, h.sig) -> a: f32[N,4,1,1]
//! after:   node act = Silu(h) -> a: f32[N,4,1,1]
//! ```
//! Left alone: other constants, `Clip` bounds other than `[0, 6]`, gates of another value
//! than the one multiplied, and a constant that would broadcast `x` to a larger shape.

use excite_ir::infer::broadcast_shapes;
use excite_ir::{IrError, NodeId, Op, ValueId};

use super::Fired;
use super::edit::Editor;

const SIXTH: f32 = 1.0 / 6.0;

fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6
}

/// Rules rooted at a `Mul` or `Div`.
pub(super) fn mul_div(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let is_mul = matches!(node.op, Op::Mul);
    let [p, q] = node.inputs[..] else {
        return Ok(None);
    };
    let out = node.outputs[0];
    let name = node.name.clone();
    if is_mul {
        for (x, gate) in [(p, q), (q, p)] {
            let Some((_, gn)) = ed.producer(gate) else {
                continue;
            };
            if gn.inputs[0] != x {
                continue;
            }
            let (rule, op) = match gn.op {
                Op::Sigmoid => ("silu", Op::Silu),
                Op::HardSigmoid { alpha, beta } if near(alpha, SIXTH) && near(beta, 0.5) => {
                    ("hardswish", Op::HardSwish)
                }
                _ => continue,
            };
            let detail = format!("{} of `{}`", op.name(), gn.name);
            ed.replace(id, op, &[x])?;
            return Ok(Some(Fired::new(rule, &name, detail)));
        }
        for (x, e) in [(p, q), (q, p)] {
            let Some((_, en)) = ed.producer(e) else {
                continue;
            };
            if !matches!(en.op, Op::Expand { .. }) {
                continue;
            }
            let (en_name, g) = (en.name.clone(), en.inputs[0]);
            let (Some(xs), Some(gs), Some(os)) = (ed.shape(x), ed.shape(g), ed.shape(out)) else {
                continue;
            };
            if broadcast_shapes(xs, gs).as_ref() != Ok(os) {
                continue;
            }
            let inputs = if x == p { [x, g] } else { [g, x] };
            ed.replace(id, Op::Mul, &inputs)?;
            return Ok(Some(Fired::new(
                "expand-mul",
                &name,
                format!("broadcasts without `{en_name}`"),
            )));
        }
    }
    // Division by six: `u / 6`, `u * (1/6)`, `(1/6) * u`.
    let u = match (is_mul, ed.scalar(p), ed.scalar(q)) {
        (false, _, Some(6.0)) => p,
        (true, _, Some(k)) if near(k, SIXTH) => p,
        (true, Some(k), _) if near(k, SIXTH) => q,
        _ => return Ok(None),
    };
    let same_shape =
        |ed: &Editor<'_>, x: ValueId| ed.shape(x).is_some() && ed.shape(x) == ed.shape(out);
    if let Some(x) = relu6_of_x_plus_3(ed, u)
        && same_shape(ed, x)
    {
        let op = Op::HardSigmoid {
            alpha: SIXTH,
            beta: 0.5,
        };
        ed.replace(id, op, &[x])?;
        return Ok(Some(Fired::new(
            "hardsigmoid-from-clip",
            &name,
            "Clip(x + 3, 0, 6) / 6",
        )));
    }
    let Some((_, un)) = ed.producer(u) else {
        return Ok(None);
    };
    if !matches!(un.op, Op::Mul) {
        return Ok(None);
    }
    let [a, b] = un.inputs[..] else {
        return Ok(None);
    };
    for (x, c) in [(a, b), (b, a)] {
        if relu6_of_x_plus_3(ed, c) == Some(x) && same_shape(ed, x) {
            ed.replace(id, Op::HardSwish, &[x])?;
            return Ok(Some(Fired::new(
                "hardswish-from-clip",
                &name,
                "x * Clip(x + 3, 0, 6) / 6",
            )));
        }
    }
    Ok(None)
}

/// `x` when `v = Clip(x + 3, 0, 6)` (the `+ 3` in either order).
fn relu6_of_x_plus_3(ed: &Editor<'_>, v: ValueId) -> Option<ValueId> {
    let (_, clip) = ed.producer(v)?;
    if !matches!(clip.op, Op::Clip { min, max } if min == 0.0 && max == 6.0) {
        return None;
    }
    let (_, add) = ed.producer(clip.inputs[0])?;
    if !matches!(add.op, Op::Add) {
        return None;
    }
    let [a, b] = add.inputs[..] else {
        return None;
    };
    match (ed.scalar(a), ed.scalar(b)) {
        (_, Some(3.0)) => Some(a),
        (Some(3.0), _) => Some(b),
        _ => None,
    }
}
