//! Op attributes in the text form: one table that both prints and parses them.
//!
//! [`attrs_of`] lists an op's attributes in canonical order with ONNX's names, so the printer
//! is deterministic and complete. [`build_op`] reads them back: any order is accepted, an
//! attribute ONNX gives a default may be left out (handy when writing a model by hand), and
//! attributes that need the input rank to default (`ReduceMean.axes`, `Concat.axis`,
//! `Softmax.axis`) or have no default (`kernel_shape`, `shape`) are required. Axes are stored
//! normalised, so the text only accepts non-negative axes.

use std::fmt;

use super::cursor::{PResult, error_at, to_f32, to_i64, to_usize};
use crate::op::{Act, Conv, FusedConv, Gemm, Op, Pool, SeBlock};

/// Every op name the parser knows, in `Op` declaration order.
pub(super) const OP_NAMES: [&str; 27] = [
    "Conv",
    "BatchNormalization",
    "Relu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Silu",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "GlobalAveragePool",
    "ReduceMean",
    "AveragePool",
    "MaxPool",
    "Gemm",
    "MatMul",
    "Flatten",
    "Reshape",
    "Expand",
    "Concat",
    "Softmax",
    "Identity",
    "Dropout",
    "FusedConv",
    "SeBlock",
];

/// One attribute value as printed.
#[derive(Debug)]
pub(super) enum Attr {
    Uint(usize),
    Uints(Vec<usize>),
    Ints(Vec<i64>),
    Float(f32),
    Bool(bool),
    /// A bare word: an activation's name.
    Word(&'static str),
}

/// Writes `v` so that it parses back to the same bits (NaN payloads aside): Rust's shortest
/// round-trip form, with `inf`, `-inf` and `nan` spelled out.
pub(super) fn fmt_f32(v: f32) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        format!("{v:?}")
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, xs: &[T]) -> fmt::Result {
            f.write_str("[")?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str("]")
        }
        match self {
            Attr::Uint(n) => write!(f, "{n}"),
            Attr::Uints(xs) => list(f, xs),
            Attr::Ints(xs) => list(f, xs),
            Attr::Float(v) => f.write_str(&fmt_f32(*v)),
            Attr::Bool(b) => write!(f, "{b}"),
            Attr::Word(w) => f.write_str(w),
        }
    }
}

fn pool_attrs(p: &Pool) -> Vec<(&'static str, Attr)> {
    vec![
        ("kernel_shape", Attr::Uints(p.kernel.to_vec())),
        ("strides", Attr::Uints(p.strides.to_vec())),
        ("pads", Attr::Uints(p.pads.to_vec())),
        ("dilations", Attr::Uints(p.dilations.to_vec())),
        ("ceil_mode", Attr::Bool(p.ceil_mode)),
        ("count_include_pad", Attr::Bool(p.count_include_pad)),
    ]
}

/// Attribute names of one activation slot: the name, then its parameters.
struct ActKeys {
    name: &'static str,
    alpha: &'static str,
    beta: &'static str,
    min: &'static str,
    max: &'static str,
}

const ACT: ActKeys = ActKeys {
    name: "act",
    alpha: "act_alpha",
    beta: "act_beta",
    min: "act_min",
    max: "act_max",
};
const GATE: ActKeys = ActKeys {
    name: "gate",
    alpha: "gate_alpha",
    beta: "gate_beta",
    min: "gate_min",
    max: "gate_max",
};
const POST: ActKeys = ActKeys {
    name: "post_act",
    alpha: "post_act_alpha",
    beta: "post_act_beta",
    min: "post_act_min",
    max: "post_act_max",
};

/// An activation slot as attributes: nothing when absent, else its name and parameters.
fn act_attrs(out: &mut Vec<(&'static str, Attr)>, k: &ActKeys, a: Option<Act>) {
    let Some(a) = a else { return };
    out.push((k.name, Attr::Word(a.name())));
    match a {
        Act::HardSigmoid { alpha, beta } => {
            out.push((k.alpha, Attr::Float(alpha)));
            out.push((k.beta, Attr::Float(beta)));
        }
        Act::Clip { min, max } => {
            out.push((k.min, Attr::Float(min)));
            out.push((k.max, Attr::Float(max)));
        }
        Act::Relu | Act::Sigmoid | Act::HardSwish | Act::Silu => {}
    }
}

fn conv_attrs(c: &Conv) -> Vec<(&'static str, Attr)> {
    vec![
        ("strides", Attr::Uints(c.strides.to_vec())),
        ("pads", Attr::Uints(c.pads.to_vec())),
        ("dilations", Attr::Uints(c.dilations.to_vec())),
        ("group", Attr::Uint(c.group)),
    ]
}

/// The attributes of `op`, complete and in canonical order.
pub(super) fn attrs_of(op: &Op) -> Vec<(&'static str, Attr)> {
    match op {
        Op::Conv(c) => conv_attrs(c),
        Op::FusedConv(f) => {
            let mut v = conv_attrs(&f.conv);
            v.push(("bias", Attr::Bool(f.bias)));
            act_attrs(&mut v, &ACT, f.act);
            v.push(("residual", Attr::Bool(f.residual)));
            act_attrs(&mut v, &POST, f.post_act);
            v
        }
        Op::SeBlock(se) => {
            let mut v = Vec::new();
            act_attrs(&mut v, &ACT, Some(se.act));
            act_attrs(&mut v, &GATE, Some(se.gate));
            v.push(("bias1", Attr::Bool(se.bias1)));
            v.push(("bias2", Attr::Bool(se.bias2)));
            v.push(("residual", Attr::Bool(se.residual)));
            act_attrs(&mut v, &POST, se.post_act);
            v
        }
        Op::BatchNorm { epsilon } => vec![("epsilon", Attr::Float(*epsilon))],
        Op::HardSigmoid { alpha, beta } => {
            vec![("alpha", Attr::Float(*alpha)), ("beta", Attr::Float(*beta))]
        }
        Op::Clip { min, max } => vec![("min", Attr::Float(*min)), ("max", Attr::Float(*max))],
        Op::ReduceMean { axes, keepdims } => vec![
            ("axes", Attr::Uints(axes.clone())),
            ("keepdims", Attr::Bool(*keepdims)),
        ],
        Op::AveragePool(p) | Op::MaxPool(p) => pool_attrs(p),
        Op::Gemm(g) => vec![
            ("alpha", Attr::Float(g.alpha)),
            ("beta", Attr::Float(g.beta)),
            ("transA", Attr::Bool(g.trans_a)),
            ("transB", Attr::Bool(g.trans_b)),
        ],
        Op::Flatten { axis } | Op::Concat { axis } | Op::Softmax { axis } => {
            vec![("axis", Attr::Uint(*axis))]
        }
        Op::Reshape { shape, allowzero } => vec![
            ("shape", Attr::Ints(shape.clone())),
            ("allowzero", Attr::Bool(*allowzero)),
        ],
        Op::Expand { shape } => vec![("shape", Attr::Ints(shape.clone()))],
        Op::Relu
        | Op::Sigmoid
        | Op::HardSwish
        | Op::Silu
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::GlobalAveragePool
        | Op::MatMul
        | Op::Identity
        | Op::Dropout => vec![],
    }
}

/// A parsed but not yet typed attribute value: number tokens with their positions.
#[derive(Debug)]
pub(super) enum Raw<'a> {
    Scalar(usize, &'a str),
    List(usize, Vec<(usize, &'a str)>),
}

/// The attributes written on one node, consumed by name as the op is built.
#[derive(Debug)]
pub(super) struct AttrBag<'a> {
    src: &'a str,
    entries: Vec<(usize, &'a str, Raw<'a>, bool)>,
}

impl<'a> AttrBag<'a> {
    pub(super) fn new(src: &'a str) -> AttrBag<'a> {
        AttrBag {
            src,
            entries: Vec::new(),
        }
    }

    /// Adds `key = value` written at `pos`; a repeated key is an error.
    pub(super) fn push(&mut self, pos: usize, key: &'a str, value: Raw<'a>) -> PResult<()> {
        if self.entries.iter().any(|e| e.1 == key) {
            return Err(error_at(
                self.src,
                pos,
                format!("attribute `{key}` is given twice"),
            ));
        }
        self.entries.push((pos, key, value, false));
        Ok(())
    }

    fn take(&mut self, key: &str) -> Option<&Raw<'a>> {
        let e = self.entries.iter_mut().find(|e| e.1 == key)?;
        e.3 = true;
        Some(&e.2)
    }

    fn scalar(&mut self, key: &str) -> PResult<Option<(usize, &'a str)>> {
        let src = self.src;
        match self.take(key) {
            None => Ok(None),
            Some(Raw::Scalar(p, t)) => Ok(Some((*p, *t))),
            Some(Raw::List(p, _)) => Err(error_at(src, *p, format!("`{key}` takes one value"))),
        }
    }

    fn list(&mut self, key: &str) -> PResult<Option<Vec<(usize, &'a str)>>> {
        let src = self.src;
        match self.take(key) {
            None => Ok(None),
            Some(Raw::List(_, xs)) => Ok(Some(xs.clone())),
            Some(Raw::Scalar(p, _)) => Err(error_at(src, *p, format!("`{key}` takes a list"))),
        }
    }

    fn missing(&self, key: &str, op_pos: usize, op: &str) -> crate::error::IrError {
        error_at(self.src, op_pos, format!("{op} needs attribute `{key}`"))
    }

    fn uint(&mut self, key: &str, default: Option<usize>, at: (usize, &str)) -> PResult<usize> {
        match (self.scalar(key)?, default) {
            (Some((p, t)), _) => to_usize(self.src, p, t, &format!("`{key}`")),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.missing(key, at.0, at.1)),
        }
    }

    fn uints(&mut self, key: &str) -> PResult<Option<Vec<usize>>> {
        let Some(xs) = self.list(key)? else {
            return Ok(None);
        };
        let what = format!("an entry of `{key}`");
        xs.iter()
            .map(|&(p, t)| to_usize(self.src, p, t, &what))
            .collect::<PResult<Vec<_>>>()
            .map(Some)
    }

    fn array<const K: usize>(&mut self, key: &str, default: [usize; K]) -> PResult<[usize; K]> {
        let pos = self.entries.iter().find(|e| e.1 == key).map_or(0, |e| e.0);
        let Some(xs) = self.uints(key)? else {
            return Ok(default);
        };
        let n = xs.len();
        xs.try_into()
            .map_err(|_| error_at(self.src, pos, format!("`{key}` needs {K} values, got {n}")))
    }

    fn ints(&mut self, key: &str, at: (usize, &str)) -> PResult<Vec<i64>> {
        let Some(xs) = self.list(key)? else {
            return Err(self.missing(key, at.0, at.1));
        };
        let what = format!("an entry of `{key}`");
        xs.iter()
            .map(|&(p, t)| to_i64(self.src, p, t, &what))
            .collect()
    }

    fn float(&mut self, key: &str, default: f32) -> PResult<f32> {
        match self.scalar(key)? {
            Some((p, t)) => to_f32(self.src, p, t, &format!("`{key}`")),
            None => Ok(default),
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> PResult<bool> {
        match self.scalar(key)? {
            Some((_, "true" | "1")) => Ok(true),
            Some((_, "false" | "0")) => Ok(false),
            Some((p, t)) => Err(error_at(
                self.src,
                p,
                format!("`{key}` is `true` or `false`, found `{t}`"),
            )),
            None => Ok(default),
        }
    }

    /// Errors on the first attribute that the op did not consume, listing those it takes.
    fn finish(self, op: &Op) -> PResult<()> {
        if let Some(e) = self.entries.iter().find(|e| !e.3) {
            let names: Vec<_> = attrs_of(op).iter().map(|a| a.0).collect();
            let takes = if names.is_empty() {
                "takes no attributes".to_string()
            } else {
                format!("takes {}", names.join(", "))
            };
            return Err(error_at(
                self.src,
                e.0,
                format!("unknown attribute `{}`: {} {takes}", e.1, op.name()),
            ));
        }
        Ok(())
    }
}

/// Reads an activation slot; `None` when its name attribute is absent.
fn act(b: &mut AttrBag<'_>, k: &ActKeys) -> PResult<Option<Act>> {
    let Some((p, name)) = b.scalar(k.name)? else {
        return Ok(None);
    };
    Ok(Some(match name {
        "Relu" => Act::Relu,
        "Sigmoid" => Act::Sigmoid,
        "HardSwish" => Act::HardSwish,
        "Silu" => Act::Silu,
        "HardSigmoid" => Act::HardSigmoid {
            alpha: b.float(k.alpha, 0.2)?,
            beta: b.float(k.beta, 0.5)?,
        },
        "Clip" => Act::Clip {
            min: b.float(k.min, f32::NEG_INFINITY)?,
            max: b.float(k.max, f32::INFINITY)?,
        },
        other => {
            return Err(error_at(
                b.src,
                p,
                format!(
                    "`{}` is an activation (Relu, Sigmoid, HardSigmoid, HardSwish, Silu, Clip), found `{other}`",
                    k.name
                ),
            ));
        }
    }))
}

/// Reads an activation slot that must be present.
fn required_act(b: &mut AttrBag<'_>, k: &ActKeys, at: (usize, &str)) -> PResult<Act> {
    act(b, k)?.ok_or_else(|| b.missing(k.name, at.0, at.1))
}

fn conv(b: &mut AttrBag<'_>, at: (usize, &str)) -> PResult<Conv> {
    let d = Conv::default();
    Ok(Conv {
        strides: b.array("strides", d.strides)?,
        pads: b.array("pads", d.pads)?,
        dilations: b.array("dilations", d.dilations)?,
        group: b.uint("group", Some(d.group), at)?,
    })
}

fn pool(b: &mut AttrBag<'_>, at: (usize, &str)) -> PResult<Pool> {
    if !b.entries.iter().any(|e| e.1 == "kernel_shape") {
        return Err(b.missing("kernel_shape", at.0, at.1));
    }
    Ok(Pool {
        kernel: b.array("kernel_shape", [0, 0])?,
        strides: b.array("strides", [1, 1])?,
        pads: b.array("pads", [0; 4])?,
        dilations: b.array("dilations", [1, 1])?,
        ceil_mode: b.bool("ceil_mode", false)?,
        count_include_pad: b.bool("count_include_pad", false)?,
    })
}

/// Builds the op called `name` (written at `pos`) from its attributes.
pub(super) fn build_op(pos: usize, name: &str, mut b: AttrBag<'_>) -> PResult<Op> {
    let at = (pos, name);
    let op = match name {
        "Conv" => Op::Conv(conv(&mut b, at)?),
        "FusedConv" => Op::FusedConv(FusedConv {
            conv: conv(&mut b, at)?,
            bias: b.bool("bias", false)?,
            act: act(&mut b, &ACT)?,
            residual: b.bool("residual", false)?,
            post_act: act(&mut b, &POST)?,
        }),
        "SeBlock" => Op::SeBlock(SeBlock {
            act: required_act(&mut b, &ACT, at)?,
            gate: required_act(&mut b, &GATE, at)?,
            bias1: b.bool("bias1", false)?,
            bias2: b.bool("bias2", false)?,
            residual: b.bool("residual", false)?,
            post_act: act(&mut b, &POST)?,
        }),
        "BatchNormalization" => Op::BatchNorm {
            epsilon: b.float("epsilon", 1e-5)?,
        },
        "Relu" => Op::Relu,
        "Sigmoid" => Op::Sigmoid,
        "HardSigmoid" => Op::HardSigmoid {
            alpha: b.float("alpha", 0.2)?,
            beta: b.float("beta", 0.5)?,
        },
        "HardSwish" => Op::HardSwish,
        "Silu" => Op::Silu,
        "Clip" => Op::Clip {
            min: b.float("min", f32::NEG_INFINITY)?,
            max: b.float("max", f32::INFINITY)?,
        },
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        "Div" => Op::Div,
        "GlobalAveragePool" => Op::GlobalAveragePool,
        "ReduceMean" => {
            let axes_pos = b
                .entries
                .iter()
                .find(|e| e.1 == "axes")
                .map_or(pos, |e| e.0);
            let axes = b
                .uints("axes")?
                .ok_or_else(|| b.missing("axes", pos, name))?;
            if axes.windows(2).any(|w| w[0] >= w[1]) {
                return Err(error_at(
                    b.src,
                    axes_pos,
                    "`axes` must be sorted and without repeats",
                ));
            }
            Op::ReduceMean {
                axes,
                keepdims: b.bool("keepdims", true)?,
            }
        }
        "AveragePool" => Op::AveragePool(pool(&mut b, at)?),
        "MaxPool" => Op::MaxPool(pool(&mut b, at)?),
        "Gemm" => {
            let d = Gemm::default();
            Op::Gemm(Gemm {
                alpha: b.float("alpha", d.alpha)?,
                beta: b.float("beta", d.beta)?,
                trans_a: b.bool("transA", d.trans_a)?,
                trans_b: b.bool("transB", d.trans_b)?,
            })
        }
        "MatMul" => Op::MatMul,
        "Flatten" => Op::Flatten {
            axis: b.uint("axis", Some(1), at)?,
        },
        "Reshape" => Op::Reshape {
            shape: b.ints("shape", at)?,
            allowzero: b.bool("allowzero", false)?,
        },
        "Expand" => Op::Expand {
            shape: b.ints("shape", at)?,
        },
        "Concat" => Op::Concat {
            axis: b.uint("axis", None, at)?,
        },
        "Softmax" => Op::Softmax {
            axis: b.uint("axis", None, at)?,
        },
        "Identity" => Op::Identity,
        "Dropout" => Op::Dropout,
        _ => {
            let hint = OP_NAMES
                .iter()
                .find(|n| n.eq_ignore_ascii_case(name))
                .map_or(String::new(), |n| format!(" (did you mean `{n}`?)"));
            return Err(error_at(b.src, pos, format!("unknown op `{name}`{hint}")));
        }
    };
    b.finish(&op)?;
    Ok(op)
}
