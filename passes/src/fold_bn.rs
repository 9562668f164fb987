//! `fold-bn`: a `BatchNormalization` whose input is the only use of a `Conv` (or `Gemm`)
//! output with constant weights is folded into that node. With `s = scale / sqrt(var + eps)`
//! per output channel: `W' = W * s` (Conv: per output channel; Gemm: per column of `op(B)`)
//! and `b' = (b - mean) * s + bias` (Gemm: `b = beta * C`, and `beta` becomes 1). Computed in
//! `f64`, rounded to `f32` once.
//!
//! ```text
//! before:  node conv = Conv(x, w) {...} -> c: f32[N,8,4,4]
//!          node bn = BatchNormalization(c, g, b, m, v) {epsilon=1e-5} -> y: f32[N,8,4,4]
//! after:   weight conv.weight: f32[8,3,3,3]
//!          weight conv.bias: f32[8]
//!          node conv = Conv(x, conv.weight, conv.bias) {...} -> y: f32[N,8,4,4]
//! ```
//! The rebuilt node keeps the Conv's name and defines the BN's output value. Left alone: a
//! standalone BN, a BN after a node whose output is also read elsewhere or is a graph output,
//! and non-constant weights or BN parameters. A convolution weight read by nothing else is
//! rescaled in place (and leaves the graph); other old weights are dropped by `dce`.

use std::sync::Arc;

use excite_ir::op::Gemm;
use excite_ir::{Graph, IrError, NodeId, Op, Tensor, ValueDef, ValueId};

use crate::canonicalize::edit::Editor;
use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-bn"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let ir = |source| PassError::Ir {
            pass: "fold-bn",
            source,
        };
        let order = g.topo_order().map_err(ir)?;
        let mut ed = Editor::new(g);
        for id in order {
            if ed.was_removed(id) {
                continue;
            }
            if let Some((bn, into)) = fold(&mut ed, id).map_err(ir)? {
                cx.record("fold-bn", "bn-into-conv", bn, format!("into {into}"));
            }
        }
        Ok(())
    }
}

/// Per-channel `(s, shift)` with `y = x * s + shift`, from the BN's constant parameters.
fn bn_affine(ed: &Editor<'_>, ins: &[ValueId], eps: f32, ch: usize) -> Option<Vec<(f64, f64)>> {
    let p: Option<Vec<Arc<Tensor>>> = ins.get(1..5)?.iter().map(|&v| ed.weight(v)).collect();
    let p = p?;
    if p.iter().any(|t| t.numel() != ch) {
        return None;
    }
    let (scale, bias, mean, var) = (p[0].data(), p[1].data(), p[2].data(), p[3].data());
    Some(
        (0..ch)
            .map(|c| {
                let s = f64::from(scale[c]) / (f64::from(var[c]) + f64::from(eps)).sqrt();
                (s, f64::from(bias[c]) - f64::from(mean[c]) * s)
            })
            .collect(),
    )
}

/// The data of weight `v`. When the node being folded is its only reader, the weight is
/// dropped from the graph and its buffer reused if nothing else holds it, so folding a large
/// network does not hold every convolution's weights twice.
fn take_or_copy(ed: &mut Editor<'_>, v: ValueId) -> Vec<f32> {
    if ed.g.users(v).len() == 1 && !ed.is_output(v) {
        let val = ed.g.value_mut(v);
        val.ty = None;
        if let ValueDef::Weight(t) = std::mem::replace(&mut val.def, ValueDef::Undefined) {
            return Arc::try_unwrap(t).map_or_else(|t| t.data().to_vec(), Tensor::into_data);
        }
    }
    ed.weight(v).map_or_else(Vec::new, |t| t.data().to_vec())
}

fn round(v: impl IntoIterator<Item = f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// Folds the BN node `id` into its producer; returns the BN's and producer's names.
fn fold(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<(String, String)>, IrError> {
    let bn = ed.g.node(id);
    let Op::BatchNorm { epsilon } = bn.op else {
        return Ok(None);
    };
    let (Some(&x), Some(&y)) = (bn.inputs.first(), bn.outputs.first()) else {
        return Ok(None);
    };
    let (bn_ins, bn_name) = (bn.inputs.clone(), bn.name.clone());
    if ed.g.users(x).len() != 1 || ed.is_output(x) {
        return Ok(None);
    }
    let Some((pid, p)) = ed.producer(x) else {
        return Ok(None);
    };
    let (p_name, p_op, p_ins) = (p.name.clone(), p.op.clone(), p.inputs.clone());
    // Only a producer with a constant weight input (Conv, Gemm, ...) folds; a one-input op
    // such as Relu before the BN (pre-activation networks) has none.
    let Some(w) = p_ins.get(1).and_then(|&v| ed.weight(v)) else {
        return Ok(None);
    };
    let w_shape = w.shape().to_vec();
    let bias = match p_ins.get(2) {
        Some(&b) => match ed.weight(b) {
            Some(t) => Some(t),
            None => return Ok(None),
        },
        None => None,
    };
    let (new_op, w2, b2) = match &p_op {
        Op::Conv(_) => {
            let Some(&m) = w.shape().first() else {
                return Ok(None);
            };
            let Some(aff) = bn_affine(ed, &bn_ins, epsilon, m) else {
                return Ok(None);
            };
            if m == 0 || bias.as_ref().is_some_and(|b| b.numel() != m) {
                return Ok(None);
            }
            let per = (w.numel() / m).max(1);
            drop(w);
            let mut w2 = take_or_copy(ed, p_ins[1]);
            for (row, &(s, _)) in w2.chunks_exact_mut(per).zip(&aff) {
                row.iter_mut().for_each(|v| *v = (f64::from(*v) * s) as f32);
            }
            let b2 = (0..m).map(|o| {
                let b = bias.as_ref().map_or(0.0, |b| f64::from(b.data()[o]));
                b * aff[o].0 + aff[o].1
            });
            (p_op.clone(), w2, round(b2))
        }
        Op::Gemm(gm) => {
            let &[r, c] = w.shape() else {
                return Ok(None);
            };
            let m = if gm.trans_b { r } else { c };
            let Some(aff) = bn_affine(ed, &bn_ins, epsilon, m) else {
                return Ok(None);
            };
            // C broadcasts over rows: one element, [M] or [1,M].
            let cvec: Vec<f64> = match &bias {
                None => vec![0.0; m],
                Some(t) if t.numel() == 1 => vec![f64::from(t.data()[0]); m],
                Some(t) if matches!(t.shape(), [n] | [1, n] if *n == m) => {
                    t.data().iter().map(|&v| f64::from(v)).collect()
                }
                Some(_) => return Ok(None),
            };
            let w2 = w.data().iter().enumerate().map(|(i, &v)| {
                let col = if gm.trans_b { i / c } else { i % c };
                f64::from(v) * aff[col].0
            });
            let b2 = (0..m).map(|o| f64::from(gm.beta) * cvec[o] * aff[o].0 + aff[o].1);
            let op = Op::Gemm(Gemm {
                beta: 1.0,
                ..gm.clone()
            });
            (op, round(w2), round(b2))
        }
        _ => return Ok(None),
    };
    let m = b2.len();
    let out = ed.g.value(y).name.clone();
    ed.remove(id);
    ed.remove(pid);
    let wv = ed.add_weight(&format!("{p_name}.weight"), Tensor::new(w_shape, w2)?)?;
    let bv = ed.add_weight(&format!("{p_name}.bias"), Tensor::new(vec![m], b2)?)?;
    ed.add(&p_name, new_op, &[p_ins[0], wv, bv], &out)?;
    Ok(Some((bn_name, p_name)))
}
