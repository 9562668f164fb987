//! An FC layer on a squeezed `[N,C,1,1]` map becomes the 1x1 convolution it equals.
//!
//! `Gemm(Flatten(v), B, C)` (or `MatMul(Reshape(v), B)`, optionally followed by `Add` of a
//! constant bias) with `v: [N,C,1,1]`, constant `B` and constant or absent `C`/bias computes
//! `Conv(v, W, b)` flattened, with `W[r,c,0,0] = alpha * op(B)[c,r]` and `b = beta * C + bias`.
//!
//! ```text
//! before:  node fc = Gemm(v.flat, B, C) {alpha=1, beta=1, transA=false, transB=true} -> h: f32[N,4]
//! after:   node fc = Conv(v, fc.weight, fc.bias) {...} -> h.4d: f32[N,4,1,1]
//!          node fc.flatten = Flatten(h.4d) {axis=1} -> h: f32[N,4]
//! ```
//! Left alone: a non-constant B or C, `transA`, an A that is not the reshape of an
//! `[N,C,1,1]` value, and a bias `Add` when the FC output has other readers.

use excite_ir::op::Conv;
use excite_ir::{Dim, IrError, NodeId, Op, Tensor, ValueId};

use super::Fired;
use super::edit::{Editor, fresh_name, fresh_value_name};

/// A constant bias for `cr` output features: `[cr]` or `[1,cr]`, or (`scalar_ok`, for
/// Gemm's own C) one element broadcast to all. A scalar `Add` is not absorbed: it is the
/// `+ 3` of a decomposed hard-sigmoid, which `act` must still see.
fn bias_of(t: &Tensor, cr: usize, scalar_ok: bool) -> Option<Vec<f64>> {
    let d = t.data();
    match t.shape() {
        [n] | [1, n] if *n == cr => Some(d.iter().map(|&x| f64::from(x)).collect()),
        _ if scalar_ok && d.len() == 1 && t.shape().len() <= 2 => Some(vec![f64::from(d[0]); cr]),
        _ => None,
    }
}

pub(super) fn fc_as_conv(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let (alpha, beta, trans_b) = match &node.op {
        Op::Gemm(gm) if !gm.trans_a => (gm.alpha, gm.beta, gm.trans_b),
        Op::MatMul => (1.0, 1.0, false),
        _ => return Ok(None),
    };
    let (a, b, c, y) = (
        node.inputs[0],
        node.inputs[1],
        node.inputs.get(2).copied(),
        node.outputs[0],
    );
    // A must be the [N,C] reshape of an [N,C,1,1] value v.
    let Some((_, f)) = ed.producer(a) else {
        return Ok(None);
    };
    if !matches!(f.op, Op::Flatten { .. } | Op::Reshape { .. }) {
        return Ok(None);
    }
    let v = f.inputs[0];
    let (Some(vs), Some(as2)) = (ed.shape(v), ed.shape(a)) else {
        return Ok(None);
    };
    let one = Dim::Fixed(1);
    if vs.rank() != 4 || vs.0[2..] != [one, one] || as2.0[..] != vs.0[..2] {
        return Ok(None);
    }
    let Some(cin) = vs.0[1].fixed() else {
        return Ok(None);
    };
    let Some(bw) = ed.weight(b) else {
        return Ok(None);
    };
    let (inner, cr) = match (bw.shape(), trans_b) {
        ([k, n], false) => (*k, *n),
        ([n, k], true) => (*k, *n),
        _ => return Ok(None),
    };
    if inner != cin {
        return Ok(None);
    }
    let mut bias: Option<Vec<f64>> = match c {
        None => None,
        Some(c) => match ed.weight(c).and_then(|t| bias_of(&t, cr, true)) {
            Some(cb) => Some(cb.iter().map(|x| f64::from(beta) * x).collect()),
            None => return Ok(None),
        },
    };
    // A following `Add` of a constant bias is absorbed when it is the FC's only reader.
    let mut root = y;
    let mut add = None;
    if let &[u] = ed.g.users(y)
        && !ed.is_output(y)
        && matches!(ed.g.node(u).op, Op::Add)
    {
        let un = ed.g.node(u);
        let other = if un.inputs[0] == y {
            un.inputs[1]
        } else {
            un.inputs[0]
        };
        let extra = ed.weight(other).and_then(|t| bias_of(&t, cr, false));
        if let Some(extra) = extra.filter(|_| other != y && ed.shape(un.outputs[0]) == ed.shape(y))
        {
            let sum = match bias.take() {
                Some(b0) => b0.iter().zip(&extra).map(|(p, q)| p + q).collect(),
                None => extra,
            };
            bias = Some(sum);
            root = un.outputs[0];
            add = Some(u);
        }
    }
    let mut w = vec![0f32; cr * cin];
    let bd = bw.data();
    for r in 0..cr {
        for k in 0..cin {
            let bij = if trans_b {
                bd[r * cin + k]
            } else {
                bd[k * cr + r]
            };
            w[r * cin + k] = (f64::from(alpha) * f64::from(bij)) as f32;
        }
    }
    let (name, y_name) = ed.name_and_output(id);
    let root_name = ed.g.value(root).name.clone();
    ed.remove(id);
    let mut absorbed = String::new();
    if let Some(u) = add
        && let Some(n) = ed.remove(u)
    {
        absorbed = format!(" (bias Add `{}` absorbed)", n.name);
    }
    let mut inputs: Vec<ValueId> = vec![v];
    inputs.push(ed.add_weight(
        &format!("{name}.weight"),
        Tensor::new(vec![cr, cin, 1, 1], w)?,
    )?);
    if let Some(bias) = bias {
        let bias = bias.into_iter().map(|x| x as f32).collect();
        inputs.push(ed.add_weight(&format!("{name}.bias"), Tensor::new(vec![cr], bias)?)?);
    }
    let h4 = fresh_value_name(ed.g, &format!("{y_name}.4d"));
    let h4 = ed.add(&name, Op::Conv(Conv::default()), &inputs, &h4)?;
    let flat = fresh_name(ed.g, &format!("{name}.flatten"));
    ed.add(&flat, Op::Flatten { axis: 1 }, &[h4], &root_name)?;
    ed.retire(a);
    Ok(Some(Fired::new(
        "fc-as-conv",
        &name,
        format!("1x1 Conv on the [N,{cin},1,1] map, then {flat}{absorbed}"),
    )))
}
