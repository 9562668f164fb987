//! CLIF building blocks shared by every kernel family: counted loops (with loop-carried
//! accumulators), vector-then-scalar-tail traversal, loads/stores at element offsets,
//! constants, dot products, and the one emitter per [`Act`] variant (scalar `f32` or `f32x4`).
//!
//! Describe once, emit everywhere: a fused kernel's pointwise epilogue is an [`Act`] and the
//! kernels call [`act`]; a new activation means one case here.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64};
use cranelift_codegen::ir::{BlockArg, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use excite_ir::Act;

/// Loads and stores: may be unaligned, never trap (lengths are checked before the call).
pub fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// `iconst.i64 v`.
pub fn int(b: &mut FunctionBuilder, v: usize) -> Value {
    b.ins().iconst(I64, v as i64)
}

/// An `f32` constant, splatted when `ty` is a vector.
pub fn fconst(b: &mut FunctionBuilder, ty: Type, v: f32) -> Value {
    let s = b.ins().f32const(v);
    if ty == F32X4 {
        b.ins().splat(F32X4, s)
    } else {
        s
    }
}

/// The pointer argument `i` of the kernel ABI (`args[i]`).
pub fn arg_ptr(b: &mut FunctionBuilder, args: Value, i: usize) -> Value {
    b.ins().load(I64, mem(), args, (i * 8) as i32)
}

/// `base + idx * 4` (an `f32` element address).
pub fn elem(b: &mut FunctionBuilder, base: Value, idx: Value) -> Value {
    let off = b.ins().imul_imm_s(idx, 4);
    b.ins().iadd(base, off)
}

pub fn load(b: &mut FunctionBuilder, ty: Type, base: Value, idx: Value) -> Value {
    let a = elem(b, base, idx);
    b.ins().load(ty, mem(), a, 0)
}

pub fn store(b: &mut FunctionBuilder, v: Value, base: Value, idx: Value) {
    let a = elem(b, base, idx);
    b.ins().store(mem(), v, a, 0);
}

/// `for (i = start; i + step <= end; i += step)` with loop-carried values `accs`; returns the
/// index at exit and the final accumulators. `body` gets `(i, accs)` and returns the new accs.
pub fn for_acc(
    b: &mut FunctionBuilder,
    (start, end, step): (Value, Value, i64),
    accs: &[Value],
    body: impl FnOnce(&mut FunctionBuilder, Value, &[Value]) -> Vec<Value>,
) -> (Value, Vec<Value>) {
    let header = b.create_block();
    let body_blk = b.create_block();
    let exit = b.create_block();
    b.append_block_param(header, I64);
    for &a in accs {
        let ty = b.func.dfg.value_type(a);
        b.append_block_param(header, ty);
    }
    let mut init: Vec<BlockArg> = vec![start.into()];
    init.extend(accs.iter().map(|&a| BlockArg::from(a)));
    b.ins().jump(header, &init);
    b.switch_to_block(header);
    let params = b.block_params(header).to_vec();
    let i = params[0];
    let next = b.ins().iadd_imm_s(i, step);
    let cond = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, end);
    b.ins().brif(cond, body_blk, &[], exit, &[]);
    b.switch_to_block(body_blk);
    let out = body(b, i, &params[1..]);
    let mut back: Vec<BlockArg> = vec![next.into()];
    back.extend(out.iter().map(|&a| BlockArg::from(a)));
    b.ins().jump(header, &back);
    b.switch_to_block(exit);
    (i, params[1..].to_vec())
}

/// `for i in start..end` (step 1 or more) without accumulators.
pub fn for_range(
    b: &mut FunctionBuilder,
    range: (Value, Value, i64),
    body: impl FnOnce(&mut FunctionBuilder, Value),
) -> Value {
    for_acc(b, range, &[], |b, i, _| {
        body(b, i);
        Vec::new()
    })
    .0
}

/// Visits `0..len` sixteen lanes per iteration (four `f32x4` bodies, less loop overhead), then
/// four at a time, then the tail one at a time; `body(b, i, ty)` with `ty` = `f32x4` or `f32`.
pub fn for_lanes(
    b: &mut FunctionBuilder,
    len: Value,
    mut body: impl FnMut(&mut FunctionBuilder, Value, Type),
) {
    let zero = int(b, 0);
    let rest = for_range(b, (zero, len, 16), |b, i| {
        for k in 0..4 {
            let ik = if k == 0 {
                i
            } else {
                b.ins().iadd_imm_s(i, 4 * k)
            };
            body(b, ik, F32X4);
        }
    });
    let rest = for_range(b, (rest, len, 4), |b, i| body(b, i, F32X4));
    for_range(b, (rest, len, 1), |b, i| body(b, i, F32));
}

/// Horizontal sum of an `f32x4`.
pub fn hsum(b: &mut FunctionBuilder, v: Value) -> Value {
    let l: Vec<Value> = (0..4u8).map(|k| b.ins().extractlane(v, k)).collect();
    let a = b.ins().fadd(l[0], l[1]);
    let c = b.ins().fadd(l[2], l[3]);
    b.ins().fadd(a, c)
}

/// `sum(p[0..len])` as `f32` (four vector lanes, then the tail).
pub fn sum(b: &mut FunctionBuilder, p: Value, len: Value) -> Value {
    dot_or_sum(b, p, None, len)
}

/// `sum(p[i] * q[i])` over `0..len`.
pub fn dot(b: &mut FunctionBuilder, p: Value, q: Value, len: Value) -> Value {
    dot_or_sum(b, p, Some(q), len)
}

/// Four independent `f32x4` accumulators over 16 elements per iteration (hiding the add
/// latency), then single vectors, then scalars.
fn dot_or_sum(b: &mut FunctionBuilder, p: Value, q: Option<Value>, len: Value) -> Value {
    let step = |b: &mut FunctionBuilder, ty: Type, i: Value, acc: Value| {
        let x = load(b, ty, p, i);
        match q {
            Some(q) => {
                let y = load(b, ty, q, i);
                b.ins().fma(x, y, acc)
            }
            None => b.ins().fadd(acc, x),
        }
    };
    let zero = int(b, 0);
    let vz = fconst(b, F32X4, 0.0);
    let (rest, acc) = for_acc(b, (zero, len, 16), &[vz, vz, vz, vz], |b, i, a| {
        (0..4)
            .map(|k| {
                let ik = b.ins().iadd_imm_s(i, 4 * k as i64);
                step(b, F32X4, ik, a[k])
            })
            .collect()
    });
    let s01 = b.ins().fadd(acc[0], acc[1]);
    let s23 = b.ins().fadd(acc[2], acc[3]);
    let s = b.ins().fadd(s01, s23);
    let (rest, acc) = for_acc(b, (rest, len, 4), &[s], |b, i, a| {
        vec![step(b, F32X4, i, a[0])]
    });
    let head = hsum(b, acc[0]);
    let (_, tail) = for_acc(b, (rest, len, 1), &[head], |b, i, a| {
        vec![step(b, F32, i, a[0])]
    });
    tail[0]
}

/// `if x OP bound { bound } else { x }` by compare and blend (NaN keeps `x`, as the
/// interpreter's `if`s do; cheaper than Cranelift's NaN-exact `fmin`/`fmax` sequences).
fn replace_if(b: &mut FunctionBuilder, ty: Type, cc: FloatCC, x: Value, bound: f32) -> Value {
    let k = fconst(b, ty, bound);
    let m = b.ins().fcmp(cc, x, k);
    if ty == F32X4 {
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        let m = b.ins().bitcast(F32X4, flags, m);
        b.ins().bitselect(m, k, x)
    } else {
        b.ins().select(m, k, x)
    }
}

/// `min(max(x, lo), hi)` with `hi` winning when `lo > hi`; NaN stays NaN.
fn clamp(b: &mut FunctionBuilder, ty: Type, x: Value, lo: f32, hi: f32) -> Value {
    let x = replace_if(b, ty, FloatCC::LessThan, x, lo);
    replace_if(b, ty, FloatCC::GreaterThan, x, hi)
}

/// `e^x` for `f32`/`f32x4`: range reduction by `ln 2`, a degree-6 Taylor polynomial on
/// `|r| <= ln2/2` (relative error < 2e-7), and `2^n` built in the exponent bits.
pub fn exp(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let x = clamp(b, ty, x, -87.0, 88.0);
    let log2e = fconst(b, ty, std::f32::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let n = b.ins().nearest(t);
    let neg_n = b.ins().fneg(n);
    let ln2_hi = fconst(b, ty, 0.693_145_75);
    let ln2_lo = fconst(b, ty, 1.428_606_8e-6);
    let r = b.ins().fma(neg_n, ln2_hi, x);
    let r = b.ins().fma(neg_n, ln2_lo, r);
    let coeffs = [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let mut p = fconst(b, ty, coeffs[0]);
    for &c in &coeffs[1..] {
        let c = fconst(b, ty, c);
        p = b.ins().fma(p, r, c);
    }
    let ity = if ty == F32X4 { I32X4 } else { I32 };
    let ni = b.ins().fcvt_to_sint_sat(ity, n);
    let bias = if ty == F32X4 {
        let s = b.ins().iconst(I32, 127);
        b.ins().splat(I32X4, s)
    } else {
        b.ins().iconst(I32, 127)
    };
    let e = b.ins().iadd(ni, bias);
    let e = b.ins().ishl_imm_u(e, 23);
    let flags = MemFlagsData::new().with_endianness(Endianness::Little);
    let scale = b.ins().bitcast(ty, flags, e);
    b.ins().fmul(p, scale)
}

fn sigmoid(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let nx = b.ins().fneg(x);
    let e = exp(b, ty, nx);
    let one = fconst(b, ty, 1.0);
    let d = b.ins().fadd(one, e);
    b.ins().fdiv(one, d)
}

/// One emitter per [`Act`] variant, mirroring `excite_ir::interp::act`.
pub fn act(b: &mut FunctionBuilder, ty: Type, a: Act, x: Value) -> Value {
    match a {
        Act::Relu => replace_if(b, ty, FloatCC::LessThan, x, 0.0),
        Act::Clip { min, max } => clamp(b, ty, x, min, max),
        Act::HardSigmoid { alpha, beta } => {
            let al = fconst(b, ty, alpha);
            let be = fconst(b, ty, beta);
            let v = b.ins().fma(al, x, be);
            clamp(b, ty, v, 0.0, 1.0)
        }
        Act::HardSwish => {
            let sixth = fconst(b, ty, 1.0 / 6.0);
            let half = fconst(b, ty, 0.5);
            let v = b.ins().fma(x, sixth, half);
            let v = clamp(b, ty, v, 0.0, 1.0);
            b.ins().fmul(x, v)
        }
        Act::Sigmoid => sigmoid(b, ty, x),
        Act::Silu => {
            let s = sigmoid(b, ty, x);
            b.ins().fmul(x, s)
        }
    }
}

/// `act` when present, else `x`.
pub fn maybe_act(b: &mut FunctionBuilder, ty: Type, a: Option<Act>, x: Value) -> Value {
    match a {
        Some(a) => act(b, ty, a, x),
        None => x,
    }
}

/// Input row `o · stride + offset - pad` of output row `o` (`offset`: the tap's `k · dil`), and
/// whether it lies inside `0..size`.
pub fn tap_row(
    b: &mut FunctionBuilder,
    o: Value,
    (stride, offset, pad): (usize, usize, usize),
    size: Value,
) -> (Value, Value) {
    let i = b.ins().imul_imm_s(o, stride as i64);
    let i = b.ins().iadd_imm_s(i, offset as i64 - pad as i64);
    let ge = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, i, 0);
    let lt = b.ins().icmp(IntCC::SignedLessThan, i, size);
    (i, b.ins().band(ge, lt))
}

/// Emits `then` when the integer `cond` is non-zero, else `other`.
pub fn if_else(
    b: &mut FunctionBuilder,
    cond: Value,
    then: impl FnOnce(&mut FunctionBuilder),
    other: impl FnOnce(&mut FunctionBuilder),
) {
    let (t, e, done) = (b.create_block(), b.create_block(), b.create_block());
    b.ins().brif(cond, t, &[], e, &[]);
    b.switch_to_block(t);
    then(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(e);
    other(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
}
