//! Reference semantics of the fused ops, written as the unfused ops they replace would compute
//! them (same roundings to f32 between steps), so a fused graph agrees with its unfused
//! original to within a few ulps.

use super::Cx;
use super::conv::conv;
use super::elementwise::act;
use crate::error::IrError;
use crate::op::{FusedConv, SeBlock};
use crate::tensor::Tensor;

/// `post_act(act(conv(x, w) + b) + r)`.
pub(super) fn fused_conv(
    cx: &Cx<'_>,
    f: &FusedConv,
    ins: &[&Tensor],
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    let bias = if f.bias { Some(cx.arg(ins, 2)?) } else { None };
    let mut y = conv(cx, &f.conv, cx.arg(ins, 0)?, cx.arg(ins, 1)?, bias, out)?;
    if let Some(a) = f.act {
        y.iter_mut().for_each(|v| *v = act(a, *v));
    }
    if f.residual {
        let r = cx.arg(ins, 2 + usize::from(f.bias))?;
        if r.shape() != out {
            return Err(cx.err(format!(
                "residual shape {:?} differs from output {out:?}",
                r.shape()
            )));
        }
        y.iter_mut().zip(r.data()).for_each(|(v, r)| *v += r);
    }
    if let Some(a) = f.post_act {
        y.iter_mut().for_each(|v| *v = act(a, *v));
    }
    Ok(y)
}

/// Squeeze, FC, act, FC, gate, scale, then the optional residual add and activation.
pub(super) fn se_block(cx: &Cx<'_>, se: &SeBlock, ins: &[&Tensor]) -> Result<Vec<f32>, IrError> {
    let x = cx.arg(ins, 0)?;
    let [n, c, h, w] = cx.dims4(x, "input")?;
    let slots = se.input_slots();
    let w1 = cx.arg(ins, 1)?;
    let w2 = cx.arg(ins, slots.w2)?;
    let cr = w1.shape().first().copied().unwrap_or(0);
    if w1.numel() != cr * c || w2.numel() != c * cr {
        return Err(cx.err(format!(
            "weights {:?} and {:?} do not fit {c} channels",
            w1.shape(),
            w2.shape()
        )));
    }
    let b1 = slots.b1.map(|i| cx.arg(ins, i)).transpose()?;
    let b2 = slots.b2.map(|i| cx.arg(ins, i)).transpose()?;
    let r = slots.r.map(|i| cx.arg(ins, i)).transpose()?;
    if b1.is_some_and(|b| b.numel() != cr) || b2.is_some_and(|b| b.numel() != c) {
        return Err(cx.err("bias sizes do not match the weights"));
    }
    if r.is_some_and(|r| r.shape() != x.shape()) {
        return Err(cx.err("residual shape differs from the input"));
    }
    let hw = h * w;
    let (xd, w1d, w2d) = (x.data(), w1.data(), w2.data());
    let mut y = vec![0f32; xd.len()];
    for ni in 0..n {
        let plane = |ci: usize| &xd[(ni * c + ci) * hw..(ni * c + ci + 1) * hw];
        let s: Vec<f32> = (0..c)
            .map(|ci| (plane(ci).iter().map(|&v| f64::from(v)).sum::<f64>() / hw as f64) as f32)
            .collect();
        let z: Vec<f32> = (0..cr)
            .map(|j| {
                let dot: f64 = (0..c)
                    .map(|ci| f64::from(w1d[j * c + ci]) * f64::from(s[ci]))
                    .sum();
                let b = b1.map_or(0.0, |b| f64::from(b.data()[j]));
                act(se.act, (dot + b) as f32)
            })
            .collect();
        for ci in 0..c {
            let dot: f64 = (0..cr)
                .map(|j| f64::from(w2d[ci * cr + j]) * f64::from(z[j]))
                .sum();
            let b = b2.map_or(0.0, |b| f64::from(b.data()[ci]));
            let g = act(se.gate, (dot + b) as f32);
            let base = (ni * c + ci) * hw;
            for (k, &v) in plane(ci).iter().enumerate() {
                let mut o = v * g;
                if let Some(r) = r {
                    o += r.data()[base + k];
                }
                if let Some(a) = se.post_act {
                    o = act(a, o);
                }
                y[base + k] = o;
            }
        }
    }
    Ok(y)
}
