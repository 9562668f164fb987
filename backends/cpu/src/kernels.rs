//! Kernel builders, one small named function per family. Each returns a [`Pending`] function
//! with the uniform ABI of [`crate::jit`] and the length contract of its arguments; shapes are
//! baked in as constants (a program is compiled for one batch size), `n` is the runtime count.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I8X16};
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use excite_ir::op::Pool;

use crate::conv::ConvShape;
use excite_ir::{Act, SeBlock};

use crate::emit::{self, act, arg_ptr, fconst, for_lanes, for_range, int, load, maybe_act, store};
use crate::jit::{ArgSpec, Jit, Pending, build_function};

/// Largest count any kernel accepts (keeps `n * 4` byte offsets far from overflow).
const MAX_N: usize = 1 << 40;

/// A binary elementwise operation on equal-length operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// `y[i] = act(x[i])` over `n` elements. Args: `x (n)`, `y (n)`.
pub fn unary(jit: &Jit, a: Option<Act>) -> Pending {
    let name = format!("unary_{}", a.map_or("copy", |a| a.name()));
    let args = vec![ArgSpec::input(0, 1), ArgSpec::output(0, 1)];
    build_function(jit, &name, args, MAX_N, |b, p, n| {
        let x = arg_ptr(b, p, 0);
        let y = arg_ptr(b, p, 1);
        for_lanes(b, n, |b, i, ty| {
            let v = load(b, ty, x, i);
            let v = maybe_act(b, ty, a, v);
            store(b, v, y, i);
        });
        b.ins().return_(&[]);
    })
}

/// `y[i] = a[i] op b[i]` over `n` elements. Args: `a (n)`, `b (n)`, `y (n)`.
pub fn binary(jit: &Jit, op: BinOp) -> Pending {
    let name = format!("binary_{op:?}").to_lowercase();
    let args = vec![
        ArgSpec::input(0, 1),
        ArgSpec::input(0, 1),
        ArgSpec::output(0, 1),
    ];
    build_function(jit, &name, args, MAX_N, |b, p, n| {
        let pa = arg_ptr(b, p, 0);
        let pb = arg_ptr(b, p, 1);
        let y = arg_ptr(b, p, 2);
        for_lanes(b, n, |b, i, ty| {
            let u = load(b, ty, pa, i);
            let v = load(b, ty, pb, i);
            let r = match op {
                BinOp::Add => b.ins().fadd(u, v),
                BinOp::Sub => b.ins().fsub(u, v),
                BinOp::Mul => b.ins().fmul(u, v),
                BinOp::Div => b.ins().fdiv(u, v),
            };
            store(b, r, y, i);
        });
        b.ins().return_(&[]);
    })
}

/// The pointwise tail of a convolution, in place over `n` channel planes of `hw` elements:
/// `y = post_act(act(y + bias[c]) * gate[c] + r)`, and with `means` each finished plane's mean
/// (the SE squeeze, computed while the plane is in L1). `gate` is an SE block's excitation,
/// computed before the convolution by [`se_gate`]. Args: `y (hw*n)`, `bias (n, or 0 when
/// absent)`, `r (hw*n, or 0 when absent)`, `means (n, or 0 when absent)`, `gate (n, or 0 when
/// absent)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epilogue {
    pub bias: bool,
    pub act: Option<Act>,
    pub gate: bool,
    pub residual: bool,
    pub post_act: Option<Act>,
    pub means: bool,
}

pub fn epilogue(jit: &Jit, hw: usize, e: Epilogue) -> Pending {
    let name = format!(
        "epilogue_hw{hw}{}{}{}{}{}{}",
        if e.bias { "_bias" } else { "" },
        e.act.map_or(String::new(), |a| format!("_{}", a.name())),
        if e.gate { "_gate" } else { "" },
        if e.residual { "_add" } else { "" },
        e.post_act
            .map_or(String::new(), |a| format!("_{}", a.name())),
        if e.means { "_means" } else { "" },
    );
    let args = vec![
        ArgSpec::output(0, hw),
        ArgSpec::input(0, usize::from(e.bias)),
        ArgSpec::input(0, if e.residual { hw } else { 0 }),
        ArgSpec::output(0, usize::from(e.means)),
        ArgSpec::input(0, usize::from(e.gate)),
    ];
    build_function(jit, &name, args, MAX_N / hw.max(1), |b, p, n| {
        let y = arg_ptr(b, p, 0);
        let bias = arg_ptr(b, p, 1);
        let r = arg_ptr(b, p, 2);
        let means = arg_ptr(b, p, 3);
        let gate = arg_ptr(b, p, 4);
        let zero = int(b, 0);
        let inv = fconst(b, F32, 1.0 / hw.max(1) as f32);
        for_range(b, (zero, n, 1), |b, c| {
            let off = b.ins().imul_imm_s(c, hw as i64);
            let yc = emit::elem(b, y, off);
            let rc = emit::elem(b, r, off);
            let bc = e.bias.then(|| load(b, F32, bias, c));
            let gc = e.gate.then(|| {
                let g = load(b, F32, gate, c);
                (g, b.ins().splat(F32X4, g))
            });
            let len = int(b, hw);
            for_lanes(b, len, |b, i, ty| {
                let mut v = load(b, ty, yc, i);
                if let Some(bc) = bc {
                    let bv = if ty == F32X4 {
                        b.ins().splat(F32X4, bc)
                    } else {
                        bc
                    };
                    v = b.ins().fadd(v, bv);
                }
                v = maybe_act(b, ty, e.act, v);
                if let Some((g, gv)) = gc {
                    v = b.ins().fmul(v, if ty == F32X4 { gv } else { g });
                }
                if e.residual {
                    let rv = load(b, ty, rc, i);
                    v = b.ins().fadd(v, rv);
                }
                v = maybe_act(b, ty, e.post_act, v);
                store(b, v, yc, i);
            });
            if e.means {
                let len = int(b, hw);
                let sum = emit::sum(b, yc, len);
                let m = b.ins().fmul(sum, inv);
                store(b, m, means, c);
            }
        });
        b.ins().return_(&[]);
    })
}

/// Mean of each of `n` planes of `hw` elements. Args: `x (hw*n)`, `y (n)`.
pub fn mean_planes(jit: &Jit, hw: usize) -> Pending {
    let args = vec![ArgSpec::input(0, hw), ArgSpec::output(0, 1)];
    build_function(
        jit,
        &format!("mean_hw{hw}"),
        args,
        MAX_N / hw.max(1),
        |b, p, n| {
            let x = arg_ptr(b, p, 0);
            let y = arg_ptr(b, p, 1);
            let zero = int(b, 0);
            let inv = fconst(b, F32, 1.0 / hw as f32);
            for_range(b, (zero, n, 1), |b, c| {
                let off = b.ins().imul_imm_s(c, hw as i64);
                let xc = emit::elem(b, x, off);
                let len = int(b, hw);
                let s = emit::sum(b, xc, len);
                let m = b.ins().fmul(s, inv);
                store(b, m, y, c);
            });
            b.ins().return_(&[]);
        },
    )
}

/// Shapes of a [`SeBlock`] kernel: channels, reduced channels, plane size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeShape {
    pub c: usize,
    pub cr: usize,
    pub hw: usize,
}

/// A whole SE block over `n` images in one function: per image, channel means (`s`, C values),
/// `z = act(W1 s + b1)` (Cr values), then per channel `g = gate(W2[c] z + b2[c])` and
/// `y = post_act(x * g + r)` in one pass over the plane. The only scratch is `s ++ z`.
/// Args: `x (chw*n)`, `w1 (cr*c)`, `b1 (cr or 0)`, `w2 (c*cr)`, `b2 (c or 0)`,
/// `r (chw*n or 0)`, `y (chw*n)`, `scratch (cr + c)`: `z`, then `s`.
///
/// With `pre_squeezed` the producing convolution's epilogue already computed the means: the
/// kernel skips the squeeze and reads image `i`'s means at `scratch[cr + i*c..]`
/// (`scratch (cr + c*n)`).
pub fn se_block(jit: &Jit, sh: SeShape, se: &SeBlock, pre_squeezed: bool) -> Pending {
    let SeShape { c, cr, hw } = sh;
    let chw = c * hw;
    let name = format!(
        "se_block_c{c}_r{cr}_hw{hw}_{}_{}{}{}{}",
        se.act.name(),
        se.gate.name(),
        if se.residual { "_add" } else { "" },
        se.post_act
            .map_or(String::new(), |a| format!("_{}", a.name())),
        if pre_squeezed { "_presq" } else { "" },
    );
    let args = vec![
        ArgSpec::input(0, chw),
        ArgSpec::input(c * cr, 0),
        ArgSpec::input(if se.bias1 { cr } else { 0 }, 0),
        ArgSpec::input(c * cr, 0),
        ArgSpec::input(if se.bias2 { c } else { 0 }, 0),
        ArgSpec::input(0, if se.residual { chw } else { 0 }),
        ArgSpec::output(0, chw),
        if pre_squeezed {
            ArgSpec::output(cr, c)
        } else {
            ArgSpec::output(cr + c, 0)
        },
    ];
    let se = se.clone();
    build_function(jit, &name, args, MAX_N / chw.max(1), move |b, p, n| {
        let ptrs: Vec<Value> = (0..8).map(|i| arg_ptr(b, p, i)).collect();
        let (x0, w1, b1, w2, b2, r0, y0, s) = (
            ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7],
        );
        let zero = int(b, 0);
        let z = s;
        let crv = int(b, cr);
        let s0 = emit::elem(b, z, crv);
        for_range(b, (zero, n, 1), |b, img| {
            let off = b.ins().imul_imm_s(img, chw as i64);
            let x = emit::elem(b, x0, off);
            let r = emit::elem(b, r0, off);
            let y = emit::elem(b, y0, off);
            let s = if pre_squeezed {
                let soff = b.ins().imul_imm_s(img, c as i64);
                emit::elem(b, s0, soff)
            } else {
                se_squeeze(b, x, s0, c, hw);
                s0
            };
            let crv = int(b, cr);
            se_excite(b, (w1, b1, s, z), (c, crv), se.bias1, Some(se.act));
            let cv = int(b, c);
            se_scale(b, (x, r, y), (w2, b2, z), (sh, cv), &se);
        });
        b.ins().return_(&[]);
    })
}

/// The excitation of an SE block whose input is a linear 1x1 convolution `u = W3 x + b3`,
/// computed from the convolution's *input*: the squeeze commutes with the convolution,
/// `mean(u) = W3 mean(x) + b3`, and so does the SE block's first FC, so
/// `z = act(W1 mean(u) + b1) = act(W13 mean(x) + b13)` with `W13 = W1 W3` (`cr × c_in`) and
/// `b13 = W1 b3 + b1` folded at compile time. The gates are then known before the
/// convolution runs and its epilogue applies them (`Epilogue::gate`) while each output plane
/// is in cache, instead of a separate pass over the SE block's input. Per image:
/// `s = mean(x)` (`c_in` values), `z = act(W13 s + b13)`, `g = gate(W2 z + b2)`.
/// Args: `x (c_in*hw*n)`, `w13 (cr*c_in)`, `b13 (cr)`, `w2 (c*cr)`, `b2 (c or 0)`, `g (c*n)`,
/// `scratch (c_in + cr)`. With `pre_squeezed`, `x` is already the means (`c_in*n`, written by
/// the epilogue of the conv that produced the tensor).
pub fn se_gate(jit: &Jit, c_in: usize, sh: SeShape, se: &SeBlock, pre_squeezed: bool) -> Pending {
    let SeShape { c, cr, hw } = sh;
    let name = format!(
        "se_gate_ci{c_in}_c{c}_r{cr}_hw{hw}_{}_{}{}{}",
        se.act.name(),
        se.gate.name(),
        if se.bias2 { "_b2" } else { "" },
        if pre_squeezed { "_presq" } else { "" },
    );
    let x_per = if pre_squeezed { c_in } else { c_in * hw };
    let args = vec![
        ArgSpec::input(0, x_per),
        ArgSpec::input(cr * c_in, 0),
        ArgSpec::input(cr, 0),
        ArgSpec::input(c * cr, 0),
        ArgSpec::input(if se.bias2 { c } else { 0 }, 0),
        ArgSpec::output(0, c),
        ArgSpec::output(c_in + cr, 0),
    ];
    let se = se.clone();
    let max_n = MAX_N / (x_per + c).max(1);
    build_function(jit, &name, args, max_n, move |b, p, n| {
        let ptrs: Vec<Value> = (0..7).map(|i| arg_ptr(b, p, i)).collect();
        let (x0, w13, b13, w2, b2, g0, scr) = (
            ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6],
        );
        let s = scr;
        let at = int(b, c_in);
        let z = emit::elem(b, scr, at);
        let zero = int(b, 0);
        for_range(b, (zero, n, 1), |b, img| {
            let xoff = b.ins().imul_imm_s(img, x_per as i64);
            let x = emit::elem(b, x0, xoff);
            let goff = b.ins().imul_imm_s(img, c as i64);
            let g = emit::elem(b, g0, goff);
            let s = if pre_squeezed {
                x
            } else {
                se_squeeze(b, x, s, c_in, hw);
                s
            };
            let crv = int(b, cr);
            se_excite(b, (w13, b13, s, z), (c_in, crv), true, Some(se.act));
            let cv = int(b, c);
            se_excite(b, (w2, b2, z, g), (cr, cv), se.bias2, Some(se.gate));
        });
        b.ins().return_(&[]);
    })
}

/// One fully connected layer of an SE block over `n` output rows (a row range, so it can be
/// split across threads): `out[j] = act(W[j, :] · v + b[j])`, `W` row-major with `cols`
/// columns. Args: `v (cols)`, `w (cols*n)`, `b (n or 0)`, `out (n)`.
pub fn fc_rows(jit: &Jit, cols: usize, a: Option<Act>, bias: bool) -> Pending {
    let name = format!(
        "fc_rows_c{cols}{}{}",
        a.map_or(String::new(), |a| format!("_{}", a.name())),
        if bias { "_b" } else { "" }
    );
    let args = vec![
        ArgSpec::input(cols, 0),
        ArgSpec::input(0, cols),
        ArgSpec::input(0, usize::from(bias)),
        ArgSpec::output(0, 1),
    ];
    build_function(jit, &name, args, MAX_N / cols.max(1), move |b, p, n| {
        let ptrs: Vec<Value> = (0..4).map(|i| arg_ptr(b, p, i)).collect();
        se_excite(b, (ptrs[1], ptrs[2], ptrs[0], ptrs[3]), (cols, n), bias, a);
        b.ins().return_(&[]);
    })
}

/// The SE block's scale pass over `n` channels of one image (a channel range, so the pass can
/// be split across threads): per channel `g = gate(W2[c] z + b2[c])`, `y = post_act(x * g + r)`.
/// Args: `x (hw*n)`, `w2 (cr*n)`, `b2 (n or 0)`, `r (hw*n or 0)`, `y (hw*n)`, `z (cr)`.
pub fn se_scale_range(jit: &Jit, sh: SeShape, se: &SeBlock) -> Pending {
    let SeShape { cr, hw, .. } = sh;
    let name = format!(
        "se_scale_r{cr}_hw{hw}_{}{}{}{}",
        se.gate.name(),
        if se.bias2 { "_b" } else { "" },
        if se.residual { "_add" } else { "" },
        se.post_act
            .map_or(String::new(), |a| format!("_{}", a.name())),
    );
    let args = vec![
        ArgSpec::input(0, hw),
        ArgSpec::input(0, cr),
        ArgSpec::input(0, usize::from(se.bias2)),
        ArgSpec::input(0, if se.residual { hw } else { 0 }),
        ArgSpec::output(0, hw),
        ArgSpec::input(cr, 0),
    ];
    let se = se.clone();
    build_function(
        jit,
        &name,
        args,
        MAX_N / (hw + cr).max(1),
        move |b, p, n| {
            let ptrs: Vec<Value> = (0..6).map(|i| arg_ptr(b, p, i)).collect();
            let (x, w2, b2, r, y, z) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5]);
            se_scale(b, (x, r, y), (w2, b2, z), (sh, n), &se);
            b.ins().return_(&[]);
        },
    )
}

/// `s[ci] = mean(x[ci, :])`.
fn se_squeeze(b: &mut FunctionBuilder, x: Value, s: Value, c: usize, hw: usize) {
    let zero = int(b, 0);
    let cv = int(b, c);
    let inv = fconst(b, F32, 1.0 / hw as f32);
    for_range(b, (zero, cv, 1), |b, ci| {
        let off = b.ins().imul_imm_s(ci, hw as i64);
        let xc = emit::elem(b, x, off);
        let len = int(b, hw);
        let sum = emit::sum(b, xc, len);
        let m = b.ins().fmul(sum, inv);
        store(b, m, s, ci);
    });
}

/// `out[j] = act(W[j, :] · v + bias[j])` for `j < rows`, `W` row-major `rows × cols`.
fn se_excite(
    b: &mut FunctionBuilder,
    (w, bias, v, out): (Value, Value, Value, Value),
    (cols, rv): (usize, Value),
    has_bias: bool,
    a: Option<Act>,
) {
    let zero = int(b, 0);
    for_range(b, (zero, rv, 1), |b, j| {
        let off = b.ins().imul_imm_s(j, cols as i64);
        let wj = emit::elem(b, w, off);
        let len = int(b, cols);
        let mut d = emit::dot(b, wj, v, len);
        if has_bias {
            let bj = load(b, F32, bias, j);
            d = b.ins().fadd(d, bj);
        }
        let d = maybe_act(b, F32, a, d);
        store(b, d, out, j);
    });
}

/// Per channel `ci < cv`: the gate from `z`, then `y = post_act(x * g + r)` over the plane.
fn se_scale(
    b: &mut FunctionBuilder,
    (x, r, y): (Value, Value, Value),
    (w2, b2, z): (Value, Value, Value),
    (sh, cv): (SeShape, Value),
    se: &SeBlock,
) {
    let zero = int(b, 0);
    for_range(b, (zero, cv, 1), |b, ci| {
        let woff = b.ins().imul_imm_s(ci, sh.cr as i64);
        let wc = emit::elem(b, w2, woff);
        let len = int(b, sh.cr);
        let mut g = emit::dot(b, wc, z, len);
        if se.bias2 {
            let bc = load(b, F32, b2, ci);
            g = b.ins().fadd(g, bc);
        }
        let g = act(b, F32, se.gate, g);
        let gv = b.ins().splat(F32X4, g);
        let off = b.ins().imul_imm_s(ci, sh.hw as i64);
        let (xc, rc, yc) = (
            emit::elem(b, x, off),
            emit::elem(b, r, off),
            emit::elem(b, y, off),
        );
        let len = int(b, sh.hw);
        for_lanes(b, len, |b, i, ty| {
            let gg = if ty == F32X4 { gv } else { g };
            let mut v = load(b, ty, xc, i);
            v = b.ins().fmul(v, gg);
            if se.residual {
                let rv = load(b, ty, rc, i);
                v = b.ins().fadd(v, rv);
            }
            v = maybe_act(b, ty, se.post_act, v);
            store(b, v, yc, i);
        });
    });
}

/// What a [`strided`] kernel computes per output element from its operands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MapOp {
    /// `y = s · x` (a copy when `s` is 1): Expand, transposes, scaled copies.
    Scale(f32),
    /// `y = a op b`: broadcasting binary ops.
    Bin(BinOp),
    /// `y = (x - mean) · scale / sqrt(var + eps) + bias` with operands `x, scale, bias, mean,
    /// var` (inference-mode BatchNorm).
    BatchNorm(f32),
}

impl MapOp {
    fn arity(self) -> usize {
        match self {
            MapOp::Scale(_) => 1,
            MapOp::Bin(_) => 2,
            MapOp::BatchNorm(_) => 5,
        }
    }
    fn name(self) -> String {
        match self {
            MapOp::Scale(1.0) => "copy".into(),
            MapOp::Scale(s) => format!("scale{:08x}", s.to_bits()),
            MapOp::Bin(op) => format!("{op:?}").to_lowercase(),
            MapOp::BatchNorm(e) => format!("bn{:08x}", e.to_bits()),
        }
    }
}

/// Elements an operand read at `Σ idx_d · strides[d]` over `dims` spans (0 for an empty one).
pub fn strided_extent(dims: &[usize], strides: &[usize]) -> usize {
    if dims.contains(&0) {
        return 0;
    }
    1 + dims
        .iter()
        .zip(strides)
        .map(|(&d, &s)| (d - 1) * s)
        .sum::<usize>()
}

/// `y[i] = op(operands)` over an output of shape `dims` (row-major), operand `j` read at
/// `Σ_d idx_d · strides[j][d]` — a stride of 0 broadcasts that dimension, any permutation of
/// strides transposes. One call covers the whole tensor (`n` = 1). Args: the operands, `y`.
pub fn strided(jit: &Jit, op: MapOp, dims: &[usize], strides: &[Vec<usize>]) -> Pending {
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    let name = format!(
        "map_{}_d{}{}",
        op.name(),
        join(dims),
        strides
            .iter()
            .map(|s| format!("_s{}", join(s)))
            .collect::<String>()
    );
    let numel: usize = dims.iter().product();
    let mut args: Vec<ArgSpec> = strides
        .iter()
        .take(op.arity())
        .map(|s| ArgSpec::input(strided_extent(dims, s), 0))
        .collect();
    args.push(ArgSpec::output(numel, 0));
    let (dims, strides) = (dims.to_vec(), strides.to_vec());
    build_function(jit, &name, args, 1, move |b, p, _n| {
        let arity = op.arity().min(strides.len());
        let ins: Vec<Value> = (0..arity).map(|j| arg_ptr(b, p, j)).collect();
        let y = arg_ptr(b, p, arity);
        let zero = int(b, 0);
        let leaf = &mut |b: &mut FunctionBuilder, offs: &[Value], o: Value| {
            let v: Vec<Value> = ins
                .iter()
                .zip(offs)
                .map(|(&base, &off)| load(b, F32, base, off))
                .collect();
            let r = match (op, v.as_slice()) {
                (MapOp::Scale(1.0), [x, ..]) => *x,
                (MapOp::Scale(s), [x, ..]) => {
                    let s = fconst(b, F32, s);
                    b.ins().fmul(*x, s)
                }
                (MapOp::Bin(bop), [u, w, ..]) => match bop {
                    BinOp::Add => b.ins().fadd(*u, *w),
                    BinOp::Sub => b.ins().fsub(*u, *w),
                    BinOp::Mul => b.ins().fmul(*u, *w),
                    BinOp::Div => b.ins().fdiv(*u, *w),
                },
                (MapOp::BatchNorm(eps), [x, scale, bias, mean, var, ..]) => {
                    let e = fconst(b, F32, eps);
                    let ve = b.ins().fadd(*var, e);
                    let sd = b.ins().sqrt(ve);
                    let d = b.ins().fsub(*x, *mean);
                    let t = b.ins().fmul(d, *scale);
                    let t = b.ins().fdiv(t, sd);
                    b.ins().fadd(t, *bias)
                }
                // Fewer operands than the op needs: refused by the arity check of the caller.
                _ => fconst(b, F32, 0.0),
            };
            store(b, r, y, o);
        };
        let offs = vec![zero; arity];
        nest(b, (&dims, &strides[..arity]), 0, (offs, zero), leaf);
        b.ins().return_(&[]);
    })
}

/// Loop nest over `dims[d..]`: each level advances every operand's offset by its stride and
/// the (row-major, contiguous) output offset; `leaf` gets the offsets at the innermost level.
type Leaf<'a> = dyn FnMut(&mut FunctionBuilder, &[Value], Value) + 'a;

fn nest(
    b: &mut FunctionBuilder,
    (dims, strides): (&[usize], &[Vec<usize>]),
    d: usize,
    (offs, o): (Vec<Value>, Value),
    leaf: &mut Leaf<'_>,
) {
    if d == dims.len() {
        leaf(b, &offs, o);
        return;
    }
    let inner: usize = dims[d + 1..].iter().product();
    let (zero, end) = (int(b, 0), int(b, dims[d]));
    for_range(b, (zero, end, 1), |b, i| {
        let next: Vec<Value> = offs
            .iter()
            .zip(strides)
            .map(|(&off, s)| match s.get(d).copied().unwrap_or(0) {
                0 => off,
                st => {
                    let t = b.ins().imul_imm_s(i, st as i64);
                    b.ins().iadd(off, t)
                }
            })
            .collect();
        let t = b.ins().imul_imm_s(i, inner as i64);
        let o2 = b.ins().iadd(o, t);
        nest(b, (dims, strides), d + 1, (next, o2), leaf);
    });
}

/// Softmax along one axis of a tensor seen as `[outer, len, inner]`:
/// `y = exp(x - max) / Σ exp(x - max)` per `(outer, inner)` slice. Args: `x`, `y` (both
/// `outer·len·inner`).
pub fn softmax(jit: &Jit, outer: usize, len: usize, inner: usize) -> Pending {
    let total = outer * len * inner;
    let args = vec![ArgSpec::input(total, 0), ArgSpec::output(total, 0)];
    let name = format!("softmax_{outer}x{len}x{inner}");
    build_function(jit, &name, args, 1, move |b, p, _n| {
        let x = arg_ptr(b, p, 0);
        let y = arg_ptr(b, p, 1);
        let zero = int(b, 0);
        let (outer_v, inner_v, len_v) = (int(b, outer), int(b, inner), int(b, len));
        for_range(b, (zero, outer_v, 1), |b, o| {
            for_range(b, (zero, inner_v, 1), |b, i| {
                let base = b.ins().imul_imm_s(o, (len * inner) as i64);
                let base = b.ins().iadd(base, i);
                let at = |b: &mut FunctionBuilder, k: Value| {
                    let t = b.ins().imul_imm_s(k, inner as i64);
                    b.ins().iadd(base, t)
                };
                let lowest = fconst(b, F32, f32::NEG_INFINITY);
                let (_, m) = emit::for_acc(b, (zero, len_v, 1), &[lowest], |b, k, acc| {
                    let idx = at(b, k);
                    let v = load(b, F32, x, idx);
                    vec![b.ins().fmax(acc[0], v)]
                });
                let zf = fconst(b, F32, 0.0);
                let (_, s) = emit::for_acc(b, (zero, len_v, 1), &[zf], |b, k, acc| {
                    let idx = at(b, k);
                    let v = load(b, F32, x, idx);
                    let d = b.ins().fsub(v, m[0]);
                    let e = emit::exp(b, F32, d);
                    store(b, e, y, idx);
                    vec![b.ins().fadd(acc[0], e)]
                });
                let one = fconst(b, F32, 1.0);
                let inv = b.ins().fdiv(one, s[0]);
                for_range(b, (zero, len_v, 1), |b, k| {
                    let idx = at(b, k);
                    let v = load(b, F32, y, idx);
                    let v = b.ins().fmul(v, inv);
                    store(b, v, y, idx);
                });
            });
        });
        b.ins().return_(&[]);
    })
}

/// Mean over some axes: the output (row-major, contiguous) walks the kept dimensions `kept`
/// (`(size, input stride)`), and each output element sums the input over the reduced
/// dimensions `reduced` (`(size, input stride)`), then scales by `1 / count`. Args: `x`
/// (`x_len`), `y`.
pub fn reduce_mean(
    jit: &Jit,
    x_len: usize,
    kept: &[(usize, usize)],
    reduced: &[(usize, usize)],
) -> Pending {
    let fmt = |v: &[(usize, usize)]| {
        v.iter()
            .map(|(d, s)| format!("{d}s{s}"))
            .collect::<Vec<_>>()
            .join("_")
    };
    let name = format!("reduce_mean_k{}_r{}", fmt(kept), fmt(reduced));
    let numel: usize = kept.iter().map(|k| k.0).product();
    let count: usize = reduced.iter().map(|r| r.0).product();
    let args = vec![ArgSpec::input(x_len, 0), ArgSpec::output(numel, 0)];
    let (kd, ks): (Vec<usize>, Vec<usize>) = kept.iter().copied().unzip();
    let (rd, rs): (Vec<usize>, Vec<usize>) = reduced.iter().copied().unzip();
    build_function(jit, &name, args, 1, move |b, p, _n| {
        let x = arg_ptr(b, p, 0);
        let y = arg_ptr(b, p, 1);
        let zero = int(b, 0);
        let inv = fconst(b, F32, 1.0 / count.max(1) as f32);
        let outer = &mut |b: &mut FunctionBuilder, offs: &[Value], o: Value| {
            let zf = fconst(b, F32, 0.0);
            store(b, zf, y, o);
            let sum = &mut |b: &mut FunctionBuilder, xo: &[Value], _: Value| {
                let v = load(b, F32, x, xo[0]);
                let acc = load(b, F32, y, o);
                let acc = b.ins().fadd(acc, v);
                store(b, acc, y, o);
            };
            nest(
                b,
                (&rd, std::slice::from_ref(&rs)),
                0,
                (vec![offs[0]], zero),
                sum,
            );
            let acc = load(b, F32, y, o);
            let m = b.ins().fmul(acc, inv);
            store(b, m, y, o);
        };
        nest(
            b,
            (&kd, std::slice::from_ref(&ks)),
            0,
            (vec![zero], zero),
            outer,
        );
        b.ins().return_(&[]);
    })
}

/// `a` replaced by `b` where `b > a` (NaN in `b` never wins: the interpreter's max).
fn max_keep(b: &mut FunctionBuilder, ty: Type, a: Value, v: Value) -> Value {
    let gt = b.ins().fcmp(FloatCC::GreaterThan, v, a);
    if ty == F32X4 {
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        let m = b.ins().bitcast(F32X4, flags, gt);
        b.ins().bitselect(m, v, a)
    } else {
        b.ins().select(gt, v, a)
    }
}

/// Row length (padded columns) of a pool's row buffer: the furthest padded column any output
/// reads, plus one, at least the input row with its left pad, rounded up to 8.
fn pool_row(p: &Pool, w: usize, ow: usize) -> usize {
    let far =
        ow.saturating_sub(1) * p.strides[1] + (p.kernel[1].saturating_sub(1)) * p.dilations[1];
    (far + 1).max(p.pads[1] + w).next_multiple_of(8)
}

/// Scratch a [`pool`] call needs: the row buffer, and for stride-2 columns its even and odd
/// halves.
pub fn pool_row_len(p: &Pool, w: usize, ow: usize) -> usize {
    2 * pool_row(p, w, ow)
}

/// Max or average pooling over `n` planes of `h × w` into `oh × ow`, every ONNX attribute
/// (kernel, strides, asymmetric pads, dilations, ceil mode, `count_include_pad`) matching
/// `excite_ir::interp`: per output row the window's input rows are combined into a row buffer
/// padded with the identity (`f32::MIN` for max, 0 for average) — contiguous `f32x4` work —
/// then each output reduces its window's columns of that buffer — `f32x4` loads at stride 1,
/// and at stride 2 over the buffer's even and odd columns (split with lane shuffles), scalar
/// otherwise. The average's divisor is separable: `rdiv[oy] · cdiv[ox]`, the reciprocals of
/// each axis's counted taps (0 for an empty window), computed at compile time. Args:
/// `x (h*w*n)`, `rdiv (oh, or 0 for max)`, `cdiv (ow, or 0 for max)`, `y (oh*ow*n)`,
/// `row (pool_row_len)`.
pub fn pool(
    jit: &Jit,
    max: bool,
    p: &Pool,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
) -> Pending {
    let name = format!(
        "{}pool_{h}x{w}_to_{oh}x{ow}_k{}x{}_s{}x{}_p{}_{}_{}_{}_d{}x{}",
        if max { "max" } else { "avg" },
        p.kernel[0],
        p.kernel[1],
        p.strides[0],
        p.strides[1],
        p.pads[0],
        p.pads[1],
        p.pads[2],
        p.pads[3],
        p.dilations[0],
        p.dilations[1],
    );
    let row_len = pool_row(p, w, ow);
    let divs = if max { 0 } else { 1 };
    let args = vec![
        ArgSpec::input(0, h * w),
        ArgSpec::input(divs * oh, 0),
        ArgSpec::input(divs * ow, 0),
        ArgSpec::output(0, oh * ow),
        ArgSpec::output(2 * row_len, 0),
    ];
    let p = p.clone();
    build_function(
        jit,
        &name,
        args,
        MAX_N / (h * w + oh * ow).max(1),
        move |b, ptrs, n| {
            let x0 = arg_ptr(b, ptrs, 0);
            let rdiv = arg_ptr(b, ptrs, 1);
            let cdiv = arg_ptr(b, ptrs, 2);
            let y0 = arg_ptr(b, ptrs, 3);
            let t = arg_ptr(b, ptrs, 4);
            let ident = if max { f32::MIN } else { 0.0 };
            let zero = int(b, 0);
            // The whole row buffer starts as the identity; rows only ever write its interior.
            let len = int(b, row_len);
            for_lanes(b, len, |b, i, ty| {
                let v = fconst(b, ty, ident);
                store(b, v, t, i);
            });
            let px = int(b, p.pads[1]);
            let inner = emit::elem(b, t, px);
            let (wv, hv) = (int(b, w), int(b, h));
            let combine = |b: &mut FunctionBuilder, ty: Type, a: Value, v: Value| {
                if max {
                    max_keep(b, ty, a, v)
                } else {
                    b.ins().fadd(a, v)
                }
            };
            for_range(b, (zero, n, 1), |b, img| {
                let xoff = b.ins().imul_imm_s(img, (h * w) as i64);
                let x = emit::elem(b, x0, xoff);
                let yoff = b.ins().imul_imm_s(img, (oh * ow) as i64);
                let y = emit::elem(b, y0, yoff);
                let ohv = int(b, oh);
                for_range(b, (zero, ohv, 1), |b, oy| {
                    // Row stage: interior = identity, then combine every input row inside.
                    for_lanes(b, wv, |b, i, ty| {
                        let v = fconst(b, ty, ident);
                        store(b, v, inner, i);
                    });
                    for ky in 0..p.kernel[0] {
                        let tap = (p.strides[0], ky * p.dilations[0], p.pads[0]);
                        let (iy, ok) = emit::tap_row(b, oy, tap, hv);
                        emit::if_else(
                            b,
                            ok,
                            |b| {
                                let roff = b.ins().imul_imm_s(iy, w as i64);
                                let row = emit::elem(b, x, roff);
                                for_lanes(b, wv, |b, i, ty| {
                                    let a = load(b, ty, inner, i);
                                    let v = load(b, ty, row, i);
                                    let r = combine(b, ty, a, v);
                                    store(b, r, inner, i);
                                });
                            },
                            |_| {},
                        );
                    }
                    // Column stage: output ox reduces padded columns ox * sx + kx * dx.
                    let owv = int(b, ow);
                    let rd = if max {
                        None
                    } else {
                        Some(load(b, F32, rdiv, oy))
                    };
                    let orow = b.ins().imul_imm_s(oy, ow as i64);
                    let yrow = emit::elem(b, y, orow);
                    let (sx, dx) = (p.strides[1], p.dilations[1]);
                    // Where tap kx of output ox lives: (buffer, offset) with the load at ox + offset.
                    let taps: Vec<(Value, usize)> = match sx {
                        1 => (0..p.kernel[1]).map(|kx| (t, kx * dx)).collect(),
                        2 => {
                            // Split the row buffer into even (e) and odd (o) columns.
                            let half = row_len / 2;
                            let at = int(b, row_len);
                            let e = emit::elem(b, t, at);
                            let at = int(b, row_len + half);
                            let o = emit::elem(b, t, at);
                            let chunks = int(b, row_len / 8);
                            let flags = MemFlagsData::new().with_endianness(Endianness::Little);
                            let (me, mo) = (lane_mask(b, [0, 2, 4, 6]), lane_mask(b, [1, 3, 5, 7]));
                            for_range(b, (zero, chunks, 1), |b, i| {
                                let i8 = b.ins().imul_imm_s(i, 8);
                                let lo = load(b, F32X4, t, i8);
                                let i84 = b.ins().iadd_imm_s(i8, 4);
                                let hi = load(b, F32X4, t, i84);
                                let lo = b.ins().bitcast(I8X16, flags, lo);
                                let hi = b.ins().bitcast(I8X16, flags, hi);
                                let ev = b.ins().shuffle(lo, hi, me);
                                let od = b.ins().shuffle(lo, hi, mo);
                                let ev = b.ins().bitcast(F32X4, flags, ev);
                                let od = b.ins().bitcast(F32X4, flags, od);
                                let i4 = b.ins().imul_imm_s(i, 4);
                                store(b, ev, e, i4);
                                store(b, od, o, i4);
                            });
                            (0..p.kernel[1])
                                .map(|kx| {
                                    let q = kx * dx;
                                    (if q % 2 == 0 { e } else { o }, q / 2)
                                })
                                .collect()
                        }
                        _ => Vec::new(),
                    };
                    if taps.is_empty() {
                        for_range(b, (zero, owv, 1), |b, ox| {
                            let q0 = b.ins().imul_imm_s(ox, sx as i64);
                            let mut acc = fconst(b, F32, ident);
                            for kx in 0..p.kernel[1] {
                                let q = b.ins().iadd_imm_s(q0, (kx * dx) as i64);
                                let v = load(b, F32, t, q);
                                acc = combine(b, F32, acc, v);
                            }
                            if let Some(rd) = rd {
                                let cd = load(b, F32, cdiv, ox);
                                let d = b.ins().fmul(rd, cd);
                                acc = b.ins().fmul(acc, d);
                            }
                            store(b, acc, yrow, ox);
                        });
                    } else {
                        for_lanes(b, owv, |b, ox, ty| {
                            let mut acc = fconst(b, ty, ident);
                            for &(buf, off) in &taps {
                                let q = b.ins().iadd_imm_s(ox, off as i64);
                                let v = load(b, ty, buf, q);
                                acc = combine(b, ty, acc, v);
                            }
                            if let Some(rd) = rd {
                                let cd = load(b, ty, cdiv, ox);
                                let r = if ty == F32X4 {
                                    b.ins().splat(F32X4, rd)
                                } else {
                                    rd
                                };
                                let d = b.ins().fmul(r, cd);
                                acc = b.ins().fmul(acc, d);
                            }
                            store(b, acc, yrow, ox);
                        });
                    }
                });
            });
            b.ins().return_(&[]);
        },
    )
}

/// Reciprocals of an average pool's divisor along one axis, per output index: the taps inside
/// the input, or inside input plus pads with `count_include_pad` (0 for an empty window), as
/// `excite_ir::interp` counts them.
pub fn pool_divisors(p: &Pool, axis: usize, size: usize, outs: usize) -> Vec<f32> {
    let (stride, dil) = (p.strides[axis], p.dilations[axis]);
    let (pb, pe) = (p.pads[axis], p.pads[axis + 2]);
    (0..outs)
        .map(|o| {
            let (mut inside, mut padded) = (0usize, 0usize);
            for k in 0..p.kernel[axis] {
                let at = o * stride + k * dil;
                inside += usize::from(at >= pb && at - pb < size);
                padded += usize::from(at < pb + size + pe);
            }
            let d = if p.count_include_pad { padded } else { inside };
            if d == 0 { 0.0 } else { 1.0 / d as f32 }
        })
        .collect()
}

/// Scratch an [`im2col`] call needs: the input rows split into column phases (none for 1x1
/// kernels, which gather straight into their row).
pub fn im2col_scratch(s: &ConvShape) -> usize {
    if s.kh * s.kw == 1 {
        0
    } else {
        s.h * im2col_row_len(s)
    }
}

fn im2col_phase_len(s: &ConvShape) -> usize {
    let (sx, dx) = (s.attrs.strides[1].max(1), s.attrs.dilations[1]);
    s.ow + (s.kw.saturating_sub(1) * dx) / sx
}

/// The column phases (`x mod stride`) the kernel's taps read, each split out of the input rows
/// once: at most `kW` of them, however large the stride.
fn im2col_phases(s: &ConvShape) -> Vec<usize> {
    let (sx, dx) = (s.attrs.strides[1].max(1), s.attrs.dilations[1]);
    let mut phases: Vec<usize> = (0..s.kw).map(|kx| (kx * dx) % sx).collect();
    phases.sort_unstable();
    phases.dedup();
    phases
}

fn im2col_row_len(s: &ConvShape) -> usize {
    im2col_phases(s).len() * im2col_phase_len(s)
}

/// `dst[a] = line[sx·a + b - px]` for `a < len` (0 outside `0..w`): the bounds of the gathered
/// run are compile-time constants, the run itself a loop (f32x4 copies when `sx` is 1).
fn gather(
    b: &mut FunctionBuilder,
    (line, dst): (Value, Value),
    (sx, phase, px, w, len): (usize, usize, usize, usize, usize),
) {
    let a_lo = px.saturating_sub(phase).div_ceil(sx).min(len);
    let a_hi = if w + px > phase {
        (w + px - phase).div_ceil(sx).clamp(a_lo, len)
    } else {
        a_lo
    };
    let zero = int(b, 0);
    let lo = int(b, a_lo);
    let hi = int(b, a_hi);
    let end = int(b, len);
    let fill = |b: &mut FunctionBuilder, from: Value, to: Value| {
        for_range(b, (from, to, 1), |b, a| {
            let z = fconst(b, F32, 0.0);
            store(b, z, dst, a);
        });
    };
    fill(b, zero, lo);
    fill(b, hi, end);
    if a_hi > a_lo {
        // x index of a: sx·a + phase - px, never negative inside the run.
        let first = sx * a_lo + phase - px;
        if sx == 1 {
            let src = {
                let f = int(b, first);
                emit::elem(b, line, f)
            };
            let d0 = emit::elem(b, dst, lo);
            let n = int(b, a_hi - a_lo);
            for_lanes(b, n, |b, i, ty| {
                let v = load(b, ty, src, i);
                store(b, v, d0, i);
            });
        } else {
            for_range(b, (lo, hi, 1), |b, a| {
                let ix = b.ins().imul_imm_s(a, sx as i64);
                let ix = b.ins().iadd_imm_s(ix, phase as i64 - px as i64);
                let v = load(b, F32, line, ix);
                store(b, v, dst, a);
            });
        }
    }
}

/// One input row split by column phase: `dst[slot * len + a] = line[sx·a + phases[slot] - px]`
/// (0 outside `0..w`), the layout [`im2col`] and [`tap_split`] share.
fn split_row(
    b: &mut FunctionBuilder,
    (line, dst): (Value, Value),
    phases: &[usize],
    (sx, px, w, len): (usize, usize, usize, usize),
) {
    for (slot, &phase) in phases.iter().enumerate() {
        let at = int(b, slot * len);
        let d = emit::elem(b, dst, at);
        gather(b, (line, d), (sx, phase, px, w, len));
    }
}

/// im2col of `n` input channels of one group: `col[(ci, ky, kx)][(oy, ox)] = x[ci, iy, ix]` (0
/// in the padding). Each input row is first split by column phase — phase `b` holds padded
/// columns `stride·a + b` — so every tap of any stride is then a contiguous `f32x4` copy of
/// one output row; 1x1 kernels gather straight into their row. All bounds are compile-time
/// constants. Args: `x (h*w*n)`, `col (kh*kw*oh*ow*n)`, `scratch (im2col_scratch)`.
pub fn im2col(jit: &Jit, s: &ConvShape) -> Pending {
    let a = s.attrs.clone();
    let name = format!("im2col_{}", s.key());
    let (hw, taps, ohw) = (s.h * s.w, s.kh * s.kw, s.oh * s.ow);
    let args = vec![
        ArgSpec::input(0, hw),
        ArgSpec::output(0, taps * ohw),
        ArgSpec::output(im2col_scratch(s), 0),
    ];
    let s = s.clone();
    build_function(
        jit,
        &name,
        args,
        MAX_N / (hw + taps * ohw).max(1),
        move |b, p, n| {
            let x0 = arg_ptr(b, p, 0);
            let col0 = arg_ptr(b, p, 1);
            let split = arg_ptr(b, p, 2);
            let (sy, sx) = (a.strides[0], a.strides[1].max(1));
            let (dy, dx) = (a.dilations[0], a.dilations[1]);
            let (py, px) = (a.pads[0], a.pads[1]);
            let (len, row_len) = (im2col_phase_len(&s), im2col_row_len(&s));
            let phases = im2col_phases(&s);
            let zero = int(b, 0);
            let hv = int(b, s.h);
            let ohv = int(b, s.oh);
            // Zero-fills one output row of `ow` floats at `dst`.
            let zero_row = |b: &mut FunctionBuilder, dst: Value| {
                let owv = int(b, s.ow);
                for_lanes(b, owv, |b, i, ty| {
                    let z = fconst(b, ty, 0.0);
                    store(b, z, dst, i);
                });
            };
            for_range(b, (zero, n, 1), |b, ci| {
                let xoff = b.ins().imul_imm_s(ci, hw as i64);
                let x = emit::elem(b, x0, xoff);
                let coff = b.ins().imul_imm_s(ci, (taps * ohw) as i64);
                let col = emit::elem(b, col0, coff);
                if taps == 1 {
                    for_range(b, (zero, ohv, 1), |b, oy| {
                        let (iy, ok) = emit::tap_row(b, oy, (sy, 0, py), hv);
                        let doff = b.ins().imul_imm_s(oy, s.ow as i64);
                        let dst = emit::elem(b, col, doff);
                        emit::if_else(
                            b,
                            ok,
                            |b| {
                                let loff = b.ins().imul_imm_s(iy, s.w as i64);
                                let line = emit::elem(b, x, loff);
                                gather(b, (line, dst), (sx, 0, px, s.w, s.ow));
                            },
                            |b| zero_row(b, dst),
                        );
                    });
                    return;
                }
                let hv2 = int(b, s.h);
                for_range(b, (zero, hv2, 1), |b, iy| {
                    let loff = b.ins().imul_imm_s(iy, s.w as i64);
                    let line = emit::elem(b, x, loff);
                    let soff = b.ins().imul_imm_s(iy, row_len as i64);
                    let srow = emit::elem(b, split, soff);
                    split_row(b, (line, srow), &phases, (sx, px, s.w, len));
                });
                for ky in 0..s.kh {
                    for kx in 0..s.kw {
                        let (phase, a0) = ((kx * dx) % sx, (kx * dx) / sx);
                        let slot = phases.iter().position(|&p| p == phase).unwrap_or(0);
                        let tap = ky * s.kw + kx;
                        for_range(b, (zero, ohv, 1), |b, oy| {
                            let (iy, ok) = emit::tap_row(b, oy, (sy, ky * dy, py), hv);
                            let doff = b.ins().imul_imm_s(oy, s.ow as i64);
                            let doff = b.ins().iadd_imm_s(doff, (tap * ohw) as i64);
                            let dst = emit::elem(b, col, doff);
                            emit::if_else(
                                b,
                                ok,
                                |b| {
                                    let soff = b.ins().imul_imm_s(iy, row_len as i64);
                                    let soff = b.ins().iadd_imm_s(soff, (slot * len + a0) as i64);
                                    let src = emit::elem(b, split, soff);
                                    let owv = int(b, s.ow);
                                    for_lanes(b, owv, |b, i, ty| {
                                        let v = load(b, ty, src, i);
                                        store(b, v, dst, i);
                                    });
                                },
                                |b| zero_row(b, dst),
                            );
                        });
                    }
                }
            });
            b.ins().return_(&[]);
        },
    )
}

/// Layout of [`tap_split`]'s output for one input channel: the padded input rows the taps
/// reach (`rows`), each split by column phase like [`im2col`]'s rows (`row_len` floats: the
/// phases one after another, `phase_len` each), so that every tap of an output row is a
/// contiguous run of `ow` floats, zeros in the padding included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapLayout {
    pub rows: usize,
    pub row_len: usize,
    pub phase_len: usize,
}

impl TapLayout {
    pub fn of(s: &ConvShape) -> TapLayout {
        let (sy, dy) = (s.attrs.strides[0].max(1), s.attrs.dilations[0]);
        let rows = if s.oh == 0 {
            0
        } else {
            (s.oh - 1) * sy + s.kh.saturating_sub(1) * dy + 1
        };
        TapLayout {
            rows,
            row_len: im2col_row_len(s),
            phase_len: im2col_phase_len(s),
        }
    }
    /// Floats per input channel.
    pub fn plane(&self) -> usize {
        self.rows * self.row_len
    }
    /// Offset from one output row's taps to the next's: the vertical stride in padded rows.
    pub fn step(&self, s: &ConvShape) -> usize {
        s.attrs.strides[0].max(1) * self.row_len
    }
    /// Where row `(ci, ky, kx)` of the im2col matrix (`C/g · kH · kW` of them) starts for
    /// output pixel (0, 0): add `oy · step + ox` for pixel `(oy, ox)`.
    pub fn offsets(&self, s: &ConvShape) -> Vec<usize> {
        let (sx, dy, dx) = (
            s.attrs.strides[1].max(1),
            s.attrs.dilations[0],
            s.attrs.dilations[1],
        );
        let phases = im2col_phases(s);
        let cg = s.c / s.attrs.group.max(1);
        let mut offs = Vec::with_capacity(cg * s.kh * s.kw);
        for ci in 0..cg {
            for ky in 0..s.kh {
                for kx in 0..s.kw {
                    let (phase, a0) = ((kx * dx) % sx, (kx * dx) / sx);
                    let slot = phases.iter().position(|&p| p == phase).unwrap_or(0);
                    offs.push(
                        ci * self.plane() + ky * dy * self.row_len + slot * self.phase_len + a0,
                    );
                }
            }
        }
        offs
    }
}

/// The input of an implicit-GEMM convolution ([`crate::jit::Rhs::Taps`]), `n` channels of
/// one group: each padded row the taps reach, split by column phase ([`TapLayout`]; rows
/// in the vertical padding all zeros). No im2col matrix is written: for ResNet's stem it is
/// 7.4 MB, this 0.6 MB. All bounds are compile-time constants. Args: `x (h*w*n)`,
/// `out (plane*n)`.
pub fn tap_split(jit: &Jit, s: &ConvShape) -> Pending {
    let name = format!("tap_split_{}", s.key());
    let hw = s.h * s.w;
    let lay = TapLayout::of(s);
    let args = vec![ArgSpec::input(0, hw), ArgSpec::output(0, lay.plane())];
    let s = s.clone();
    build_function(
        jit,
        &name,
        args,
        MAX_N / (hw + lay.plane()).max(1),
        move |b, p, n| {
            let x0 = arg_ptr(b, p, 0);
            let out0 = arg_ptr(b, p, 1);
            let a = &s.attrs;
            let (sx, py, px) = (a.strides[1].max(1), a.pads[0], a.pads[1]);
            let phases = im2col_phases(&s);
            let zero = int(b, 0);
            let hv = int(b, s.h);
            let rows = int(b, lay.rows);
            for_range(b, (zero, n, 1), |b, ci| {
                let xoff = b.ins().imul_imm_s(ci, hw as i64);
                let x = emit::elem(b, x0, xoff);
                let ooff = b.ins().imul_imm_s(ci, lay.plane() as i64);
                let out = emit::elem(b, out0, ooff);
                for_range(b, (zero, rows, 1), |b, r| {
                    let (iy, ok) = emit::tap_row(b, r, (1, 0, py), hv);
                    let doff = b.ins().imul_imm_s(r, lay.row_len as i64);
                    let dst = emit::elem(b, out, doff);
                    emit::if_else(
                        b,
                        ok,
                        |b| {
                            let loff = b.ins().imul_imm_s(iy, s.w as i64);
                            let line = emit::elem(b, x, loff);
                            split_row(b, (line, dst), &phases, (sx, px, s.w, lay.phase_len));
                        },
                        |b| {
                            let len = int(b, lay.row_len);
                            for_lanes(b, len, |b, i, ty| {
                                let z = fconst(b, ty, 0.0);
                                store(b, z, dst, i);
                            });
                        },
                    );
                });
            });
            b.ins().return_(&[]);
        },
    )
}

/// Byte mask for `shuffle` picking 32-bit lanes `lanes` of the concatenation `a ++ b`.
fn lane_mask(b: &mut FunctionBuilder, lanes: [u8; 4]) -> cranelift_codegen::ir::Immediate {
    let bytes: Vec<u8> = lanes
        .iter()
        .flat_map(|&l| (0..4u8).map(move |k| l * 4 + k))
        .collect();
    b.func.dfg.immediates.push(bytes.into())
}

/// Scratch a [`winograd_input`] call needs: the padded, phase-split plane and four rows.
pub fn winograd_input_scratch(s: &ConvShape) -> usize {
    let (th, tw) = (s.oh.div_ceil(2), s.ow.div_ceil(2));
    (2 * th + 2 + 4) * 2 * (tw + 1)
}

/// Scratch floats of [`winograd_output`]: four rows of `ceil(ow / 2) + 4`.
pub fn winograd_output_scratch(s: &ConvShape) -> usize {
    4 * (s.ow.div_ceil(2) + 4)
}

/// Winograd F(2x2, 3x3) input transform of `n` channel planes into their `[16][T]` blocks of
/// `V` (`T` = 2x2 output tiles): the plane is copied with its zero padding into even and odd
/// padded columns (so a tile's four columns are `e[tx], o[tx], e[tx+1], o[tx+1]`), then per
/// row of tiles `t = Bᵀ d` along the rows and `V = t B` along the tiles, all `f32x4` loops.
/// Args: `x (h*w*n)`, `v (16*T*n)`, `scratch (winograd_input_scratch)`.
pub fn winograd_input(jit: &Jit, s: &ConvShape) -> Pending {
    let (h, w) = (s.h, s.w);
    let (th, tw) = (s.oh.div_ceil(2), s.ow.div_ceil(2));
    let t_all = th * tw;
    let half = tw + 1;
    let row_len = 2 * half;
    let rows = 2 * th + 2;
    let name = format!("winograd_in_{h}x{w}_t{th}x{tw}");
    let args = vec![
        ArgSpec::input(0, h * w),
        ArgSpec::output(0, 16 * t_all),
        ArgSpec::output(winograd_input_scratch(s), 0),
    ];
    build_function(
        jit,
        &name,
        args,
        MAX_N / (h * w + 16 * t_all).max(1),
        move |b, p, n| {
            let x0 = arg_ptr(b, p, 0);
            let v0 = arg_ptr(b, p, 1);
            let pad = arg_ptr(b, p, 2);
            let at = int(b, rows * row_len);
            let trow = emit::elem(b, pad, at);
            let zero = int(b, 0);
            let row_of = |b: &mut FunctionBuilder, base: Value, r: Value| {
                let off = b.ins().imul_imm_s(r, row_len as i64);
                emit::elem(b, base, off)
            };
            for_range(b, (zero, n, 1), |b, ci| {
                let xoff = b.ins().imul_imm_s(ci, (h * w) as i64);
                let x = emit::elem(b, x0, xoff);
                let voff = b.ins().imul_imm_s(ci, (16 * t_all) as i64);
                let v = emit::elem(b, v0, voff);
                // Padded rows: 0 and those past the input are zeros; row p holds input row p - 1.
                let zero_rows = |b: &mut FunctionBuilder, from: usize, to: usize| {
                    if to > from {
                        let start = int(b, from * row_len);
                        let dst = emit::elem(b, pad, start);
                        let len = int(b, (to - from) * row_len);
                        for_lanes(b, len, |b, i, ty| {
                            let z = fconst(b, ty, 0.0);
                            store(b, z, dst, i);
                        });
                    }
                };
                zero_rows(b, 0, 1);
                zero_rows(b, (h + 1).min(rows), rows);
                let (one, last) = (int(b, 1), int(b, (h + 1).min(rows)));
                for_range(b, (one, last, 1), |b, pr| {
                    let iy = b.ins().iadd_imm_s(pr, -1);
                    let loff = b.ins().imul_imm_s(iy, w as i64);
                    let line = emit::elem(b, x, loff);
                    let dst = row_of(b, pad, pr);
                    gather(b, (line, dst), (2, 0, 1, w, half));
                    let hv = int(b, half);
                    let dst_o = emit::elem(b, dst, hv);
                    gather(b, (line, dst_o), (2, 1, 1, w, half));
                });
                let thv = int(b, th);
                for_range(b, (zero, thv, 1), |b, ty| {
                    let r0 = b.ins().imul_imm_s(ty, 2);
                    let d: Vec<Value> = (0..4)
                        .map(|k| {
                            let r = b.ins().iadd_imm_s(r0, k);
                            row_of(b, pad, r)
                        })
                        .collect();
                    let tr: Vec<Value> = (0..4)
                        .map(|k| {
                            let at = int(b, k * row_len);
                            emit::elem(b, trow, at)
                        })
                        .collect();
                    let len = int(b, row_len);
                    for_lanes(b, len, |b, i, ty| {
                        let [a0, a1, a2, a3] = [0, 1, 2, 3].map(|k| load(b, ty, d[k], i));
                        let t0 = b.ins().fsub(a0, a2);
                        let t1 = b.ins().fadd(a1, a2);
                        let t2 = b.ins().fsub(a2, a1);
                        let t3 = b.ins().fsub(a1, a3);
                        for (k, t) in [t0, t1, t2, t3].into_iter().enumerate() {
                            store(b, t, tr[k], i);
                        }
                    });
                    let base = b.ins().imul_imm_s(ty, tw as i64);
                    for (i, &ti) in tr.iter().enumerate() {
                        let hv = int(b, half);
                        let o = emit::elem(b, ti, hv);
                        let one = int(b, 1);
                        let e1 = emit::elem(b, ti, one);
                        let o1 = emit::elem(b, o, one);
                        let outs: Vec<Value> = (0..4)
                            .map(|j| {
                                let off = b.ins().iadd_imm_s(base, ((i * 4 + j) * t_all) as i64);
                                emit::elem(b, v, off)
                            })
                            .collect();
                        let twv = int(b, tw);
                        for_lanes(b, twv, |b, q, ty| {
                            let e0 = load(b, ty, ti, q);
                            let ep = load(b, ty, e1, q);
                            let od = load(b, ty, o, q);
                            let op = load(b, ty, o1, q);
                            let r0 = b.ins().fsub(e0, ep);
                            let r1 = b.ins().fadd(od, ep);
                            let r2 = b.ins().fsub(ep, od);
                            let r3 = b.ins().fsub(od, op);
                            for (k, r) in [r0, r1, r2, r3].into_iter().enumerate() {
                                store(b, r, outs[k], q);
                            }
                        });
                    }
                });
            });
            b.ins().return_(&[]);
        },
    )
}

/// Winograd F(2x2, 3x3) output transform of `n` channels of the GEMM results (`[16][M][T]`,
/// starting at the first channel's `T` values) into their output planes: per row of tiles the two output rows' even and odd columns
/// (`Y = Aᵀ M A`, `f32x4` along the tiles), then interleaved into the plane with lane
/// shuffles. Args: `m (15*M*T + T*n)`, `y (oh*ow*n)`, `scratch (4*(tw + 4))`.
pub fn winograd_output(jit: &Jit, s: &ConvShape) -> Pending {
    let (oh, ow) = (s.oh, s.ow);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let t_all = th * tw;
    let stride = tw + 4;
    let xs = s.m * t_all;
    let name = format!("winograd_out_{oh}x{ow}_m{}", s.m);
    let args = vec![
        ArgSpec::input(15 * xs, t_all),
        ArgSpec::output(0, oh * ow),
        ArgSpec::output(winograd_output_scratch(s), 0),
    ];
    build_function(
        jit,
        &name,
        args,
        MAX_N / (xs + t_all + oh * ow).max(1),
        move |b, p, n| {
            let m0 = arg_ptr(b, p, 0);
            let y0 = arg_ptr(b, p, 1);
            let scr = arg_ptr(b, p, 2);
            let zero = int(b, 0);
            let bufs: Vec<Value> = (0..4)
                .map(|k| {
                    let at = int(b, k * stride);
                    emit::elem(b, scr, at)
                })
                .collect();
            let (lo_mask, hi_mask) = (lane_mask(b, [0, 4, 1, 5]), lane_mask(b, [2, 6, 3, 7]));
            let flags = MemFlagsData::new().with_endianness(Endianness::Little);
            for_range(b, (zero, n, 1), |b, ci| {
                let moff = b.ins().imul_imm_s(ci, t_all as i64);
                let mt = emit::elem(b, m0, moff);
                let yoff = b.ins().imul_imm_s(ci, (oh * ow) as i64);
                let y = emit::elem(b, y0, yoff);
                let thv = int(b, th);
                for_range(b, (zero, thv, 1), |b, ty| {
                    let base = b.ins().imul_imm_s(ty, tw as i64);
                    let src: Vec<Value> = (0..16)
                        .map(|xi| {
                            let off = b.ins().iadd_imm_s(base, (xi * xs) as i64);
                            emit::elem(b, mt, off)
                        })
                        .collect();
                    let twv = int(b, tw);
                    for_lanes(b, twv, |b, q, ty| {
                        let mv: Vec<Value> = src.iter().map(|&s| load(b, ty, s, q)).collect();
                        let m = |i: usize, j: usize| mv[i * 4 + j];
                        // s0[j] = m0j + m1j + m2j, s1[j] = m1j - m2j - m3j.
                        let mut s0 = Vec::new();
                        let mut s1 = Vec::new();
                        for j in 0..4 {
                            let a = b.ins().fadd(m(0, j), m(1, j));
                            s0.push(b.ins().fadd(a, m(2, j)));
                            let c = b.ins().fsub(m(1, j), m(2, j));
                            s1.push(b.ins().fsub(c, m(3, j)));
                        }
                        for (r, sr) in [s0, s1].iter().enumerate() {
                            let a = b.ins().fadd(sr[0], sr[1]);
                            let even = b.ins().fadd(a, sr[2]);
                            let c = b.ins().fsub(sr[1], sr[2]);
                            let odd = b.ins().fsub(c, sr[3]);
                            store(b, even, bufs[2 * r], q);
                            store(b, odd, bufs[2 * r + 1], q);
                        }
                    });
                    for r in 0..2usize {
                        let oy = b.ins().imul_imm_s(ty, 2);
                        let oy = b.ins().iadd_imm_s(oy, r as i64);
                        let inside = b.ins().icmp_imm_s(IntCC::SignedLessThan, oy, oh as i64);
                        emit::if_else(
                            b,
                            inside,
                            |b| {
                                let roff = b.ins().imul_imm_s(oy, ow as i64);
                                let row = emit::elem(b, y, roff);
                                let (e, o) = (bufs[2 * r], bufs[2 * r + 1]);
                                // Whole groups of four tiles: eight output columns by two shuffles.
                                let groups = int(b, ow / 8);
                                for_range(b, (zero, groups, 1), |b, g| {
                                    let q = b.ins().imul_imm_s(g, 4);
                                    let ev = load(b, F32X4, e, q);
                                    let od = load(b, F32X4, o, q);
                                    let ev = b.ins().bitcast(I8X16, flags, ev);
                                    let od = b.ins().bitcast(I8X16, flags, od);
                                    let lo = b.ins().shuffle(ev, od, lo_mask);
                                    let hi = b.ins().shuffle(ev, od, hi_mask);
                                    let lo = b.ins().bitcast(F32X4, flags, lo);
                                    let hi = b.ins().bitcast(F32X4, flags, hi);
                                    let at = b.ins().imul_imm_s(g, 8);
                                    store(b, lo, row, at);
                                    let at4 = b.ins().iadd_imm_s(at, 4);
                                    store(b, hi, row, at4);
                                });
                                // The remaining columns one at a time.
                                let from = int(b, (ow / 8) * 8);
                                let end = int(b, ow);
                                for_range(b, (from, end, 1), |b, col| {
                                    let tx = b.ins().ushr_imm_u(col, 1);
                                    let is_odd = b.ins().band_imm_u(col, 1);
                                    let ve = load(b, F32, e, tx);
                                    let vo = load(b, F32, o, tx);
                                    let v = b.ins().select(is_odd, vo, ve);
                                    store(b, v, row, col);
                                });
                            },
                            |_| {},
                        );
                    }
                });
            });
            b.ins().return_(&[]);
        },
    )
}

/// Depthwise convolution of `n` channels (one input and one output channel per group),
/// directly: per output row and kernel tap, `y[oy][ox] += w[ky][kx] · x[iy][ox·sx + kx·dx - px]`
/// over the output columns whose tap lands inside the input (bounds baked in per tap), an
/// `f32x4` FMA loop at stride 1, scalar otherwise. Args: `x (h*w*n)`, `w (kh*kw*n)`,
/// `y (oh*ow*n)`.
pub fn depthwise(jit: &Jit, s: &ConvShape) -> Pending {
    let a = s.attrs.clone();
    let name = format!("depthwise_{}", s.key());
    let (hw, kk, ohw) = (s.h * s.w, s.kh * s.kw, s.oh * s.ow);
    let args = vec![
        ArgSpec::input(0, hw),
        ArgSpec::input(0, kk),
        ArgSpec::output(0, ohw),
    ];
    let s = s.clone();
    build_function(
        jit,
        &name,
        args,
        MAX_N / (hw + ohw).max(1),
        move |b, p, n| {
            let x0 = arg_ptr(b, p, 0);
            let w0 = arg_ptr(b, p, 1);
            let y0 = arg_ptr(b, p, 2);
            let (sy, sx) = (a.strides[0], a.strides[1].max(1));
            let (dy, dx) = (a.dilations[0], a.dilations[1]);
            let (py, px) = (a.pads[0], a.pads[1]);
            let zero = int(b, 0);
            let hv = int(b, s.h);
            for_range(b, (zero, n, 1), |b, ci| {
                let xoff = b.ins().imul_imm_s(ci, hw as i64);
                let x = emit::elem(b, x0, xoff);
                let woff = b.ins().imul_imm_s(ci, kk as i64);
                let wk = emit::elem(b, w0, woff);
                let yoff = b.ins().imul_imm_s(ci, ohw as i64);
                let y = emit::elem(b, y0, yoff);
                let ohv = int(b, s.oh);
                for_range(b, (zero, ohv, 1), |b, oy| {
                    let roff = b.ins().imul_imm_s(oy, s.ow as i64);
                    let row = emit::elem(b, y, roff);
                    let owv = int(b, s.ow);
                    for_lanes(b, owv, |b, i, ty| {
                        let z = fconst(b, ty, 0.0);
                        store(b, z, row, i);
                    });
                    for ky in 0..s.kh {
                        let (iy, ok) = emit::tap_row(b, oy, (sy, ky * dy, py), hv);
                        emit::if_else(
                            b,
                            ok,
                            |b| {
                                let loff = b.ins().imul_imm_s(iy, s.w as i64);
                                let line = emit::elem(b, x, loff);
                                for kx in 0..s.kw {
                                    // Output columns whose tap is inside: ox·sx + kx·dx - px in 0..w.
                                    let off = kx * dx;
                                    let lo = px.saturating_sub(off).div_ceil(sx).min(s.ow);
                                    let hi = if px + s.w > off {
                                        (px + s.w - off).div_ceil(sx).clamp(lo, s.ow)
                                    } else {
                                        lo
                                    };
                                    if hi <= lo {
                                        continue;
                                    }
                                    let kv = int(b, ky * s.kw + kx);
                                    let wv = load(b, F32, wk, kv);
                                    let ix0 = lo * sx + off - px;
                                    let lo_v = int(b, lo);
                                    let dst = emit::elem(b, row, lo_v);
                                    let ix0_v = int(b, ix0);
                                    let src = emit::elem(b, line, ix0_v);
                                    let cnt = int(b, hi - lo);
                                    if sx == 1 {
                                        let wsplat = b.ins().splat(F32X4, wv);
                                        for_lanes(b, cnt, |b, i, ty| {
                                            let v = load(b, ty, src, i);
                                            let acc = load(b, ty, dst, i);
                                            let w = if ty == F32X4 { wsplat } else { wv };
                                            let r = b.ins().fma(w, v, acc);
                                            store(b, r, dst, i);
                                        });
                                    } else {
                                        for_range(b, (zero, cnt, 1), |b, i| {
                                            let si = b.ins().imul_imm_s(i, sx as i64);
                                            let v = load(b, F32, src, si);
                                            let acc = load(b, F32, dst, i);
                                            let r = b.ins().fma(wv, v, acc);
                                            store(b, r, dst, i);
                                        });
                                    }
                                }
                            },
                            |_| {},
                        );
                    }
                });
            });
            b.ins().return_(&[]);
        },
    )
}
