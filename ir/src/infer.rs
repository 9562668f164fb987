//! Shape inference.
//!
//! [`infer_shapes`] walks the graph in topological order and sets the type of every node output
//! from its inputs' types and its attributes, collecting every error (each naming its node)
//! instead of stopping at the first. Shapes may carry the symbolic batch dimension [`Dim::Batch`];
//! ops that would have to multiply it with another dimension report an error rather than guess.

use crate::error::{IrError, IrErrors};
use crate::graph::{Graph, NodeId};
use crate::op::{Conv, Op, Pool, SeBlock};
use crate::shape::{Dim, Shape, TensorType};

/// Infers the type of every node output. Inputs and weights must have types (they get them
/// when created). Nodes whose inputs failed to infer are skipped without a second error.
pub fn infer_shapes(g: &mut Graph) -> Result<(), IrErrors> {
    let order = g.topo_order().map_err(IrErrors::from)?;
    let mut errors = Vec::new();
    for id in order {
        let node = g.node(id);
        let mut in_shapes = Vec::with_capacity(node.inputs.len());
        let mut missing = false;
        for &v in &node.inputs {
            match g.ty_of(v) {
                Some(t) => in_shapes.push(t.shape.clone()),
                None => missing = true,
            }
        }
        if missing {
            continue;
        }
        match infer_node(g, id, &in_shapes) {
            Ok(shapes) => {
                let outs = g.node(id).outputs.clone();
                for (v, s) in outs.into_iter().zip(shapes) {
                    g.value_mut(v).ty = Some(TensorType::f32(s));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IrErrors(errors))
    }
}

/// Output shapes of one node given its input shapes.
pub fn infer_node(g: &Graph, id: NodeId, ins: &[Shape]) -> Result<Vec<Shape>, IrError> {
    let node = g.node(id);
    let cx = Cx {
        node: &node.name,
        op: node.op.name(),
    };
    let (lo, hi) = node.op.arity();
    if ins.len() < lo || ins.len() > hi {
        return Err(cx.err(format!(
            "takes {} inputs, got {}",
            if lo == hi {
                lo.to_string()
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            },
            ins.len()
        )));
    }
    if node.outputs.len() != 1 {
        return Err(cx.err(format!(
            "must define exactly 1 output, defines {}",
            node.outputs.len()
        )));
    }
    let out = match &node.op {
        Op::Conv(c) => conv(&cx, c, ins)?,
        Op::FusedConv(f) => {
            let n = 2 + usize::from(f.bias);
            let y = conv(&cx, &f.conv, &ins[..n])?;
            if f.residual && ins[n] != y {
                return Err(cx.err(format!(
                    "residual has shape {}, the convolution gives {y}",
                    ins[n]
                )));
            }
            y
        }
        Op::SeBlock(se) => se_block(&cx, se, ins)?,
        Op::BatchNorm { epsilon } => {
            let x = &ins[0];
            if !(*epsilon >= 0.0 && epsilon.is_finite()) {
                return Err(cx.err(format!("epsilon {epsilon} must be finite and not negative")));
            }
            if x.rank() < 2 {
                return Err(cx.err(format!("input rank {} < 2", x.rank())));
            }
            let c = cx.fixed(x.0[1], "channel dimension")?;
            for (i, p) in ins[1..].iter().enumerate() {
                if *p != Shape::fixed(&[c]) {
                    let which = ["scale", "bias", "mean", "var"][i];
                    return Err(cx.err(format!("{which} has shape {p}, expected [{c}]")));
                }
            }
            x.clone()
        }
        op if op.is_unary_elementwise() => ins[0].clone(),
        op if op.is_binary_elementwise() => broadcast(&cx, &ins[0], &ins[1])?,
        Op::GlobalAveragePool => {
            let x = &ins[0];
            if x.rank() < 3 {
                return Err(cx.err(format!("input rank {} < 3", x.rank())));
            }
            let mut d = x.0.clone();
            for s in d.iter_mut().skip(2) {
                *s = Dim::Fixed(1);
            }
            Shape(d)
        }
        Op::ReduceMean { axes, keepdims } => {
            let x = &ins[0];
            if let Some(a) = axes.iter().find(|&&a| a >= x.rank()) {
                return Err(cx.err(format!("axis {a} out of range for rank {}", x.rank())));
            }
            let mut d = Vec::new();
            for (i, &s) in x.0.iter().enumerate() {
                if axes.contains(&i) {
                    if *keepdims {
                        d.push(Dim::Fixed(1));
                    }
                } else {
                    d.push(s);
                }
            }
            Shape(d)
        }
        Op::AveragePool(p) | Op::MaxPool(p) => pool(&cx, p, &ins[0])?,
        Op::Gemm(gm) => {
            let (a, b) = (&ins[0], &ins[1]);
            if a.rank() != 2 || b.rank() != 2 {
                return Err(cx.err(format!("A and B must be 2-D, got {a} and {b}")));
            }
            let (m, ka) = if gm.trans_a {
                (a.0[1], a.0[0])
            } else {
                (a.0[0], a.0[1])
            };
            let (kb, n) = if gm.trans_b {
                (b.0[1], b.0[0])
            } else {
                (b.0[0], b.0[1])
            };
            if ka != kb {
                return Err(cx.err(format!("inner dimensions differ: A {a}, B {b}")));
            }
            let y = Shape(vec![m, n]);
            if let Some(c) = ins.get(2) {
                let bc = broadcast(&cx, c, &y)?;
                if bc != y {
                    return Err(cx.err(format!("C {c} does not broadcast to {y}")));
                }
            }
            y
        }
        Op::MatMul => matmul(&cx, &ins[0], &ins[1])?,
        Op::Flatten { axis } => {
            let x = &ins[0];
            if *axis > x.rank() {
                return Err(cx.err(format!("axis {axis} out of range for rank {}", x.rank())));
            }
            Shape(vec![cx.product(&x.0[..*axis])?, cx.product(&x.0[*axis..])?])
        }
        Op::Reshape { shape, allowzero } => reshape(&cx, &ins[0], shape, *allowzero)?,
        Op::Expand { shape } => {
            let mut t = Vec::with_capacity(shape.len());
            for &s in shape {
                if s < 0 {
                    return Err(cx.err(format!("negative dimension {s} in target shape")));
                }
                t.push(Dim::Fixed(s as usize));
            }
            broadcast(&cx, &ins[0], &Shape(t))?
        }
        Op::Concat { axis } => {
            let first = &ins[0];
            if *axis >= first.rank() {
                return Err(cx.err(format!(
                    "axis {axis} out of range for rank {}",
                    first.rank()
                )));
            }
            let mut total = 0usize;
            for s in ins {
                if s.rank() != first.rank() {
                    return Err(cx.err(format!("inputs {first} and {s} differ in rank")));
                }
                for (i, (a, b)) in first.0.iter().zip(&s.0).enumerate() {
                    if i != *axis && a != b {
                        return Err(
                            cx.err(format!("inputs {first} and {s} differ outside axis {axis}"))
                        );
                    }
                }
                total = total
                    .checked_add(cx.fixed(s.0[*axis], "concatenation axis")?)
                    .ok_or_else(|| cx.err("size overflows"))?;
            }
            let mut d = first.0.clone();
            d[*axis] = Dim::Fixed(total);
            Shape(d)
        }
        Op::Softmax { axis } => {
            if *axis >= ins[0].rank() {
                return Err(cx.err(format!(
                    "axis {axis} out of range for rank {}",
                    ins[0].rank()
                )));
            }
            ins[0].clone()
        }
        other => return Err(cx.err(format!("no shape rule for {}", other.name()))),
    };
    check_size(&cx, &out)?;
    Ok(vec![out])
}

/// Refuses shapes whose element count overflows (with the batch taken as 1).
fn check_size(cx: &Cx<'_>, s: &Shape) -> Result<(), IrError> {
    s.numel_with(1)
        .and_then(|n| n.checked_mul(4))
        .map(|_| ())
        .ok_or_else(|| cx.err(format!("output shape {s} overflows")))
}

/// Names the node in errors.
struct Cx<'a> {
    node: &'a str,
    op: &'static str,
}

impl Cx<'_> {
    fn err(&self, msg: impl Into<String>) -> IrError {
        IrError::node(self.node, self.op, msg)
    }

    fn fixed(&self, d: Dim, what: &str) -> Result<usize, IrError> {
        d.fixed()
            .ok_or_else(|| self.err(format!("{what} may not be the symbolic batch size")))
    }

    /// Product of dims; the batch symbol survives only when every other factor is 1.
    fn product(&self, dims: &[Dim]) -> Result<Dim, IrError> {
        let mut p = 1usize;
        let mut batch = false;
        for d in dims {
            match d {
                Dim::Fixed(n) => {
                    p = p
                        .checked_mul(*n)
                        .ok_or_else(|| self.err("size overflows"))?
                }
                Dim::Batch => {
                    if batch {
                        return Err(self.err("batch dimension appears twice"));
                    }
                    batch = true;
                }
            }
        }
        match (batch, p) {
            (false, p) => Ok(Dim::Fixed(p)),
            (true, 1) => Ok(Dim::Batch),
            (true, _) => Err(self.err(format!(
                "would merge the symbolic batch with other dimensions {}; give a batch size",
                Shape(dims.to_vec())
            ))),
        }
    }
}

/// An SE block keeps its input's shape; the FC weights must be `[Cr,C,1,1]` and `[C,Cr,1,1]`.
fn se_block(cx: &Cx<'_>, se: &SeBlock, ins: &[Shape]) -> Result<Shape, IrError> {
    let x = &ins[0];
    if x.rank() != 4 {
        return Err(cx.err(format!("input must be 4-D [N,C,H,W], got {x}")));
    }
    let c = cx.fixed(x.0[1], "channel dimension")?;
    let slots = se.input_slots();
    let w1 = ins[1]
        .as_fixed()
        .filter(|d| d.len() == 4 && d[1] == c && d[2] == 1 && d[3] == 1)
        .ok_or_else(|| cx.err(format!("w1 must be [Cr,{c},1,1], got {}", ins[1])))?;
    let cr = w1[0];
    if cr == 0 || c == 0 {
        return Err(cx.err(format!(
            "needs at least one channel and one hidden unit, got C = {c}, Cr = {cr}"
        )));
    }
    if ins[slots.w2] != Shape::fixed(&[c, cr, 1, 1]) {
        return Err(cx.err(format!("w2 must be [{c},{cr},1,1], got {}", ins[slots.w2])));
    }
    for (slot, len, what) in [(slots.b1, cr, "b1"), (slots.b2, c, "b2")] {
        if let Some(i) = slot
            && ins[i] != Shape::fixed(&[len])
        {
            return Err(cx.err(format!("{what} must be [{len}], got {}", ins[i])));
        }
    }
    if let Some(i) = slots.r
        && ins[i] != *x
    {
        return Err(cx.err(format!("residual has shape {}, input has {x}", ins[i])));
    }
    Ok(x.clone())
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Result<Shape, String> {
    let r = a.rank().max(b.rank());
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.rank() >= r {
            a.0[i + a.rank() - r]
        } else {
            Dim::Fixed(1)
        };
        let db = if i + b.rank() >= r {
            b.0[i + b.rank() - r]
        } else {
            Dim::Fixed(1)
        };
        out.push(match (da, db) {
            (x, y) if x == y => x,
            (Dim::Fixed(1), y) => y,
            (x, Dim::Fixed(1)) => x,
            _ => return Err(format!("shapes {a} and {b} do not broadcast")),
        });
    }
    Ok(Shape(out))
}

fn broadcast(cx: &Cx<'_>, a: &Shape, b: &Shape) -> Result<Shape, IrError> {
    broadcast_shapes(a, b).map_err(|m| cx.err(m))
}

fn conv(cx: &Cx<'_>, c: &Conv, ins: &[Shape]) -> Result<Shape, IrError> {
    let (x, w) = (&ins[0], &ins[1]);
    if x.rank() != 4 {
        return Err(cx.err(format!("input must be 4-D [N,C,H,W], got {x}")));
    }
    let wd = w
        .as_fixed()
        .filter(|d| d.len() == 4)
        .ok_or_else(|| cx.err(format!("weight must be 4-D [M,C/group,kH,kW], got {w}")))?;
    if c.group == 0 {
        return Err(cx.err("group is 0"));
    }
    if c.strides.contains(&0) || c.dilations.contains(&0) {
        return Err(cx.err(format!(
            "strides {:?} and dilations {:?} must be positive",
            c.strides, c.dilations
        )));
    }
    let cin = cx.fixed(x.0[1], "channel dimension")?;
    if cin % c.group != 0 || wd[0] % c.group != 0 {
        return Err(cx.err(format!(
            "group {} does not divide input channels {cin} and output channels {}",
            c.group, wd[0]
        )));
    }
    if wd[1] * c.group != cin {
        return Err(cx.err(format!(
            "weight {w} expects {} input channels, input has {cin}",
            wd[1] * c.group
        )));
    }
    if let Some(b) = ins.get(2)
        && *b != Shape::fixed(&[wd[0]])
    {
        return Err(cx.err(format!("bias has shape {b}, expected [{}]", wd[0])));
    }
    let mut out = vec![x.0[0], Dim::Fixed(wd[0])];
    for i in 0..2 {
        let size = cx.fixed(x.0[2 + i], "spatial dimension")?;
        out.push(Dim::Fixed(window_out(
            cx,
            size,
            wd[2 + i],
            c.strides[i],
            c.dilations[i],
            c.pads[i],
            c.pads[i + 2],
            false,
        )?));
    }
    Ok(Shape(out))
}

fn pool(cx: &Cx<'_>, p: &Pool, x: &Shape) -> Result<Shape, IrError> {
    if x.rank() != 4 {
        return Err(cx.err(format!("input must be 4-D [N,C,H,W], got {x}")));
    }
    if p.strides.contains(&0) || p.dilations.contains(&0) || p.kernel.contains(&0) {
        return Err(cx.err("kernel, strides and dilations must be positive"));
    }
    for i in 0..2 {
        if p.pads[i] >= p.kernel[i] || p.pads[i + 2] >= p.kernel[i] {
            return Err(cx.err(format!(
                "pads {:?} must be smaller than the kernel {:?}",
                p.pads, p.kernel
            )));
        }
    }
    let mut out = vec![x.0[0], x.0[1]];
    for i in 0..2 {
        let size = cx.fixed(x.0[2 + i], "spatial dimension")?;
        out.push(Dim::Fixed(window_out(
            cx,
            size,
            p.kernel[i],
            p.strides[i],
            p.dilations[i],
            p.pads[i],
            p.pads[i + 2],
            p.ceil_mode,
        )?));
    }
    Ok(Shape(out))
}

/// Output length of a sliding window, as ONNX defines it (ceil mode drops a last window that
/// would start inside the end padding).
#[allow(clippy::too_many_arguments)]
fn window_out(
    cx: &Cx<'_>,
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil: bool,
) -> Result<usize, IrError> {
    let padded = size
        .checked_add(pad_begin)
        .and_then(|v| v.checked_add(pad_end))
        .ok_or_else(|| cx.err("padding overflows"))?;
    let eff = dilation
        .checked_mul(kernel.saturating_sub(1))
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| cx.err("kernel extent overflows"))?;
    if kernel == 0 || padded < eff {
        return Err(cx.err(format!(
            "window of extent {eff} does not fit input of size {size} padded to {padded}"
        )));
    }
    let span = padded - eff;
    let mut out = if ceil {
        span.div_ceil(stride) + 1
    } else {
        span / stride + 1
    };
    if ceil && (out - 1) * stride >= size + pad_begin {
        out -= 1;
    }
    Ok(out)
}

fn matmul(cx: &Cx<'_>, a: &Shape, b: &Shape) -> Result<Shape, IrError> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(cx.err("operands must have rank at least 1"));
    }
    let a2 = if a.rank() == 1 {
        Shape(vec![Dim::Fixed(1), a.0[0]])
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        Shape(vec![b.0[0], Dim::Fixed(1)])
    } else {
        b.clone()
    };
    let (ra, rb) = (a2.rank(), b2.rank());
    let (m, ka) = (a2.0[ra - 2], a2.0[ra - 1]);
    let (kb, n) = (b2.0[rb - 2], b2.0[rb - 1]);
    if ka != kb {
        return Err(cx.err(format!("inner dimensions differ: {a} and {b}")));
    }
    let batch = broadcast(
        cx,
        &Shape(a2.0[..ra - 2].to_vec()),
        &Shape(b2.0[..rb - 2].to_vec()),
    )?;
    let mut out = batch.0;
    if a.rank() > 1 {
        out.push(m);
    }
    if b.rank() > 1 {
        out.push(n);
    }
    Ok(Shape(out))
}

fn reshape(cx: &Cx<'_>, x: &Shape, target: &[i64], allowzero: bool) -> Result<Shape, IrError> {
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 => {
                if infer_at.replace(i).is_some() {
                    return Err(cx.err("more than one -1 in the target shape"));
                }
                out.push(None);
            }
            0 if !allowzero => {
                let d = x.0.get(i).copied().ok_or_else(|| {
                    cx.err(format!(
                        "target dim {i} is 0 (copy) but input {x} has no dim {i}"
                    ))
                })?;
                out.push(Some(d));
            }
            t if t < 0 => return Err(cx.err(format!("invalid target dimension {t}"))),
            t => out.push(Some(Dim::Fixed(t as usize))),
        }
    }
    // Elements of the input and of the known part of the output, each as (batch?, product).
    let split = |dims: &mut dyn Iterator<Item = Dim>| -> Result<(bool, usize), IrError> {
        let mut p = 1usize;
        let mut b = false;
        for d in dims {
            match d {
                Dim::Fixed(n) => p = p.checked_mul(n).ok_or_else(|| cx.err("size overflows"))?,
                Dim::Batch => b = true,
            }
        }
        Ok((b, p))
    };
    let (in_b, in_p) = split(&mut x.0.iter().copied())?;
    let (out_b, out_p) = split(&mut out.iter().flatten().copied())?;
    match infer_at {
        Some(i) => {
            if out_p == 0 {
                return Err(cx.err("cannot infer -1 next to a zero-sized dimension"));
            }
            if in_p % out_p != 0 {
                return Err(cx.err(format!("cannot reshape {x} to {target:?}")));
            }
            let q = in_p / out_p;
            out[i] = Some(match (in_b, out_b) {
                (a, b) if a == b => Dim::Fixed(q),
                (true, false) if q == 1 => Dim::Batch,
                _ => {
                    return Err(cx.err(format!(
                        "cannot reshape {x} to {target:?} with a symbolic batch; give a batch size"
                    )));
                }
            });
        }
        None => {
            if in_b != out_b || in_p != out_p {
                return Err(cx.err(format!("cannot reshape {x} to {target:?}")));
            }
        }
    }
    Ok(Shape(out.into_iter().flatten().collect()))
}
