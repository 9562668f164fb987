//! The ops that compute or move shapes and constants: they fold when their inputs are
//! constants (`Shape`, `Gather`, `Slice`, `Concat`, `Unsqueeze`, `Cast`, arithmetic, ...) and
//! otherwise become IR ops where the IR has one (`Reshape`, `Expand`, `Concat`, `Add`, ...).
//!
//! A folded shape vector may contain the symbolic batch. Feeding Reshape, such an entry
//! becomes `0` (copy) when the input has the batch at the same position, or `-1` when nothing
//! else is inferred: the exporter pattern `Reshape(x, Concat(Gather(Shape(x), 0), [-1]))`
//! imports as `Reshape[0,-1]`.

use excite_ir::{Dim, Op, Shape};

use crate::arith::{self, Arith};
use crate::attrs::NodeCx;
use crate::consts::{Const, Data, Int, from_proto};
use crate::error::OnnxError;
use crate::fold::{self, Fx};
use crate::import::{Importer, Val};

impl Importer {
    /// Imports a shape/constant op, or reports the op as unsupported.
    pub fn shape_op(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        let out = cx.output_name(0).unwrap_or("").to_string();
        match cx.op {
            "Add" | "Sub" | "Mul" | "Div" => {
                cx.known(&[])?;
                cx.arity(2, 2, 1)?;
                let op = match cx.op {
                    "Add" => (Arith::Add, Op::Add),
                    "Sub" => (Arith::Sub, Op::Sub),
                    "Mul" => (Arith::Mul, Op::Mul),
                    _ => (Arith::Div, Op::Div),
                };
                if let (Some(Val::Const(a)), Some(Val::Const(b))) =
                    (self.input(cx, 0), self.input(cx, 1))
                {
                    let c = arith::binary(&mut self.fx(cx, &out), op.0, &a, &b)?;
                    return self.set_const(cx, c);
                }
                let (a, b) = (self.ir(cx, 0)?, self.ir(cx, 1)?);
                self.emit(cx, op.1, &[a, b])
            }
            "Identity" => {
                cx.known(&[])?;
                cx.arity(1, 1, 1)?;
                match self.required(cx, 0)? {
                    Val::Const(c) => self.set_const(cx, (*c).clone()),
                    Val::Ir(v) => self.emit(cx, Op::Identity, &[v]),
                }
            }
            "Constant" => self.constant(cx, &out),
            "Shape" => {
                cx.known(&["start", "end"])?;
                cx.arity(1, 1, 1)?;
                let dims = match self.required(cx, 0)? {
                    Val::Const(c) => Shape::fixed(&c.dims),
                    Val::Ir(v) => self.shape(cx, v)?,
                };
                let c = fold::shape_of(dims.dims(), cx.int("start", 0)?, cx.opt_int("end")?);
                self.set_const(cx, c)
            }
            "Gather" => {
                cx.known(&["axis"])?;
                cx.arity(2, 2, 1)?;
                let data = self.folded(cx, 0, "data")?;
                let idx = self.folded(cx, 1, "indices")?;
                let c = fold::gather(&mut self.fx(cx, &out), &data, &idx, cx.int("axis", 0)?)?;
                self.set_const(cx, c)
            }
            "Slice" => {
                cx.known(&[])?;
                cx.arity(3, 5, 1)?;
                let data = self.folded(cx, 0, "data")?;
                let starts = self.ints_input(cx, 1, "starts")?.unwrap_or_default();
                let ends = self.ints_input(cx, 2, "ends")?.unwrap_or_default();
                let axes = self.ints_input(cx, 3, "axes")?;
                let steps = self.ints_input(cx, 4, "steps")?;
                let c = fold::slice(
                    &mut self.fx(cx, &out),
                    &data,
                    &starts,
                    &ends,
                    axes.as_deref(),
                    steps.as_deref(),
                )?;
                self.set_const(cx, c)
            }
            "Concat" => {
                cx.known(&["axis"])?;
                cx.arity(1, usize::MAX, 1)?;
                let axis = cx
                    .opt_int("axis")?
                    .ok_or_else(|| cx.attr_err("axis", "is required"))?;
                let n = cx.node.input.len();
                let ins: Vec<Option<Val>> = (0..n).map(|i| self.input(cx, i)).collect();
                let consts: Option<Vec<&Const>> = ins
                    .iter()
                    .map(|v| match v {
                        Some(Val::Const(c)) => Some(&**c),
                        _ => None,
                    })
                    .collect();
                if let Some(cs) = consts {
                    let c = fold::concat(&mut self.fx(cx, &out), &cs, axis)?;
                    return self.set_const(cx, c);
                }
                let ids = (0..n)
                    .map(|i| self.ir(cx, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let r = self.shape(cx, ids[0])?.rank();
                let a = self.fx(cx, &out).axis(axis, r)?;
                self.emit(cx, Op::Concat { axis: a }, &ids)
            }
            "Unsqueeze" | "Squeeze" => self.squeeze(cx, &out),
            "Cast" => {
                cx.known(&["to", "saturate"])?;
                cx.arity(1, 1, 1)?;
                let to = cx
                    .opt_int("to")?
                    .ok_or_else(|| cx.attr_err("to", "is required"))?;
                match self.required(cx, 0)? {
                    Val::Const(c) => {
                        let c = arith::cast(&mut self.fx(cx, &out), &c, to)?;
                        self.set_const(cx, c)
                    }
                    Val::Ir(v) if to == 1 => self.emit(cx, Op::Identity, &[v]),
                    Val::Ir(_) => Err(cx.unsupported(format!(
                        "casting run-time data to data type {to} is not supported (only to float)"
                    ))),
                }
            }
            "ConstantOfShape" => {
                cx.known(&["value"])?;
                cx.arity(1, 1, 1)?;
                let shape = self.folded(cx, 0, "input")?;
                let value = match cx.tensor("value")? {
                    Some(t) => Some(from_proto(t, &out, &mut self.budget)?),
                    None => None,
                };
                let c = arith::constant_of_shape(&mut self.fx(cx, &out), &shape, value.as_ref())?;
                self.set_const(cx, c)
            }
            "Range" => {
                cx.known(&[])?;
                cx.arity(3, 3, 1)?;
                let s = self.folded(cx, 0, "start")?;
                let l = self.folded(cx, 1, "limit")?;
                let d = self.folded(cx, 2, "delta")?;
                let c = arith::range(&mut self.fx(cx, &out), &s, &l, &d)?;
                self.set_const(cx, c)
            }
            "Reshape" => self.reshape(cx, &out),
            "Expand" => {
                cx.known(&[])?;
                cx.arity(2, 2, 1)?;
                let target = self.folded(cx, 1, "shape")?;
                let x = self.ir(cx, 0)?;
                let xs = self.shape(cx, x)?;
                let syms = target
                    .syms()
                    .ok_or_else(|| cx.unsupported("`shape` must be integers"))?;
                let off = syms.len() as i64 - xs.rank() as i64;
                let mut shape = Vec::with_capacity(syms.len());
                for (i, s) in syms.iter().enumerate() {
                    shape.push(match s {
                        Int::V(v) => *v,
                        // Broadcasting 1 against the batch gives the batch.
                        Int::Batch
                            if xs.dims().get((i as i64 - off) as usize) == Some(&Dim::Batch)
                                && i as i64 >= off =>
                        {
                            1
                        }
                        Int::Batch => return Err(fold::batch_err(&self.fx(cx, &out))),
                    });
                }
                self.emit(cx, Op::Expand { shape }, &[x])
            }
            _ => Err(OnnxError::UnsupportedOp {
                node: cx.name.to_string(),
                op: cx.op.to_string(),
                opset: cx.opset,
            }),
        }
    }

    /// A fold context for node `cx` computing `out`.
    fn fx<'s>(&'s mut self, cx: &'s NodeCx<'_>, out: &'s str) -> Fx<'s> {
        Fx {
            node: cx.name,
            op: cx.op,
            out,
            budget: &mut self.budget,
        }
    }

    /// Input `i`, which must be a constant: only shape computations fold.
    fn folded(
        &self,
        cx: &NodeCx<'_>,
        i: usize,
        what: &str,
    ) -> Result<std::rc::Rc<Const>, OnnxError> {
        match self.input(cx, i) {
            Some(Val::Const(c)) => Ok(c),
            None => Err(cx.unsupported(format!("input `{what}` is missing"))),
            Some(Val::Ir(_)) => Err(cx.unsupported(format!(
                "input `{what}` is computed at run time; {} is only supported on constants \
                 and shape computations that fold at import",
                cx.op
            ))),
        }
    }

    /// Optional input `i` as plain integers.
    fn ints_input(
        &self,
        cx: &NodeCx<'_>,
        i: usize,
        what: &str,
    ) -> Result<Option<Vec<i64>>, OnnxError> {
        match self.konst(cx, i, what)? {
            None => Ok(None),
            Some(c) => c
                .plain_ints()
                .map(Some)
                .ok_or_else(|| cx.unsupported(format!("`{what}` must be plain integers"))),
        }
    }

    fn constant(&mut self, cx: &NodeCx<'_>, out: &str) -> Result<(), OnnxError> {
        cx.arity(0, 0, 1)?;
        let [a] = cx.node.attribute.as_slice() else {
            return Err(cx.unsupported("must have exactly one value attribute"));
        };
        let c = match a.name.as_deref().unwrap_or("") {
            "value" => match cx.tensor("value")? {
                Some(t) => from_proto(t, out, &mut self.budget)?,
                None => return Err(cx.attr_err("value", "has no tensor")),
            },
            "value_float" => Const {
                dims: vec![],
                data: Data::F32(vec![cx.float("value_float", 0.0)?]),
            },
            "value_floats" => {
                let v = cx.floats("value_floats")?.unwrap_or_default().to_vec();
                Const {
                    dims: vec![v.len()],
                    data: Data::F32(v),
                }
            }
            "value_int" => Const::ints(vec![], vec![cx.int("value_int", 0)?]),
            "value_ints" => {
                let v = cx.ints("value_ints")?.unwrap_or_default().to_vec();
                Const::ints(vec![v.len()], v)
            }
            other => return Err(cx.attr_err(other, "is not supported")),
        };
        self.set_const(cx, c)
    }

    fn squeeze(&mut self, cx: &NodeCx<'_>, out: &str) -> Result<(), OnnxError> {
        let un = cx.op == "Unsqueeze";
        let axes = if cx.opset < 13 {
            cx.known(&["axes"])?;
            cx.arity(1, 1, 1)?;
            cx.ints("axes")?.map(<[i64]>::to_vec)
        } else {
            cx.known(&[])?;
            cx.arity(1, 2, 1)?;
            self.ints_input(cx, 1, "axes")?
        };
        if un && axes.is_none() {
            return Err(cx.unsupported("`axes` is required"));
        }
        let axes_v = axes.as_deref().unwrap_or_default();
        match self.required(cx, 0)? {
            Val::Const(c) => {
                let mut fx = self.fx(cx, out);
                let dims = if un {
                    fold::unsqueeze_dims(&fx, &c.dims, axes_v)?
                } else {
                    fold::squeeze_dims(&fx, &c.dims, axes.as_deref())?
                };
                let c = fold::with_dims(&mut fx, &c, dims)?;
                self.set_const(cx, c)
            }
            Val::Ir(v) => {
                // The result's shape computed at batch 1, then the batch put back in place.
                let s = self.shape(cx, v)?;
                let at1: Vec<usize> = s.dims().iter().map(|d| d.resolve(1)).collect();
                let fx = self.fx(cx, out);
                let dims = if un {
                    fold::unsqueeze_dims(&fx, &at1, axes_v)?
                } else {
                    let batch_first = s.dims().first() == Some(&Dim::Batch);
                    let drops_batch = match axes.as_deref() {
                        None => true,
                        Some(a) => a.iter().any(|&x| x == 0 || x == -(s.rank() as i64)),
                    };
                    if batch_first && drops_batch {
                        return Err(fold::batch_err(&fx));
                    }
                    fold::squeeze_dims(&fx, &at1, axes.as_deref())?
                };
                let out_dims = place_batch(&s, &dims, axes_v, un);
                let shape = to_target(&s, &out_dims).map_err(|m| fx.err(m))?;
                self.emit(
                    cx,
                    Op::Reshape {
                        shape,
                        allowzero: false,
                    },
                    &[v],
                )
            }
        }
    }

    fn reshape(&mut self, cx: &NodeCx<'_>, out: &str) -> Result<(), OnnxError> {
        cx.known(&["allowzero"])?;
        cx.arity(2, 2, 1)?;
        let allowzero = cx.flag("allowzero", false)?;
        let target = self.folded(cx, 1, "shape")?;
        let syms = target
            .syms()
            .ok_or_else(|| cx.unsupported("`shape` must be integers"))?
            .to_vec();
        match self.required(cx, 0)? {
            Val::Const(c) => {
                let plain = target
                    .plain_ints()
                    .ok_or_else(|| fold::batch_err(&self.fx(cx, out)))?;
                let mut fx = self.fx(cx, out);
                let dims = fold::reshape_dims(&fx, &c.dims, &plain, allowzero)?;
                let c = fold::with_dims(&mut fx, &c, dims)?;
                self.set_const(cx, c)
            }
            Val::Ir(v) => {
                let xs = self.shape(cx, v)?;
                let mut shape = Vec::with_capacity(syms.len());
                let mut inferred = syms.contains(&Int::V(-1));
                for (i, s) in syms.iter().enumerate() {
                    shape.push(match s {
                        Int::V(n) => *n,
                        Int::Batch if !allowzero && xs.dims().get(i) == Some(&Dim::Batch) => 0,
                        Int::Batch if !std::mem::replace(&mut inferred, true) => -1,
                        Int::Batch => {
                            return Err(self.fx(cx, out).err(format!(
                                "target entry {i} is the symbolic batch size but input {xs} has \
                                 it elsewhere; export the model with a fixed batch size"
                            )));
                        }
                    });
                }
                self.emit(cx, Op::Reshape { shape, allowzero }, &[v])
            }
        }
    }
}

/// The result dims of (un)squeezing `s`, with `Dim::Batch` where the input's batch dim lands.
fn place_batch(s: &Shape, res: &[usize], axes: &[i64], un: bool) -> Vec<Dim> {
    let mut out: Vec<Dim> = res.iter().map(|&d| Dim::Fixed(d)).collect();
    if s.dims().first() == Some(&Dim::Batch) {
        // The batch is dim 0 of the input; unsqueeze shifts it right past new leading axes.
        let r = res.len() as i64;
        let pos = if un {
            let mut norm: Vec<i64> = axes
                .iter()
                .map(|&a| if a < 0 { a + r } else { a })
                .collect();
            norm.sort_unstable();
            let mut p = 0;
            for a in norm {
                if a <= p {
                    p += 1;
                }
            }
            p as usize
        } else {
            0
        };
        if let Some(d) = out.get_mut(pos) {
            *d = Dim::Batch;
        }
    }
    out
}

/// A Reshape target producing `out` from `input`: fixed dims as numbers, the batch as `0` when
/// it stays in place, else `-1`.
fn to_target(input: &Shape, out: &[Dim]) -> Result<Vec<i64>, String> {
    let mut t = Vec::with_capacity(out.len());
    for (i, d) in out.iter().enumerate() {
        t.push(match d {
            Dim::Fixed(0) => return Err("zero-sized dimensions are not supported".into()),
            Dim::Fixed(n) => *n as i64,
            Dim::Batch if input.dims().get(i) == Some(&Dim::Batch) => 0,
            Dim::Batch => -1,
        });
    }
    Ok(t)
}
