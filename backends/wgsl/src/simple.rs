//! The one-thread-per-output kernels (activations, broadcasting binary ops, Expand,
//! BatchNorm, pools, means, softmax, concat) and the tiled matrix product behind Gemm/MatMul.

use excite_ir::op::{Gemm, Pool};
use excite_ir::{Act, Node, Op};

use crate::WgslError;
use crate::expr::{Step, emit, lit};
use crate::lower::{Lower, bindings, broadcast_strides, numel, offset_expr, strides, unsupported};
use crate::render::{i, u};

const UNARY: &str = include_str!("kernels/unary.wgsl");
const BINARY: &str = include_str!("kernels/binary.wgsl");
const BATCHNORM: &str = include_str!("kernels/batchnorm.wgsl");
const MAXPOOL: &str = include_str!("kernels/maxpool.wgsl");
const AVGPOOL: &str = include_str!("kernels/avgpool.wgsl");
const REDUCE_MEAN: &str = include_str!("kernels/reduce_mean.wgsl");
const SOFTMAX: &str = include_str!("kernels/softmax.wgsl");
const CONCAT: &str = include_str!("kernels/concat.wgsl");
const MATMUL: &str = include_str!("kernels/matmul.wgsl");

const XY: [(&str, bool, &str); 2] = [("x", false, "f32"), ("y", true, "f32")];

/// Activations and Expand: `y[o] = act(x[broadcast index of o])`.
pub(crate) fn unary(l: &mut Lower<'_>, node: &Node, y: usize) -> Result<(), WgslError> {
    let xs = l.shape(node.inputs[0])?;
    let os = l.shape(node.outputs[0])?;
    let steps: Vec<Step> = Act::from_op(&node.op).map(Step::Act).into_iter().collect();
    let total = numel(&os);
    let (wg, row) = l.grid(total);
    let m = l.module(
        "unary",
        UNARY,
        &[
            ("bindings", bindings(&XY)),
            ("total", u(total)),
            ("row", row),
            ("index", offset_expr("o", &os, &broadcast_strides(&xs, &os))),
            ("epilogue", emit(&steps)?),
        ],
    )?;
    let binds = vec![l.buffer_of(node.inputs[0])?, y];
    l.dispatch(node, m, binds, wg)
}

/// Add, Sub, Mul, Div with NumPy broadcasting.
pub(crate) fn binary(l: &mut Lower<'_>, node: &Node, y: usize) -> Result<(), WgslError> {
    let op = match node.op {
        Op::Add => "+",
        Op::Sub => "-",
        Op::Mul => "*",
        _ => "/",
    };
    let (a, b) = (node.inputs[0], node.inputs[1]);
    let (as_, bs, os) = (l.shape(a)?, l.shape(b)?, l.shape(node.outputs[0])?);
    let total = numel(&os);
    let (wg, row) = l.grid(total);
    let m = l.module(
        "binary",
        BINARY,
        &[
            (
                "bindings",
                bindings(&[("a", false, "f32"), ("b", false, "f32"), ("y", true, "f32")]),
            ),
            ("total", u(total)),
            ("row", row),
            (
                "index_a",
                offset_expr("o", &os, &broadcast_strides(&as_, &os)),
            ),
            (
                "index_b",
                offset_expr("o", &os, &broadcast_strides(&bs, &os)),
            ),
            ("op", op.into()),
        ],
    )?;
    let binds = vec![l.buffer_of(a)?, l.buffer_of(b)?, y];
    l.dispatch(node, m, binds, wg)
}

pub(crate) fn batchnorm(
    l: &mut Lower<'_>,
    node: &Node,
    eps: f32,
    y: usize,
) -> Result<(), WgslError> {
    let xs = l.shape(node.inputs[0])?;
    if xs.len() < 2 {
        return Err(unsupported(node, "input must have a channel axis"));
    }
    let total = numel(&xs);
    let (wg, row) = l.grid(total);
    let names = ["x", "scale", "shift", "mean", "variance"];
    let mut decl: Vec<_> = names.iter().map(|n| (*n, false, "f32")).collect();
    decl.push(("y", true, "f32"));
    let m = l.module(
        "batchnorm",
        BATCHNORM,
        &[
            ("bindings", bindings(&decl)),
            ("total", u(total)),
            ("row", row),
            ("c", u(xs[1])),
            ("inner", u(numel(&xs[2..]))),
            ("eps", lit(eps)?),
        ],
    )?;
    let mut binds = Vec::new();
    for &v in &node.inputs {
        binds.push(l.buffer_of(v)?);
    }
    binds.push(y);
    l.dispatch(node, m, binds, wg)
}

/// Mean over `axes` (GlobalAveragePool is the mean over every axis after the first two).
pub(crate) fn reduce_mean(
    l: &mut Lower<'_>,
    node: &Node,
    axes: &[usize],
    y: usize,
) -> Result<(), WgslError> {
    let xs = l.shape(node.inputs[0])?;
    if axes.iter().any(|&a| a >= xs.len()) {
        return Err(unsupported(node, "axis out of range"));
    }
    let st = strides(&xs);
    let kept: Vec<usize> = (0..xs.len()).filter(|a| !axes.contains(a)).collect();
    let kdims: Vec<usize> = kept.iter().map(|&a| xs[a]).collect();
    let kst: Vec<usize> = kept.iter().map(|&a| st[a]).collect();
    let rdims: Vec<usize> = axes.iter().map(|&a| xs[a]).collect();
    let rst: Vec<usize> = axes.iter().map(|&a| st[a]).collect();
    let total = numel(&kdims);
    let (wg, row) = l.grid(total);
    let m = l.module(
        "reduce_mean",
        REDUCE_MEAN,
        &[
            ("bindings", bindings(&XY)),
            ("total", u(total)),
            ("row", row),
            ("r", u(numel(&rdims).max(1))),
            ("base", offset_expr("o", &kdims, &kst)),
            ("roff", offset_expr("r", &rdims, &rst)),
        ],
    )?;
    let binds = vec![l.buffer_of(node.inputs[0])?, y];
    l.dispatch(node, m, binds, wg)
}

pub(crate) fn pool(
    l: &mut Lower<'_>,
    node: &Node,
    p: &Pool,
    avg: bool,
    y: usize,
) -> Result<(), WgslError> {
    let xs = l.shape(node.inputs[0])?;
    let os = l.shape(node.outputs[0])?;
    let (&[_, _, h, w], &[_, _, oh, ow]) = (&xs[..], &os[..]) else {
        return Err(unsupported(
            node,
            "only 2-D pools (4-D tensors) are supported",
        ));
    };
    let total = numel(&os);
    let (wg, row) = l.grid(total);
    let mut v = vec![
        ("bindings", bindings(&XY)),
        ("h", i(h)),
        ("w", i(w)),
        ("oh", u(oh)),
        ("ow", u(ow)),
        ("kh", i(p.kernel[0])),
        ("kw", i(p.kernel[1])),
        ("sh", i(p.strides[0])),
        ("sw", i(p.strides[1])),
        ("dh", i(p.dilations[0])),
        ("dw", i(p.dilations[1])),
        ("pt", i(p.pads[0])),
        ("pl", i(p.pads[1])),
        ("total", u(total)),
        ("row", row),
    ];
    let m = if avg {
        v.extend([
            ("pb", i(p.pads[2])),
            ("pr", i(p.pads[3])),
            ("count_pad", p.count_include_pad.to_string()),
        ]);
        l.module("avgpool", AVGPOOL, &v)?
    } else {
        l.module("maxpool", MAXPOOL, &v)?
    };
    let binds = vec![l.buffer_of(node.inputs[0])?, y];
    l.dispatch(node, m, binds, wg)
}

pub(crate) fn softmax(
    l: &mut Lower<'_>,
    node: &Node,
    axis: usize,
    y: usize,
) -> Result<(), WgslError> {
    let xs = l.shape(node.inputs[0])?;
    let len = *xs
        .get(axis)
        .ok_or_else(|| unsupported(node, "axis out of range"))?;
    let inner = numel(&xs[axis + 1..]);
    let total = numel(&xs[..axis]) * inner;
    let (wg, row) = l.grid(total);
    let m = l.module(
        "softmax",
        SOFTMAX,
        &[
            ("bindings", bindings(&XY)),
            ("total", u(total)),
            ("row", row),
            ("len", u(len)),
            ("inner", u(inner)),
        ],
    )?;
    let binds = vec![l.buffer_of(node.inputs[0])?, y];
    l.dispatch(node, m, binds, wg)
}

/// One copy dispatch per input, each writing its slice of the output.
pub(crate) fn concat(
    l: &mut Lower<'_>,
    node: &Node,
    axis: usize,
    y: usize,
) -> Result<(), WgslError> {
    let os = l.shape(node.outputs[0])?;
    let ctot = *os
        .get(axis)
        .ok_or_else(|| unsupported(node, "axis out of range"))?;
    let inner = numel(&os[axis + 1..]);
    let mut off = 0;
    for &v in &node.inputs {
        let xs = l.shape(v)?;
        let cin = xs.get(axis).copied().unwrap_or(0);
        let total = numel(&xs);
        if total > 0 {
            let (wg, row) = l.grid(total);
            let m = l.module(
                "concat",
                CONCAT,
                &[
                    ("bindings", bindings(&XY)),
                    ("total", u(total)),
                    ("row", row),
                    ("cin_inner", u(cin * inner)),
                    ("ctot_inner", u(ctot * inner)),
                    ("off_inner", u(off * inner)),
                ],
            )?;
            let binds = vec![l.buffer_of(v)?, y];
            l.dispatch(node, m, binds, wg)?;
        }
        off += cin;
    }
    Ok(())
}

/// Gemm: `alpha * op(A) op(B) + beta * C`, C broadcast to [M, N].
pub(crate) fn gemm(l: &mut Lower<'_>, node: &Node, gm: &Gemm, y: usize) -> Result<(), WgslError> {
    let (a, b) = (node.inputs[0], node.inputs[1]);
    let (as_, bs) = (l.shape(a)?, l.shape(b)?);
    let (&[a0, a1], &[b0, b1]) = (&as_[..], &bs[..]) else {
        return Err(unsupported(node, "Gemm operands must be 2-D"));
    };
    let (mm, k, sam, sak) = if gm.trans_a {
        (a1, a0, 1, a1)
    } else {
        (a0, a1, a1, 1)
    };
    let (nn, sbk, sbn) = if gm.trans_b { (b0, 1, b1) } else { (b1, b1, 1) };
    let mut decl = vec![("a", false, "f32"), ("b", false, "f32")];
    let mut binds = vec![l.buffer_of(a)?, l.buffer_of(b)?];
    let c_term = match node.inputs.get(2) {
        Some(&c) if gm.beta != 0.0 => {
            let cs = l.shape(c)?;
            decl.push(("cmat", false, "f32"));
            binds.push(l.buffer_of(c)?);
            let idx = offset_expr("(i * N + j)", &[mm, nn], &broadcast_strides(&cs, &[mm, nn]));
            format!("    v = v + {} * cmat[{idx}];", lit(gm.beta)?)
        }
        _ => String::new(),
    };
    decl.push(("y", true, "f32"));
    binds.push(y);
    let dims = Dims {
        m: mm,
        n: nn,
        k,
        sam,
        sak,
        sbk,
        sbn,
    };
    let m = matmul_module(l, &decl, &dims, gm.alpha, "0u".into(), "0u".into(), c_term)?;
    l.dispatch(node, m, binds, dims.grid(1))
}

/// NumPy matmul: batched over broadcast leading dims; 1-D operands promoted.
pub(crate) fn matmul(l: &mut Lower<'_>, node: &Node, y: usize) -> Result<(), WgslError> {
    let (a, b) = (node.inputs[0], node.inputs[1]);
    let (mut as_, mut bs) = (l.shape(a)?, l.shape(b)?);
    if as_.len() == 1 {
        as_.insert(0, 1);
    }
    if bs.len() == 1 {
        bs.push(1);
    }
    let (ra, rb) = (as_.len(), bs.len());
    let (mm, k, nn) = (as_[ra - 2], as_[ra - 1], bs[rb - 1]);
    if bs[rb - 2] != k {
        return Err(unsupported(node, "inner dimensions differ"));
    }
    let lead = ra.max(rb) - 2;
    let pad = |s: &[usize]| {
        let mut v = vec![1; lead + 2 - s.len()];
        v.extend_from_slice(&s[..s.len() - 2]);
        v
    };
    let (la, lb) = (pad(&as_), pad(&bs));
    let batch: Vec<usize> = la.iter().zip(&lb).map(|(&x, &y)| x.max(y)).collect();
    let sa: Vec<usize> = strides(&la)
        .iter()
        .zip(&la)
        .map(|(&s, &d)| if d > 1 { s * mm * k } else { 0 })
        .collect();
    let sb: Vec<usize> = strides(&lb)
        .iter()
        .zip(&lb)
        .map(|(&s, &d)| if d > 1 { s * k * nn } else { 0 })
        .collect();
    let nb = numel(&batch);
    let decl = [("a", false, "f32"), ("b", false, "f32"), ("y", true, "f32")];
    let binds = vec![l.buffer_of(a)?, l.buffer_of(b)?, y];
    let dims = Dims {
        m: mm,
        n: nn,
        k,
        sam: k,
        sak: 1,
        sbk: nn,
        sbn: 1,
    };
    let (ab, bb) = (
        offset_expr("bi", &batch, &sa),
        offset_expr("bi", &batch, &sb),
    );
    let m = matmul_module(l, &decl, &dims, 1.0, ab, bb, String::new())?;
    l.dispatch(node, m, binds, dims.grid(nb))
}

struct Dims {
    m: usize,
    n: usize,
    k: usize,
    sam: usize,
    sak: usize,
    sbk: usize,
    sbn: usize,
}

impl Dims {
    fn grid(&self, batch: usize) -> [u32; 3] {
        [
            self.n.div_ceil(16) as u32,
            self.m.div_ceil(16) as u32,
            batch as u32,
        ]
    }
}

fn matmul_module(
    l: &mut Lower<'_>,
    decl: &[(&str, bool, &str)],
    d: &Dims,
    alpha: f32,
    a_base: String,
    b_base: String,
    c_term: String,
) -> Result<usize, WgslError> {
    l.module(
        "matmul",
        MATMUL,
        &[
            ("bindings", bindings(decl)),
            ("m", u(d.m.max(1))),
            ("n", u(d.n.max(1))),
            ("k", u(d.k.max(1))),
            ("sam", u(d.sam)),
            ("sak", u(d.sak)),
            ("sbk", u(d.sbk)),
            ("sbn", u(d.sbn)),
            ("alpha", lit(alpha)?),
            ("a_base", a_base),
            ("b_base", b_base),
            ("c_term", c_term),
        ],
    )
}
