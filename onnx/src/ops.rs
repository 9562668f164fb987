//! Mapping of the run-time ONNX ops onto IR ops: attribute defaults filled, `auto_pad` turned
//! into explicit pads, axes normalised, and inputs that the IR keeps as attributes (Clip
//! bounds, ReduceMean axes) read from constants. Dispatch for every op lives here too.

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{Dim, Op, Shape};

use crate::attrs::NodeCx;
use crate::attrs::brief;
use crate::error::OnnxError;
use crate::import::{Importer, Val};

impl Importer {
    /// Imports one node.
    pub fn node(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        let unary = |op: Op| (op, 1usize);
        let simple = match cx.op {
            "Relu" => Some(unary(Op::Relu)),
            "Sigmoid" => Some(unary(Op::Sigmoid)),
            "HardSwish" => Some(unary(Op::HardSwish)),
            "GlobalAveragePool" => Some(unary(Op::GlobalAveragePool)),
            "MatMul" => Some((Op::MatMul, 2)),
            _ => None,
        };
        if let Some((op, n)) = simple {
            cx.known(&[])?;
            cx.arity(n, n, 1)?;
            let ins = (0..n)
                .map(|i| self.ir(cx, i))
                .collect::<Result<Vec<_>, _>>()?;
            return self.emit(cx, op, &ins);
        }
        match cx.op {
            "Conv" => self.conv(cx),
            "BatchNormalization" => self.batch_norm(cx),
            "HardSigmoid" => {
                cx.known(&["alpha", "beta"])?;
                cx.arity(1, 1, 1)?;
                let op = Op::HardSigmoid {
                    alpha: cx.float("alpha", 0.2)?,
                    beta: cx.float("beta", 0.5)?,
                };
                let x = self.ir(cx, 0)?;
                self.emit(cx, op, &[x])
            }
            "Clip" => self.clip(cx),
            "ReduceMean" => self.reduce_mean(cx),
            "AveragePool" | "MaxPool" => self.pool(cx),
            "Gemm" => {
                cx.known(&["alpha", "beta", "transA", "transB"])?;
                cx.arity(2, 3, 1)?;
                let op = Op::Gemm(Gemm {
                    alpha: cx.float("alpha", 1.0)?,
                    beta: cx.float("beta", 1.0)?,
                    trans_a: cx.flag("transA", false)?,
                    trans_b: cx.flag("transB", false)?,
                });
                let mut ins = vec![self.ir(cx, 0)?, self.ir(cx, 1)?];
                if cx.input_name(2).is_some() {
                    ins.push(self.ir(cx, 2)?);
                }
                self.emit(cx, op, &ins)
            }
            "Flatten" => {
                cx.known(&["axis"])?;
                cx.arity(1, 1, 1)?;
                let x = self.ir(cx, 0)?;
                let r = self.shape(cx, x)?.rank() as i64;
                let a = cx.int("axis", 1)?;
                let axis = if a < 0 { a + r } else { a };
                if !(0..=r).contains(&axis) {
                    return Err(cx.attr_err("axis", format!("{a} out of range for rank {r}")));
                }
                self.emit(
                    cx,
                    Op::Flatten {
                        axis: axis as usize,
                    },
                    &[x],
                )
            }
            "Softmax" => {
                cx.known(&["axis"])?;
                cx.arity(1, 1, 1)?;
                let x = self.ir(cx, 0)?;
                let r = self.shape(cx, x)?.rank() as i64;
                let a = cx.int("axis", if cx.opset < 13 { 1 } else { -1 })?;
                let axis = if a < 0 { a + r } else { a };
                if !(0..r).contains(&axis) {
                    return Err(cx.attr_err("axis", format!("{a} out of range for rank {r}")));
                }
                if cx.opset < 13 && axis != r - 1 {
                    return Err(cx.unsupported(format!(
                        "opset {} Softmax flattens the input at axis {a} (softmax over all \
                         trailing dims); only the last axis, where it agrees with opset 13, \
                         is supported",
                        cx.opset
                    )));
                }
                self.emit(
                    cx,
                    Op::Softmax {
                        axis: axis as usize,
                    },
                    &[x],
                )
            }
            "Dropout" => self.dropout(cx),
            _ => self.shape_op(cx),
        }
    }

    fn conv(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        cx.known(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        cx.arity(2, 3, 1)?;
        let x = self.ir(cx, 0)?;
        let w = self.ir(cx, 1)?;
        let (xs, ws) = (self.shape(cx, x)?, self.shape(cx, w)?);
        let kernel = match ws.as_fixed().as_deref() {
            Some([_, _, kh, kw]) if xs.rank() == 4 => [*kh, *kw],
            _ => {
                return Err(cx.unsupported(format!(
                    "only 2-D convolution is supported (4-D input and weight), got input {xs} \
                     and weight {ws}"
                )));
            }
        };
        if let Some(ks) = cx.ints("kernel_shape")?
            && (ks.len() != 2 || ks[0] != kernel[0] as i64 || ks[1] != kernel[1] as i64)
        {
            return Err(cx.attr_err(
                "kernel_shape",
                format!(
                    "{} does not match the weight's kernel {kernel:?}",
                    brief(ks)
                ),
            ));
        }
        let strides = cx.pair("strides", [1, 1])?;
        let dilations = cx.pair("dilations", [1, 1])?;
        let group = cx.int("group", 1)?;
        let channels = xs.dims().get(1).and_then(|d| d.fixed()).unwrap_or(0) as i64;
        if group < 1 || group > channels.max(1) {
            return Err(cx.attr_err(
                "group",
                format!("must be between 1 and the {channels} input channels, got {group}"),
            ));
        }
        let pads = window_pads(cx, &xs, kernel, strides, dilations)?;
        let mut ins = vec![x, w];
        if cx.input_name(2).is_some() {
            ins.push(self.ir(cx, 2)?);
        }
        let op = Op::Conv(Conv {
            strides,
            pads,
            dilations,
            group: group as usize,
        });
        self.emit(cx, op, &ins)
    }

    fn pool(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        let max = cx.op == "MaxPool";
        let mut known = vec![
            "auto_pad",
            "ceil_mode",
            "dilations",
            "kernel_shape",
            "pads",
            "strides",
        ];
        known.push(if max {
            "storage_order"
        } else {
            "count_include_pad"
        });
        cx.known(&known)?;
        cx.arity(1, 1, if max { 2 } else { 1 })?;
        if max {
            if cx.int("storage_order", 0)? != 0 {
                return Err(cx.attr_err("storage_order", "only row-major (0) is supported"));
            }
            if cx.output_name(1).is_some() {
                return Err(cx.unsupported("the Indices output is not supported"));
            }
        }
        let x = self.ir(cx, 0)?;
        let xs = self.shape(cx, x)?;
        let kernel = match cx.ints("kernel_shape")? {
            Some([a, b]) if *a > 0 && *b > 0 => [*a as usize, *b as usize],
            Some(k) => {
                return Err(cx.attr_err(
                    "kernel_shape",
                    format!(
                        "must be two positive sizes (2-D pooling only), got {}",
                        brief(k)
                    ),
                ));
            }
            None => return Err(cx.attr_err("kernel_shape", "is required")),
        };
        if xs.rank() != 4 {
            return Err(cx.unsupported(format!(
                "only 2-D pooling (4-D input) is supported, got {xs}"
            )));
        }
        let strides = cx.pair("strides", [1, 1])?;
        let dilations = cx.pair("dilations", [1, 1])?;
        let p = Pool {
            kernel,
            strides,
            pads: window_pads(cx, &xs, kernel, strides, dilations)?,
            dilations,
            ceil_mode: cx.flag("ceil_mode", false)?,
            count_include_pad: !max && cx.flag("count_include_pad", false)?,
        };
        let op = if max {
            Op::MaxPool(p)
        } else {
            Op::AveragePool(p)
        };
        self.emit(cx, op, &[x])
    }

    fn batch_norm(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        cx.known(&["epsilon", "momentum", "training_mode"])?;
        cx.arity(5, 5, 5)?;
        if cx.int("training_mode", 0)? != 0 {
            return Err(cx.attr_err("training_mode", "training mode is not supported"));
        }
        if (1..5).any(|i| cx.output_name(i).is_some()) {
            return Err(cx.unsupported(
                "the running mean/variance outputs (training mode) are not supported",
            ));
        }
        let ins = (0..5)
            .map(|i| self.ir(cx, i))
            .collect::<Result<Vec<_>, _>>()?;
        let op = Op::BatchNorm {
            epsilon: cx.float("epsilon", 1e-5)?,
        };
        self.emit(cx, op, &ins)
    }

    fn clip(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        cx.known(&[])?;
        cx.arity(1, 3, 1)?;
        let mut bounds = [f32::NEG_INFINITY, f32::INFINITY];
        for (i, what) in [(1, "min"), (2, "max")] {
            if let Some(c) = self.konst(cx, i, what)? {
                match c.floats().as_deref() {
                    Some([v]) => bounds[i - 1] = *v,
                    _ => {
                        return Err(cx.unsupported(format!(
                            "`{what}` must be a single number, got shape {:?}",
                            c.dims
                        )));
                    }
                }
            }
        }
        let x = self.ir(cx, 0)?;
        let op = Op::Clip {
            min: bounds[0],
            max: bounds[1],
        };
        self.emit(cx, op, &[x])
    }

    fn reduce_mean(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        let from_input = cx.opset >= 18;
        if from_input {
            cx.known(&["keepdims", "noop_with_empty_axes"])?;
            cx.arity(1, 2, 1)?;
        } else {
            cx.known(&["axes", "keepdims"])?;
            cx.arity(1, 1, 1)?;
        }
        let x = self.ir(cx, 0)?;
        let r = self.shape(cx, x)?.rank() as i64;
        let axes: Vec<i64> = if from_input {
            match self.konst(cx, 1, "axes")? {
                None => vec![],
                Some(c) => c
                    .plain_ints()
                    .ok_or_else(|| cx.unsupported("`axes` must be integers"))?,
            }
        } else {
            cx.ints("axes")?.map(<[i64]>::to_vec).unwrap_or_default()
        };
        let keepdims = cx.flag("keepdims", true)?;
        if axes.is_empty() && from_input && cx.flag("noop_with_empty_axes", false)? {
            return self.emit(cx, Op::Identity, &[x]);
        }
        let mut norm: Vec<usize> = Vec::with_capacity(axes.len());
        for &a in &axes {
            let n = if a < 0 { a + r } else { a };
            if !(0..r).contains(&n) || norm.contains(&(n as usize)) {
                return Err(cx.unsupported(format!(
                    "axes {axes:?} out of range or repeated for rank {r}"
                )));
            }
            norm.push(n as usize);
        }
        if norm.is_empty() {
            norm = (0..r as usize).collect();
        }
        norm.sort_unstable();
        self.emit(
            cx,
            Op::ReduceMean {
                axes: norm,
                keepdims,
            },
            &[x],
        )
    }

    fn dropout(&mut self, cx: &NodeCx<'_>) -> Result<(), OnnxError> {
        // Opset 11 gives the ratio as an attribute, later ones as input 1; neither matters.
        cx.known(if cx.opset < 12 {
            &["seed", "ratio"]
        } else {
            &["seed"]
        })?;
        cx.arity(1, 3, 2)?;
        if let Some(mask) = cx.output_name(1)
            && self.used.contains(mask)
        {
            return Err(cx.unsupported(format!("the mask output `{mask}` is used")));
        }
        match self.input(cx, 2) {
            None => {}
            Some(Val::Const(c)) if c.plain_ints().is_some_and(|v| v.iter().all(|&b| b == 0)) => {}
            Some(_) => {
                return Err(cx.unsupported("training_mode must be a constant false"));
            }
        }
        let x = self.ir(cx, 0)?;
        self.emit(cx, Op::Dropout, &[x])
    }
}

/// Explicit `[top, left, bottom, right]` pads from `pads`/`auto_pad` for a 2-D window.
fn window_pads(
    cx: &NodeCx<'_>,
    x: &Shape,
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
) -> Result<[usize; 4], OnnxError> {
    let auto = cx.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let pads = cx.ints("pads")?;
    if auto != "NOTSET" && pads.is_some() {
        return Err(cx.attr_err("pads", format!("given together with auto_pad {auto}")));
    }
    match auto.as_str() {
        "NOTSET" => match pads {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 && p.iter().all(|&v| v >= 0) => {
                Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
            }
            Some(p) => Err(cx.attr_err(
                "pads",
                format!(
                    "must be four non-negative integers (2-D only), got {}",
                    brief(p)
                ),
            )),
        },
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = [0usize; 4];
            for i in 0..2 {
                let size = match x.dims().get(2 + i) {
                    Some(Dim::Fixed(n)) => *n as u128,
                    _ => {
                        return Err(
                            cx.unsupported(format!("auto_pad needs fixed spatial dims, got {x}"))
                        );
                    }
                };
                let s = strides[i] as u128;
                let extent = (dilations[i] as u128) * (kernel[i] as u128).saturating_sub(1) + 1;
                let total = (size.div_ceil(s).saturating_sub(1) * s + extent).saturating_sub(size);
                let small = usize::try_from(total / 2)
                    .map_err(|_| cx.attr_err("auto_pad", "padding overflows"))?;
                let big = usize::try_from(total - total / 2)
                    .map_err(|_| cx.attr_err("auto_pad", "padding overflows"))?;
                let (begin, end) = if auto == "SAME_UPPER" {
                    (small, big)
                } else {
                    (big, small)
                };
                out[i] = begin;
                out[i + 2] = end;
            }
            Ok(out)
        }
        other => Err(cx.attr_err("auto_pad", format!("unknown value {other}"))),
    }
}
