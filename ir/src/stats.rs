//! Model statistics: trainable parameters, multiply-accumulate counts and an op histogram.
//!
//! The numbers follow the conventions published model tables use, so that a graph can be
//! compared with timm's or a paper's figures:
//! - [`trainable_params`] counts what PyTorch's `parameters()` counts. The graph stores
//!   BatchNormalization's running mean and variance as weights too, but those are buffers in
//!   PyTorch, so they are left out; so are rank-0 constants (hyper-parameters such as
//!   Inception-ResNet's residual scale, or the `3` and `6` of a decomposed HardSwish).
//! - [`macs`] counts the multiply-accumulates of convolutions and matrix products only, as
//!   fvcore-style GMAC tables do; elementwise ops, pooling and normalisation are free.

use std::collections::{BTreeMap, HashSet};

use crate::error::IrError;
use crate::graph::{Graph, ValueId};
use crate::op::Op;

/// Number of trainable parameters: the elements of every weight except BatchNormalization's
/// running statistics (inputs 3 and 4) and rank-0 constants. A weight read by several nodes
/// counts once; a weight read both as a statistic and elsewhere counts.
pub fn trainable_params(g: &Graph) -> u64 {
    let mut trainable: HashSet<ValueId> = HashSet::new();
    let mut stats_only: HashSet<ValueId> = HashSet::new();
    for id in g.node_ids() {
        let node = g.node(id);
        for (slot, &v) in node.inputs.iter().enumerate() {
            if g.value(v).weight().is_none() {
                continue;
            }
            if matches!(node.op, Op::BatchNorm { .. }) && slot >= 3 {
                stats_only.insert(v);
            } else {
                trainable.insert(v);
            }
        }
    }
    g.weights()
        .filter(|(v, t)| {
            !t.shape().is_empty() && (trainable.contains(v) || !stats_only.contains(v))
        })
        .map(|(_, t)| t.numel() as u64)
        .sum()
}

/// Multiply-accumulates of one inference at batch size `batch` (the symbolic batch resolved to
/// it): `Conv` and `FusedConv` cost `out_elems * (C/group) * kH * kW`, `SeBlock` its two FCs, `Gemm` and `MatMul` cost `M * N * K`
/// (times the broadcast batch of a batched `MatMul`). Every other op counts zero.
///
/// The graph must have been verified: node output types come from shape inference, and a node
/// whose types are missing is an error naming it.
pub fn macs(g: &Graph, batch: usize) -> Result<u64, IrError> {
    let mut total: u64 = 0;
    for id in g.node_ids() {
        let node = g.node(id);
        let shape_of = |v: ValueId| -> Result<Vec<usize>, IrError> {
            g.ty_of(v).map(|t| t.shape.resolve(batch)).ok_or_else(|| {
                IrError::node(
                    &node.name,
                    node.op.name(),
                    format!(
                        "value `{}` has no type; verify the graph before counting MACs",
                        g.value(v).name
                    ),
                )
            })
        };
        let n = match &node.op {
            Op::Conv(_) | Op::FusedConv(_) => {
                let y = shape_of(node.outputs[0])?;
                let w = shape_of(node.inputs[1])?;
                let per_out: usize = w.iter().skip(1).product();
                y.iter().product::<usize>() as u64 * per_out as u64
            }
            Op::Gemm(gm) => {
                let a = shape_of(node.inputs[0])?;
                let y = shape_of(node.outputs[0])?;
                let k = match (gm.trans_a, a.as_slice()) {
                    (false, [_, k]) | (true, [k, _]) => *k,
                    _ => return Err(rank_err(g, id, "A must be 2-D")),
                };
                y.iter().product::<usize>() as u64 * k as u64
            }
            Op::MatMul => {
                let a = shape_of(node.inputs[0])?;
                let y = shape_of(node.outputs[0])?;
                // K is A's last dimension in every case (a 1-D A is promoted to [1, K]).
                let k = *a
                    .last()
                    .ok_or_else(|| rank_err(g, id, "A must not be a scalar"))?;
                y.iter().product::<usize>() as u64 * k as u64
            }
            // The two FCs of an SE block: N * (C * Cr + Cr * C).
            Op::SeBlock(_) => {
                let x = shape_of(node.inputs[0])?;
                let w1 = shape_of(node.inputs[1])?;
                let (n, c) = (
                    x.first().copied().unwrap_or(0),
                    x.get(1).copied().unwrap_or(0),
                );
                let cr = w1.first().copied().unwrap_or(0);
                2 * (n * c * cr) as u64
            }
            _ => 0,
        };
        total = total.saturating_add(n);
    }
    Ok(total)
}

fn rank_err(g: &Graph, id: crate::graph::NodeId, msg: &str) -> IrError {
    let node = g.node(id);
    IrError::node(&node.name, node.op.name(), msg)
}

/// How many nodes of each op the graph has, by op name.
pub fn op_histogram(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut h = BTreeMap::new();
    for id in g.node_ids() {
        *h.entry(g.node(id).op.name()).or_insert(0) += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use expect_test::{Expect, expect};

    use super::*;
    use crate::op::{Conv, Gemm};
    use crate::shape::{Dim, Shape, TensorType};
    use crate::tensor::Tensor;
    use crate::verify::verify;

    fn w(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
        let n = shape.iter().product::<usize>();
        let data = (0..n).map(|i| i as f32 * 0.01 + 0.5).collect();
        let t = Tensor::new(shape.to_vec(), data).expect("test tensor");
        g.add_weight(name, Arc::new(t)).expect("fresh weight")
    }

    /// conv(3->8, 3x3, groups 1, bias) -> BN -> GAP -> flatten -> Gemm(8->5) -> Mul by scalar,
    /// plus a grouped 1x1 conv and a batched MatMul on the side.
    fn sample() -> Graph {
        let mut g = Graph::new("sample");
        let x = g
            .add_input(
                "x",
                TensorType::f32(Shape(vec![
                    Dim::Batch,
                    Dim::Fixed(4),
                    Dim::Fixed(6),
                    Dim::Fixed(6),
                ])),
            )
            .expect("input");
        let cw = w(&mut g, "c.w", &[8, 4, 3, 3]);
        let cb = w(&mut g, "c.b", &[8]);
        let conv = Conv {
            strides: [2, 2],
            pads: [1, 1, 1, 1],
            ..Conv::default()
        };
        g.add_node("c", Op::Conv(conv), &[x, cw, cb], &["c"])
            .expect("conv");
        let c = g.find_value("c").expect("c");
        let bn: Vec<ValueId> = ["s", "b", "m", "v"]
            .iter()
            .map(|n| w(&mut g, &format!("bn.{n}"), &[8]))
            .collect();
        g.add_node(
            "bn",
            Op::BatchNorm { epsilon: 1e-5 },
            &[c, bn[0], bn[1], bn[2], bn[3]],
            &["bn"],
        )
        .expect("bn");
        let bnv = g.find_value("bn").expect("bn");
        let gw = w(&mut g, "g.w", &[8, 2, 1, 1]);
        let grouped = Conv {
            group: 4,
            ..Conv::default()
        };
        g.add_node("g", Op::Conv(grouped), &[bnv, gw], &["g"])
            .expect("grouped");
        let gv = g.find_value("g").expect("g");
        g.add_node("pool", Op::GlobalAveragePool, &[gv], &["pool"])
            .expect("pool");
        let p = g.find_value("pool").expect("pool");
        g.add_node("flat", Op::Flatten { axis: 1 }, &[p], &["flat"])
            .expect("flat");
        let f = g.find_value("flat").expect("flat");
        let fw = w(&mut g, "fc.w", &[5, 8]);
        let gemm = Gemm {
            trans_b: true,
            ..Gemm::default()
        };
        g.add_node("fc", Op::Gemm(gemm), &[f, fw], &["fc"])
            .expect("fc");
        let fc = g.find_value("fc").expect("fc");
        let s = g
            .add_weight("scale", Arc::new(Tensor::scalar(0.2)))
            .expect("scale");
        g.add_node("scaled", Op::Mul, &[fc, s], &["y"])
            .expect("mul");
        let y = g.find_value("y").expect("y");
        g.add_output(y).expect("output");
        let mm = w(&mut g, "mm.w", &[5, 7]);
        g.add_node("mm", Op::MatMul, &[y, mm], &["z"]).expect("mm");
        let z = g.find_value("z").expect("z");
        g.add_output(z).expect("output z");
        verify(&mut g).expect("sample verifies");
        g
    }

    fn check(actual: impl std::fmt::Debug, e: Expect) {
        e.assert_eq(&format!("{actual:?}"));
    }

    #[test]
    fn trainable_params_skip_bn_stats_and_scalars() {
        let g = sample();
        // conv 8*4*9 + 8, BN scale+bias 16, grouped 16, fc 40, matmul 35; the BN statistics
        // (16) and the scalar (1) are not trainable.
        assert_eq!(trainable_params(&g), 288 + 8 + 16 + 16 + 40 + 35);
        assert_eq!(g.param_count() as u64, trainable_params(&g) + 16 + 1);
    }

    #[test]
    fn macs_count_convs_and_products() {
        let g = sample();
        // conv: out [b,8,3,3] * 4*3*3; grouped: [b,8,3,3] * 2; fc: b*5*8; matmul: b*7*5.
        let per_sample = 72 * 36 + 72 * 2 + 40 + 35;
        assert_eq!(macs(&g, 1).expect("macs"), per_sample);
        assert_eq!(macs(&g, 3).expect("macs"), 3 * per_sample);
    }

    #[test]
    fn macs_need_inferred_types() {
        let mut g = Graph::new("unverified");
        let x = g
            .add_input("x", TensorType::f32(Shape::fixed(&[1, 2, 4, 4])))
            .expect("input");
        let cw = w(&mut g, "w", &[2, 2, 1, 1]);
        g.add_node("c1", Op::Conv(Conv::default()), &[x, cw], &["c1"])
            .expect("conv");
        check(
            macs(&g, 1),
            expect![[
                r#"Err(Node { node: "c1", op: "Conv", msg: "value `c1` has no type; verify the graph before counting MACs" })"#
            ]],
        );
    }

    #[test]
    fn histogram_counts_ops() {
        check(
            op_histogram(&sample()),
            expect![[
                r#"{"BatchNormalization": 1, "Conv": 2, "Flatten": 1, "Gemm": 1, "GlobalAveragePool": 1, "MatMul": 1, "Mul": 1}"#
            ]],
        );
    }
}
