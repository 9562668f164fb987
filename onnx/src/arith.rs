//! Folding of the value-computing ops: `Cast`, elementwise arithmetic with broadcasting,
//! `Range` and `ConstantOfShape`. See [`crate::fold`] for the data-moving ones.

use crate::attrs::brief;
use crate::consts::{Const, Data, Int};
use crate::error::OnnxError;
use crate::fold::{Fx, batch_err};
use crate::proto::tensor_proto::DataType as T;

/// ONNX `Cast` to the data type `to` (a `TensorProto.DataType` number). Floats cast to integers
/// truncate toward zero, as ONNX Runtime does.
pub fn cast(fx: &mut Fx<'_>, c: &Const, to: i64) -> Result<Const, OnnxError> {
    let to = i32::try_from(to).ok().and_then(|t| T::try_from(t).ok());
    let to_float = matches!(to, Some(T::Float | T::Double | T::Float16));
    let to_bool = matches!(to, Some(T::Bool));
    let to_int = to_bool
        || matches!(
            to,
            Some(
                T::Int64
                    | T::Int32
                    | T::Int16
                    | T::Int8
                    | T::Uint8
                    | T::Uint16
                    | T::Uint32
                    | T::Uint64
            )
        );
    let data = if to_float {
        Data::F32(c.floats().ok_or_else(|| batch_err(fx))?)
    } else if to_int {
        match &c.data {
            Data::Int(v) if !to_bool => Data::Int(v.clone()),
            Data::Int(v) => {
                let mut out = Vec::with_capacity(v.len());
                for i in v {
                    match i {
                        Int::V(x) => out.push(Int::V(i64::from(*x != 0))),
                        Int::Batch => return Err(batch_err(fx)),
                    }
                }
                Data::Int(out)
            }
            Data::F32(v) => {
                let mut out = Vec::with_capacity(v.len());
                for &x in v {
                    if !x.is_finite() {
                        return Err(fx.err(format!("cannot cast {x} to an integer")));
                    }
                    out.push(Int::V(if to_bool {
                        i64::from(x != 0.0)
                    } else {
                        x.trunc() as i64
                    }));
                }
                Data::Int(out)
            }
        }
    } else {
        return Err(fx.err(format!("cast to data type {to:?} is not supported")));
    };
    let out = Const {
        dims: c.dims.clone(),
        data,
    };
    fx.alloc(&out.dims, out.elem_bytes())?;
    Ok(out)
}

/// The four arithmetic ops that fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// Elementwise `a op b` with NumPy broadcasting. Integer division truncates; the batch symbol
/// survives `N+0`, `0+N`, `N-0`, `N*1`, `1*N` and `N/1`.
pub fn binary(fx: &mut Fx<'_>, op: Arith, a: &Const, b: &Const) -> Result<Const, OnnxError> {
    let r = a.dims.len().max(b.dims.len());
    let pad = |d: &[usize]| {
        let mut v = vec![1; r - d.len()];
        v.extend_from_slice(d);
        v
    };
    let (da, db) = (pad(&a.dims), pad(&b.dims));
    let mut dims = Vec::with_capacity(r);
    for (&x, &y) in da.iter().zip(&db) {
        dims.push(match (x, y) {
            _ if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(fx.err(format!(
                    "shapes {:?} and {:?} do not broadcast",
                    a.dims, b.dims
                )));
            }
        });
    }
    let n = fx.alloc(&dims, a.elem_bytes().max(b.elem_bytes()))?;
    let ia = bcast_index(&da, &dims, n);
    let ib = bcast_index(&db, &dims, n);
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => Data::F32(
            ia.iter()
                .zip(&ib)
                .map(|(&i, &j)| {
                    let (p, q) = (x[i], y[j]);
                    match op {
                        Arith::Add => p + q,
                        Arith::Sub => p - q,
                        Arith::Mul => p * q,
                        Arith::Div => p / q,
                    }
                })
                .collect(),
        ),
        (Data::Int(x), Data::Int(y)) => {
            let mut v = Vec::with_capacity(n);
            for (&i, &j) in ia.iter().zip(&ib) {
                v.push(int_op(fx, op, x[i], y[j])?);
            }
            Data::Int(v)
        }
        _ => return Err(fx.err("operands mix integer and float tensors")),
    };
    Ok(Const { dims, data })
}

fn int_op(fx: &Fx<'_>, op: Arith, x: Int, y: Int) -> Result<Int, OnnxError> {
    use Int::{Batch, V};
    Ok(match (op, x, y) {
        (Arith::Add, Batch, V(0)) | (Arith::Add, V(0), Batch) => Batch,
        (Arith::Sub, Batch, V(0)) => Batch,
        (Arith::Mul, Batch, V(1)) | (Arith::Mul, V(1), Batch) => Batch,
        (Arith::Div, Batch, V(1)) => Batch,
        (_, Batch, _) | (_, _, Batch) => return Err(batch_err(fx)),
        (_, V(_), V(0)) if op == Arith::Div => return Err(fx.err("integer division by zero")),
        (_, V(p), V(q)) => V(match op {
            Arith::Add => p.checked_add(q),
            Arith::Sub => p.checked_sub(q),
            Arith::Mul => p.checked_mul(q),
            Arith::Div => p.checked_div(q),
        }
        .ok_or_else(|| fx.err(format!("integer overflow in {p} {op:?} {q}")))?),
    })
}

/// Source positions in an input of (rank-padded) shape `d` for each element of `out`.
fn bcast_index(d: &[usize], out: &[usize], n: usize) -> Vec<usize> {
    let strides = excite_ir::tensor::strides(d);
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0usize; out.len()];
    for _ in 0..n {
        idx.push(
            (0..out.len())
                .map(|k| if d[k] == 1 { 0 } else { coord[k] * strides[k] })
                .sum(),
        );
        for k in (0..out.len()).rev() {
            coord[k] += 1;
            if coord[k] < out[k] {
                break;
            }
            coord[k] = 0;
        }
    }
    idx
}

/// ONNX `Range(start, limit, delta)` over scalars.
pub fn range(
    fx: &mut Fx<'_>,
    start: &Const,
    limit: &Const,
    delta: &Const,
) -> Result<Const, OnnxError> {
    let scalar = |c: &Const, what: &str| {
        if c.numel() == 1 {
            Ok(())
        } else {
            Err(fx.err(format!("{what} must be a scalar")))
        }
    };
    scalar(start, "start")?;
    scalar(limit, "limit")?;
    scalar(delta, "delta")?;
    match (start.plain_ints(), limit.plain_ints(), delta.plain_ints()) {
        (Some(s), Some(l), Some(d)) => {
            let (s, l, d) = (i128::from(s[0]), i128::from(l[0]), i128::from(d[0]));
            if d == 0 {
                return Err(fx.err("delta is 0"));
            }
            let count = ((l - s) + d - d.signum()).div_euclid(d).max(0);
            let count = usize::try_from(count).map_err(|_| fx.err("too many elements"))?;
            fx.alloc(&[count], std::mem::size_of::<Int>() as u128)?;
            let v = (0..count)
                .map(|k| Int::V((s + k as i128 * d) as i64))
                .collect();
            Ok(Const {
                dims: vec![count],
                data: Data::Int(v),
            })
        }
        _ => {
            let f = |c: &Const| {
                c.floats()
                    .map(|v| f64::from(v[0]))
                    .ok_or_else(|| batch_err(fx))
            };
            let (s, l, d) = (f(start)?, f(limit)?, f(delta)?);
            let count = ((l - s) / d).ceil();
            if d == 0.0 || !count.is_finite() {
                return Err(fx.err("delta is 0 or the range is not finite"));
            }
            let count = count.max(0.0);
            if count > u64::MAX as f64 {
                return Err(fx.err("too many elements"));
            }
            let count = count as usize;
            fx.alloc(&[count], 4)?;
            let v = (0..count).map(|k| (s + k as f64 * d) as f32).collect();
            Ok(Const {
                dims: vec![count],
                data: Data::F32(v),
            })
        }
    }
}

/// ONNX `ConstantOfShape(shape)` filled with `value` (one element; default float 0).
pub fn constant_of_shape(
    fx: &mut Fx<'_>,
    shape: &Const,
    value: Option<&Const>,
) -> Result<Const, OnnxError> {
    let s = shape
        .plain_ints()
        .ok_or_else(|| fx.err("shape must be plain integers (not depending on the batch size)"))?;
    let mut dims = Vec::with_capacity(s.len());
    for &d in &s {
        dims.push(
            usize::try_from(d)
                .map_err(|_| fx.err(format!("negative dimension in {}", brief(&s))))?,
        );
    }
    let fill = match value {
        Some(v) if v.numel() != 1 => return Err(fx.err("value must have one element")),
        Some(v) => v.take(&[0], vec![]),
        None => Const {
            dims: vec![],
            data: Data::F32(vec![0.0]),
        },
    };
    let n = fx.alloc(&dims, fill.elem_bytes())?;
    let data = match fill.data {
        Data::F32(v) => Data::F32(vec![v[0]; n]),
        Data::Int(v) => Data::Int(vec![v[0]; n]),
    };
    Ok(Const { dims, data })
}
