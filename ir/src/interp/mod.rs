//! The reference interpreter: the oracle every pass and backend is checked against.
//!
//! [`run`] evaluates a graph node by node in topological order on concrete tensors; [`eval_op`]
//! evaluates one op (constant folding, tests). Both follow ONNX semantics exactly and favour
//! plain, obviously-correct loops over speed: convolutions, matrix products and reductions
//! accumulate in `f64` and round once. Output shapes always come from the actual input tensors
//! through [`infer::infer_node`], so a graph typed at one batch size runs at any other, and every
//! shape is validated before a kernel indexes anything. Failures are [`IrError`]s naming the node.
//!
//! Intermediate tensors are dropped after their last use so that large models fit in memory;
//! weights and inputs are borrowed, never copied.

mod broadcast;
mod conv;
mod elementwise;
mod fused;
mod layout;
mod linalg;
mod pool;
mod reduce;

pub use elementwise::act;

use std::collections::HashMap;

use crate::error::IrError;
use crate::graph::{Graph, NodeId, ValueDef, ValueId};
use crate::infer;
use crate::op::Op;
use crate::shape::{Shape, TensorType};
use crate::tensor::Tensor;
use crate::verify;

/// Runs a verified graph (every value typed) on named inputs; returns graph outputs in order.
pub fn run(g: &Graph, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, IrError> {
    verify::bind_inputs(g, inputs)?;
    let order = g.topo_order()?;
    let n_values = g.value_ids().count();
    // Remaining reads of each value, once per use; a computed value is dropped at zero.
    let mut uses = vec![0usize; n_values];
    for &id in &order {
        for &v in &g.node(id).inputs {
            uses[v.index()] += 1;
        }
    }
    let mut is_output = vec![false; n_values];
    for &o in g.outputs() {
        is_output[o.index()] = true;
    }
    let mut computed: Vec<Option<Tensor>> = vec![None; n_values];
    for id in order {
        let node = g.node(id);
        let out = {
            let mut args = Vec::with_capacity(node.inputs.len());
            for &v in &node.inputs {
                args.push(lookup(g, inputs, &computed, v, Some(id))?);
            }
            let shapes: Vec<Shape> = args.iter().map(|t| Shape::fixed(t.shape())).collect();
            let out_shape = single_shape(&node.name, &node.op, infer::infer_node(g, id, &shapes)?)?;
            eval_shaped(&node.name, &node.op, &args, &out_shape)?
        };
        let cx = Cx::new(&node.name, &node.op);
        let &[out_v] = node.outputs.as_slice() else {
            return Err(cx.err(format!(
                "defines {} outputs, expected 1",
                node.outputs.len()
            )));
        };
        // A value nobody reads (a dead node) is dropped at once unless it is a graph output.
        if uses[out_v.index()] > 0 || is_output[out_v.index()] {
            computed[out_v.index()] = Some(out);
        }
        for &v in &node.inputs {
            let left = &mut uses[v.index()];
            *left = left.saturating_sub(1);
            if *left == 0 && !is_output[v.index()] {
                computed[v.index()] = None;
            }
        }
    }
    let mut results = Vec::with_capacity(g.outputs().len());
    for &o in g.outputs() {
        let t = match computed[o.index()].take() {
            Some(t) => t,
            None => lookup(g, inputs, &computed, o, None)?.clone(),
        };
        results.push((g.value(o).name.clone(), t));
    }
    Ok(results)
}

/// Evaluates one op on concrete tensors (used for constant folding and by tests).
pub fn eval_op(node_name: &str, op: &Op, inputs: &[&Tensor]) -> Result<Tensor, IrError> {
    // Shape rules live in `infer`, which reads a node of a graph: build a one-node graph.
    let mut g = Graph::new("eval_op");
    let mut ids = Vec::with_capacity(inputs.len());
    let mut shapes = Vec::with_capacity(inputs.len());
    for (i, t) in inputs.iter().enumerate() {
        let shape = Shape::fixed(t.shape());
        ids.push(g.add_input(&format!("in{i}"), TensorType::f32(shape.clone()))?);
        shapes.push(shape);
    }
    let id = g.add_node(node_name, op.clone(), &ids, &["out"])?;
    let out_shape = single_shape(node_name, op, infer::infer_node(&g, id, &shapes)?)?;
    eval_shaped(node_name, op, inputs, &out_shape)
}

/// The tensor currently bound to `v`; `reader` names the node reading it, for errors.
fn lookup<'a>(
    g: &'a Graph,
    inputs: &'a HashMap<String, Tensor>,
    computed: &'a [Option<Tensor>],
    v: ValueId,
    reader: Option<NodeId>,
) -> Result<&'a Tensor, IrError> {
    let val = g.value(v);
    let reader_name =
        reader.map_or_else(|| "(graph output)".to_string(), |n| g.node(n).name.clone());
    match &val.def {
        ValueDef::Input => inputs.get(&val.name).ok_or_else(|| IrError::Input {
            input: val.name.clone(),
            msg: "missing".into(),
        }),
        ValueDef::Weight(t) => Ok(t),
        ValueDef::Node { node, .. } => computed[v.index()].as_ref().ok_or_else(|| {
            let producer = g.node(*node);
            IrError::node(
                &producer.name,
                producer.op.name(),
                format!(
                    "output `{}` was read by `{reader_name}` before it was computed",
                    val.name
                ),
            )
        }),
        ValueDef::Undefined => Err(match reader {
            Some(_) => IrError::UndefinedValue {
                node: reader_name,
                value: val.name.clone(),
            },
            None => IrError::UndefinedOutput {
                value: val.name.clone(),
            },
        }),
    }
}

/// The one output shape of a node, as numbers.
fn single_shape(node: &str, op: &Op, shapes: Vec<Shape>) -> Result<Vec<usize>, IrError> {
    let cx = Cx::new(node, op);
    match shapes.as_slice() {
        [s] => s
            .as_fixed()
            .ok_or_else(|| cx.err(format!("output shape {s} is not concrete"))),
        _ => Err(cx.err(format!("has {} outputs, expected 1", shapes.len()))),
    }
}

/// Evaluates `op` on `ins` whose output shape `out` has already been inferred (and therefore
/// every input shape validated).
fn eval_shaped(node: &str, op: &Op, ins: &[&Tensor], out: &[usize]) -> Result<Tensor, IrError> {
    let cx = Cx::new(node, op);
    let data = match op {
        Op::Conv(c) => conv::conv(
            &cx,
            c,
            cx.arg(ins, 0)?,
            cx.arg(ins, 1)?,
            ins.get(2).copied(),
            out,
        )?,
        Op::BatchNorm { epsilon } => elementwise::batch_norm(&cx, *epsilon, ins)?,
        op if op.is_unary_elementwise() => elementwise::unary(&cx, op, cx.arg(ins, 0)?)?,
        op if op.is_binary_elementwise() => {
            elementwise::binary(&cx, op, cx.arg(ins, 0)?, cx.arg(ins, 1)?, out)?
        }
        Op::GlobalAveragePool => reduce::global_average_pool(&cx, cx.arg(ins, 0)?)?,
        Op::ReduceMean { axes, .. } => reduce::reduce_mean(&cx, cx.arg(ins, 0)?, axes)?,
        Op::Softmax { axis } => reduce::softmax(&cx, cx.arg(ins, 0)?, *axis)?,
        Op::AveragePool(p) => pool::pool(&cx, p, pool::Kind::Average, cx.arg(ins, 0)?, out)?,
        Op::MaxPool(p) => pool::pool(&cx, p, pool::Kind::Max, cx.arg(ins, 0)?, out)?,
        Op::Gemm(gm) => linalg::gemm(
            &cx,
            gm,
            cx.arg(ins, 0)?,
            cx.arg(ins, 1)?,
            ins.get(2).copied(),
            out,
        )?,
        Op::MatMul => linalg::matmul(&cx, cx.arg(ins, 0)?, cx.arg(ins, 1)?, out)?,
        Op::Flatten { .. } | Op::Reshape { .. } => cx.arg(ins, 0)?.data().to_vec(),
        Op::Expand { .. } => broadcast::expand(&cx, cx.arg(ins, 0)?, out)?,
        Op::Concat { axis } => layout::concat(&cx, ins, *axis, out)?,
        Op::FusedConv(f) => fused::fused_conv(&cx, f, ins, out)?,
        Op::SeBlock(se) => fused::se_block(&cx, se, ins)?,
        other => {
            return Err(cx.err(format!(
                "the interpreter has no kernel for {}",
                other.name()
            )));
        }
    };
    Tensor::new(out.to_vec(), data)
        .map_err(|e| cx.err(format!("kernel produced a bad tensor: {e}")))
}

/// The node being evaluated, for error messages.
#[derive(Debug)]
struct Cx<'a> {
    node: &'a str,
    op: &'static str,
}

impl<'a> Cx<'a> {
    fn new(node: &'a str, op: &Op) -> Cx<'a> {
        Cx {
            node,
            op: op.name(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> IrError {
        IrError::node(self.node, self.op, msg)
    }

    /// Input `i`, or an error if the node has fewer inputs.
    fn arg<'t>(&self, ins: &[&'t Tensor], i: usize) -> Result<&'t Tensor, IrError> {
        ins.get(i)
            .copied()
            .ok_or_else(|| self.err(format!("missing input {i}")))
    }

    /// The dims of `t` as `[N, C, H, W]`.
    fn dims4(&self, t: &Tensor, what: &str) -> Result<[usize; 4], IrError> {
        <[usize; 4]>::try_from(t.shape())
            .map_err(|_| self.err(format!("{what} must be 4-D, got {:?}", t.shape())))
    }
}
