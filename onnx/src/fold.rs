//! The constant folder: evaluates the small integer and float subgraphs that exporters emit to
//! compute shapes at run time (`Shape`, `Gather`, `Unsqueeze`, `Concat`, `Slice`, `Cast`,
//! `Range`, `ConstantOfShape`, arithmetic, ...), so that `Reshape`, `Expand`, `ReduceMean` axes
//! and `Clip` bounds become IR attributes.
//!
//! Every result is charged to the memory budget before it is allocated. The symbolic batch
//! ([`Int::Batch`]) is carried by data movement and by arithmetic identities (`N*1`, `N+0`);
//! anything else that would need its value is an error asking for a fixed batch size.

use excite_ir::Dim;

use crate::attrs::brief;
use crate::consts::{Budget, Const, Data, Int};
use crate::error::OnnxError;

/// Where a fold happens, for errors and budget charges.
#[derive(Debug)]
pub struct Fx<'a> {
    pub node: &'a str,
    pub op: &'a str,
    /// The value being computed (named in budget errors).
    pub out: &'a str,
    pub budget: &'a mut Budget,
}

impl Fx<'_> {
    pub fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Fold {
            node: self.node.to_string(),
            op: self.op.to_string(),
            msg: msg.into(),
        }
    }

    /// Checks an output shape against the budget and returns its element count.
    pub fn alloc(&mut self, dims: &[usize], elem: u128) -> Result<usize, OnnxError> {
        let n = dims
            .iter()
            .try_fold(1u128, |a, &d| a.checked_mul(d as u128))
            .ok_or_else(|| self.err(format!("shape {dims:?} overflows")))?;
        self.budget.charge(self.out, n, elem)?;
        // Under the budget, so it fits in usize.
        usize::try_from(n).map_err(|_| self.err("too many elements"))
    }

    /// `take` with the result charged to the budget first.
    fn take(&mut self, c: &Const, idx: &[usize], dims: Vec<usize>) -> Result<Const, OnnxError> {
        self.alloc(&dims, c.elem_bytes())?;
        Ok(c.take(idx, dims))
    }

    /// Normalises `axis` against `rank` (negative counts from the end).
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize, OnnxError> {
        let r = rank as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if a < 0 || a >= r {
            return Err(self.err(format!("axis {axis} out of range for rank {rank}")));
        }
        Ok(a as usize)
    }
}

pub fn batch_err(fx: &Fx<'_>) -> OnnxError {
    fx.err(
        "the value depends on the symbolic batch size in a way that cannot be folded; \
         export the model with a fixed batch size",
    )
}

/// Row-major multi-index of `flat` in `dims` (dims all non-zero when called).
fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for i in (0..dims.len()).rev() {
        out[i] = flat % dims[i];
        flat /= dims[i];
    }
}

/// `Shape(x)` for `x` of shape `dims`, sliced by opset-15 `start`/`end`.
pub fn shape_of(dims: &[Dim], start: i64, end: Option<i64>) -> Const {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let v: Vec<Int> = dims[s..e.max(s)]
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Int::V(*n as i64),
            Dim::Batch => Int::Batch,
        })
        .collect();
    Const {
        dims: vec![v.len()],
        data: Data::Int(v),
    }
}

pub fn gather(fx: &mut Fx<'_>, data: &Const, idx: &Const, axis: i64) -> Result<Const, OnnxError> {
    let axis = fx.axis(axis, data.dims.len())?;
    if data.dims.is_empty() {
        return Err(fx.err("cannot gather from a scalar"));
    }
    let ids = idx
        .plain_ints()
        .ok_or_else(|| fx.err("indices must be plain integers"))?;
    let d = data.dims[axis];
    let outer: usize = data.dims[..axis].iter().product();
    let inner: usize = data.dims[axis + 1..].iter().product();
    let mut norm = Vec::with_capacity(ids.len());
    for &j in &ids {
        let k = if j < 0 { j + d as i64 } else { j };
        if k < 0 || k >= d as i64 {
            return Err(fx.err(format!("index {j} out of range for dimension {d}")));
        }
        norm.push(k as usize);
    }
    let mut dims = data.dims[..axis].to_vec();
    dims.extend(&idx.dims);
    dims.extend(&data.dims[axis + 1..]);
    fx.budget.check(
        fx.out,
        outer as u128 * norm.len() as u128 * inner as u128,
        8,
    )?;
    let mut src = Vec::new();
    for o in 0..outer {
        for &k in &norm {
            for i in 0..inner {
                src.push((o * d + k) * inner + i);
            }
        }
    }
    fx.take(data, &src, dims)
}

/// ONNX Slice (opset 10+): `starts`, `ends`, optional `axes` and `steps`.
pub fn slice(
    fx: &mut Fx<'_>,
    data: &Const,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Const, OnnxError> {
    let rank = data.dims.len();
    let n = starts.len();
    if ends.len() != n || axes.is_some_and(|a| a.len() != n) || steps.is_some_and(|s| s.len() != n)
    {
        return Err(fx.err("starts, ends, axes and steps differ in length"));
    }
    // Per axis: (first index, step, count).
    let mut plan: Vec<(i128, i128, usize)> = data.dims.iter().map(|&d| (0, 1, d)).collect();
    let mut seen = vec![false; rank];
    for i in 0..n {
        let a = fx.axis(axes.map_or(i as i64, |a| a[i]), rank)?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(fx.err(format!("axis {a} repeated")));
        }
        let step = i128::from(steps.map_or(1, |s| s[i]));
        if step == 0 {
            return Err(fx.err("step is 0"));
        }
        let d = data.dims[a] as i128;
        let fix = |v: i128| if v < 0 { v + d } else { v };
        let (s, e) = (fix(starts[i].into()), fix(ends[i].into()));
        let (s, e) = if d == 0 {
            (0, 0)
        } else if step > 0 {
            (s.clamp(0, d), e.clamp(0, d))
        } else {
            (s.clamp(0, d - 1), e.clamp(-1, d - 1))
        };
        let count = if step > 0 {
            (e - s + step - 1).div_euclid(step)
        } else {
            (s - e - step - 1).div_euclid(-step)
        };
        plan[a] = (s, step, count.max(0) as usize);
    }
    let dims: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let total: usize = dims.iter().product(); // At most the input's element count.
    let strides = excite_ir::tensor::strides(&data.dims);
    let mut idx = vec![0usize; rank];
    let mut src = Vec::with_capacity(total);
    for f in 0..total {
        unravel(f, &dims, &mut idx);
        let off: i128 = (0..rank)
            .map(|a| (plan[a].0 + idx[a] as i128 * plan[a].1) * strides[a] as i128)
            .sum();
        src.push(off as usize);
    }
    fx.take(data, &src, dims)
}

pub fn concat(fx: &mut Fx<'_>, ins: &[&Const], axis: i64) -> Result<Const, OnnxError> {
    let first = ins.first().ok_or_else(|| fx.err("no inputs"))?;
    let rank = first.dims.len();
    let axis = fx.axis(axis, rank)?;
    let is_int = first.syms().is_some();
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for c in ins {
        if c.syms().is_some() != is_int {
            return Err(fx.err("inputs mix integer and float tensors"));
        }
        let same =
            c.dims.len() == rank && (0..rank).all(|i| i == axis || c.dims[i] == first.dims[i]);
        if !same {
            return Err(fx.err(format!(
                "shapes {} and {} differ",
                brief(&first.dims),
                brief(&c.dims)
            )));
        }
        dims[axis] += c.dims[axis];
    }
    fx.alloc(&dims, first.elem_bytes())?;
    let outer: usize = first.dims[..axis].iter().product();
    let data = if is_int {
        let mut v = Vec::new();
        for o in 0..outer {
            for c in ins {
                let chunk: usize = c.dims[axis..].iter().product();
                v.extend_from_slice(&c.syms().unwrap_or(&[])[o * chunk..(o + 1) * chunk]);
            }
        }
        Data::Int(v)
    } else {
        let mut v = Vec::new();
        for o in 0..outer {
            for c in ins {
                let chunk: usize = c.dims[axis..].iter().product();
                if let Data::F32(d) = &c.data {
                    v.extend_from_slice(&d[o * chunk..(o + 1) * chunk]);
                }
            }
        }
        Data::F32(v)
    };
    Ok(Const { dims, data })
}

/// The dims after inserting size-1 axes at `axes` (normalised against the output rank).
pub fn unsqueeze_dims(fx: &Fx<'_>, dims: &[usize], axes: &[i64]) -> Result<Vec<usize>, OnnxError> {
    let out_rank = dims.len() + axes.len();
    let mut norm = Vec::new();
    for &a in axes {
        let a = fx.axis(a, out_rank)?;
        if norm.contains(&a) {
            return Err(fx.err(format!("axis {a} repeated")));
        }
        norm.push(a);
    }
    let mut rest = dims.iter();
    Ok((0..out_rank)
        .map(|i| {
            if norm.contains(&i) {
                1
            } else {
                rest.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

/// The dims after removing the size-1 axes `axes` (all size-1 axes when `None`).
pub fn squeeze_dims(
    fx: &Fx<'_>,
    dims: &[usize],
    axes: Option<&[i64]>,
) -> Result<Vec<usize>, OnnxError> {
    let rank = dims.len();
    let drop: Vec<usize> = match axes {
        Some(axes) => {
            let mut v = Vec::new();
            for &a in axes {
                let a = fx.axis(a, rank)?;
                if dims[a] != 1 {
                    return Err(fx.err(format!("dimension {a} has size {}, not 1", dims[a])));
                }
                v.push(a);
            }
            v
        }
        None => (0..rank).filter(|&i| dims[i] == 1).collect(),
    };
    Ok((0..rank)
        .filter(|i| !drop.contains(i))
        .map(|i| dims[i])
        .collect())
}

/// The same data with new dims (Unsqueeze, Squeeze, Reshape of a constant), charged first.
pub fn with_dims(fx: &mut Fx<'_>, c: &Const, dims: Vec<usize>) -> Result<Const, OnnxError> {
    fx.alloc(&c.dims, c.elem_bytes())?;
    Ok(Const {
        dims,
        data: c.data.clone(),
    })
}

/// Resolves an ONNX Reshape target against a fixed input shape.
pub fn reshape_dims(
    fx: &Fx<'_>,
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, OnnxError> {
    let numel: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        out.push(match t {
            -1 if infer.replace(i).is_none() => 1,
            0 if !allowzero => *input
                .get(i)
                .ok_or_else(|| fx.err(format!("target dim {i} copies a missing input dim")))?,
            t if t >= 0 => t as usize,
            _ => return Err(fx.err(format!("invalid target shape {}", brief(target)))),
        });
    }
    let known = out
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fx.err("target shape overflows"))?;
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(fx.err(format!(
                "cannot reshape {} to {}",
                brief(input),
                brief(target)
            )));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(fx.err(format!(
            "cannot reshape {} to {}",
            brief(input),
            brief(target)
        )));
    }
    Ok(out)
}
