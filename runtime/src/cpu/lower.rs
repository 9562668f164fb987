//! Lowering: each node of a batch-resolved graph becomes one [`Step`] — a generated kernel
//! (elementwise, epilogues, SE, and whole-tensor strided kernels for broadcasting binaries,
//! Expand, BatchNorm, Softmax and ReduceMean over any axes), a GEMM-based convolution (weights
//! constant, or set up at run time), a pool, a matrix product on the `gemm` crate, a concat by
//! copies. Every op has a native path; the reference interpreter is never called. Flatten,
//! Reshape, Identity and Dropout are views: their output aliases the input's buffer and no
//! step runs (a view of a constant is copied once per run by a generated copy kernel).

use std::collections::HashMap;
use std::sync::Arc;

use excite_cpu::conv::{ConvKernel, ConvShape};
use excite_cpu::jit::sgemm;
use excite_cpu::kernels::{self, BinOp, Epilogue, MapOp, SeShape};
use excite_cpu::{Jit, Pending};
use excite_ir::{Graph, Node, Op, SeBlock, Tensor, ValueDef, ValueId};

use super::CpuError;

/// Where a step reads a tensor from.
#[derive(Clone, Debug)]
pub enum Src {
    /// The buffer of this (root) value.
    Slot(usize),
    Weight(Arc<Tensor>),
}

/// What a step runs.
#[derive(Debug)]
pub enum Kind {
    /// `means`: the epilogue also writes each channel's mean into the program's means buffer
    /// (the squeeze of the SE block that reads this output).
    /// `gate`: an SE block folded into this (1x1, linear) convolution: its gates are
    /// computed from the convolution's input before the GEMM, and the epilogue applies them.
    /// `means_at`: where in the means buffer the epilogue writes its channel means.
    Conv {
        conv: ConvKernel,
        epi: usize,
        ks: ConvKs,
        epi_spec: Epilogue,
        x: Src,
        r: Option<Src>,
        gate: Option<Box<SeGate>>,
        means_at: usize,
    },
    /// `pre_squeezed`: the channel means come from the producing conv (the means buffer).
    /// `split`: the mean, first-FC and scale-range kernels of the channel-split path, used
    /// when there are fewer images than threads.
    Se {
        k: usize,
        split: [usize; 3],
        ins: [Option<Src>; 6],
        n: usize,
        scratch: usize,
        se: SeBlock,
        sh: SeShape,
        pre_squeezed: bool,
    },
    Unary {
        k: usize,
        x: Src,
    },
    Binary {
        k: usize,
        a: Src,
        b: Src,
    },
    Mean {
        k: usize,
        x: Src,
        planes: usize,
    },
    /// A generated pool kernel over `dims = [planes, h, w, oh, ow]`, planes split across
    /// threads; `rdiv`/`cdiv`: the average's per-axis divisor reciprocals (empty for max);
    /// `row`: the kernel's row buffer length per task.
    Pool {
        k: usize,
        x: Src,
        dims: [usize; 5],
        rdiv: Vec<f32>,
        cdiv: Vec<f32>,
        row: usize,
    },
    Gemm {
        a: Src,
        mnk: (usize, usize, usize),
        b: Vec<f32>,
        bias: Vec<f32>,
    },
    /// Copies each input's block of `inner[i]` elements per outer index, in input order.
    Concat {
        ins: Vec<Src>,
        outer: usize,
        inner: Vec<usize>,
    },
    /// One call of a whole-tensor kernel (`n` = 1): the operands in order, then the output.
    /// Broadcasting binaries, Expand, BatchNorm, Softmax, ReduceMean over any axes, copies
    /// out of constants.
    Map {
        k: usize,
        ins: Vec<Src>,
    },
    /// Batched matrix product: per batch `(a offset, b offset)` in elements, each an `m×k` by
    /// `k×n` product into the next `m×n` block of the output.
    MatMul {
        a: Src,
        b: Src,
        mnk: (usize, usize, usize),
        batches: Vec<(usize, usize)>,
    },
    /// Gemm in general form: `y = alpha·op(A)·op(B) + beta·C`. `ta`: the kernel copying
    /// `op(A)` into scratch when A is transposed; `tb` copies `alpha·op(B)` into scratch; `tc`
    /// writes `beta·C` broadcast to `m×n` into the output (none: zeros).
    GemmGeneral {
        a: Src,
        b: Src,
        c: Option<Src>,
        ta: Option<usize>,
        tb: usize,
        tc: Option<usize>,
        mnk: (usize, usize, usize),
    },
    /// A convolution whose weight (or bias) is not a constant: its kernel is set up from the
    /// weight buffer at run time.
    ConvDyn {
        shape: ConvShape,
        epi: usize,
        ks: ConvKs,
        x: Src,
        w: Src,
        b: Option<Src>,
        r: Option<Src>,
    },
}

/// The gate kernel of an SE block folded into the convolution that produces its input
/// ([`kernels::se_gate`]): kernel index, the weights `w13, b13, w2, b2` (`b2` may be absent),
/// the kernel's fixed scratch (`c_in + cr`), and for batches with fewer images than threads
/// the kernels of the split path: plane means, then the two FCs by row ranges.
#[derive(Debug)]
pub struct SeGate {
    pub k: usize,
    pub split: [usize; 3],
    pub w: [Option<Src>; 4],
    pub scratch: usize,
    pub c_in: usize,
    pub sh: SeShape,
    pub se: SeBlock,
    /// Where the means of the conv's input already are in the means buffer (written by the
    /// epilogue of the conv that produced it): `k` is then the pre-squeezed kernel variant.
    pub presq_at: Option<usize>,
}

/// Indices of a convolution's generated kernels besides its epilogue
/// (`excite_cpu::conv::ConvShape::pending`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvKs {
    pub im2col: Option<usize>,
    pub taps: Option<usize>,
    pub wino: Option<(usize, usize)>,
    pub depthwise: Option<usize>,
}

/// One scheduled node.
#[derive(Debug)]
pub struct Step {
    pub node: String,
    pub op: &'static str,
    /// The generated kernel's name, or a description of the native routine.
    pub kernel: String,
    pub kind: Kind,
    /// Root value written and its element count.
    pub out: usize,
    pub out_len: usize,
}

/// Lowering state: the JIT being filled and a cache of kernels by name.
pub struct Lowerer<'g> {
    pub g: &'g Graph,
    pub jit: Jit,
    pub cache: HashMap<String, usize>,
    /// `root[v]`: the value whose buffer `v` lives in (itself unless `v` is a view).
    pub root: Vec<usize>,
}

impl Lowerer<'_> {
    /// SE folding: an SE block whose input is written by a linear 1x1 convolution (bias at
    /// most, no activation or residual) that nothing else reads runs inside that convolution.
    /// The squeeze commutes with the convolution (`mean(W3 x + b3) = W3 mean(x) + b3`), and so
    /// does the block's first FC: `W1 mean(u) + b1 = W13 mean(x) + b13` with `W13 = W1 W3`
    /// (`Cr × C_in`, a GEMM at compile time) and `b13 = W1 b3 + b1`. So the gates are computed
    /// from the convolution's input before its GEMM ([`kernels::se_gate`]: means of `x`, then
    /// the two FCs, no larger than the block's own) and the convolution's epilogue applies
    /// gate, residual and activation while each output plane is in cache: the SE block's pass
    /// over its `C·H·W` input disappears. The fused step takes the SE block's place in the
    /// schedule (its residual may be computed after the convolution). The FC1 weights must be
    /// constants. Returns how many blocks were folded.
    pub fn fold_se_gates(
        &mut self,
        steps: &mut Vec<Step>,
        pinned: &[usize],
    ) -> Result<usize, CpuError> {
        let mut reads = vec![0usize; self.root.len()];
        for s in steps.iter() {
            for r in super::exec::step_use(s).reads {
                reads[r] += 1;
            }
        }
        let mut drop = Vec::new();
        for j in 0..steps.len() {
            let Kind::Se {
                ins: [Some(Src::Slot(x)), Some(Src::Weight(w1)), b1, w2, b2, r],
                se,
                sh,
                pre_squeezed: false,
                ..
            } = &steps[j].kind
            else {
                continue;
            };
            let b1 = match b1 {
                None => None,
                Some(Src::Weight(t)) => Some(t.data()),
                Some(Src::Slot(_)) => continue,
            };
            let x = *x;
            if reads[x] != 1 || pinned.contains(&x) {
                continue;
            }
            let Some(p) = steps[..j].iter().rposition(|s| s.out == x) else {
                continue;
            };
            let Kind::Conv {
                conv,
                epi_spec,
                gate: None,
                ..
            } = &steps[p].kind
            else {
                continue;
            };
            let cs = &conv.shape;
            let linear = epi_spec.act.is_none()
                && !epi_spec.residual
                && epi_spec.post_act.is_none()
                && !epi_spec.means
                && !epi_spec.gate;
            if !linear
                || !cs.is_pointwise()
                || cs.attrs.group != 1
                || cs.m != sh.c
                || cs.oh * cs.ow != sh.hw
                || w1.numel() != sh.cr * sh.c
                || b1.is_some_and(|b| b.len() != sh.cr)
            {
                continue;
            }
            let spec = Epilogue {
                bias: epi_spec.bias,
                act: None,
                gate: true,
                residual: se.residual,
                post_act: se.post_act,
                means: false,
            };
            let (c_in, hw, cr) = (cs.c, sh.hw, sh.cr);
            // W13 = W1 W3 (cr x c_in); b13 = W1 b3 + b1.
            let mut w13 = vec![0f32; cr * c_in];
            let w3 = &conv.weight;
            sgemm(
                (cr, c_in, sh.c),
                &mut w13,
                c_in,
                w1.data(),
                sh.c,
                w3,
                c_in,
                false,
                1,
            )?;
            let b13: Vec<f32> = (0..cr)
                .map(|jr| {
                    let row = &w1.data()[jr * sh.c..(jr + 1) * sh.c];
                    let wb: f64 = row
                        .iter()
                        .zip(&conv.bias)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    (wb + b1.map_or(0.0, |b| f64::from(b[jr]))) as f32
                })
                .collect();
            let w13 = Tensor::new(vec![cr, c_in], w13).map_err(|e| CpuError::Exec {
                node: steps[j].node.clone(),
                source: e,
            })?;
            let b13 = Tensor::new(vec![cr], b13).map_err(|e| CpuError::Exec {
                node: steps[j].node.clone(),
                source: e,
            })?;
            let (gk, gname) = self.kernel(kernels::se_gate(&self.jit, c_in, *sh, se, false))?;
            let (ek, ename) = self.kernel(kernels::epilogue(&self.jit, hw, spec))?;
            let split = [
                self.kernel(kernels::mean_planes(&self.jit, hw))?.0,
                self.kernel(kernels::fc_rows(&self.jit, c_in, Some(se.act), true))?
                    .0,
                self.kernel(kernels::fc_rows(&self.jit, cr, Some(se.gate), se.bias2))?
                    .0,
            ];
            let gate = SeGate {
                k: gk,
                split,
                w: [
                    Some(Src::Weight(Arc::new(w13))),
                    Some(Src::Weight(Arc::new(b13))),
                    w2.clone(),
                    b2.clone(),
                ],
                scratch: c_in + cr,
                c_in,
                sh: *sh,
                se: se.clone(),
                presq_at: None,
            };
            let r = if se.residual { r.clone() } else { None };
            let conv_part = conv_part(&steps[p].kernel);
            let conv_node = steps[p].node.clone();
            let Kind::Conv {
                conv, x: cx, ks, ..
            } = std::mem::replace(
                &mut steps[p].kind,
                // A placeholder: step `p` is dropped below.
                Kind::Map {
                    k: 0,
                    ins: Vec::new(),
                },
            )
            else {
                continue;
            };
            let se_step = &mut steps[j];
            se_step.kernel = format!("{conv_part} + {gname} + {ename}");
            se_step.node = format!("{conv_node} + {}", se_step.node);
            se_step.op = "FusedConv+SeBlock";
            se_step.kind = Kind::Conv {
                conv,
                epi: ek,
                ks,
                epi_spec: spec,
                x: cx,
                r,
                gate: Some(Box::new(gate)),
                means_at: 0,
            };
            drop.push(p);
        }
        let folded = drop.len();
        let mut i = 0;
        steps.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
        Ok(folded)
    }

    /// Squeeze fusion: an SE block whose input is written by a convolution that nothing else
    /// reads gets its channel means from that convolution's epilogue (computed while each
    /// plane is in L1) instead of re-reading the tensor. One shared means buffer serves every
    /// pair, so a pair fuses only when no other fused convolution runs between its two steps.
    /// Returns the means buffer's length.
    pub fn fuse_squeeze(
        &mut self,
        steps: &mut [Step],
        pinned: &[usize],
    ) -> Result<usize, CpuError> {
        let mut reads = vec![0usize; self.root.len()];
        for s in steps.iter() {
            for r in super::exec::step_use(s).reads {
                reads[r] += 1;
            }
        }
        let mut means_len = 0;
        let mut last_fused = None;
        for j in 0..steps.len() {
            let Kind::Se {
                ins: [Some(Src::Slot(x)), ..],
                n,
                ..
            } = &steps[j].kind
            else {
                continue;
            };
            let (x, n) = (*x, *n);
            if reads[x] != 1 || pinned.contains(&x) {
                continue;
            }
            let Some(p) = steps[..j].iter().rposition(|s| s.out == x) else {
                continue;
            };
            if last_fused.is_some_and(|l| l > p) || !matches!(steps[p].kind, Kind::Conv { .. }) {
                continue;
            }
            if let Some(len) = self.write_means(&mut steps[p], 0)? {
                means_len = means_len.max(len);
            }
            if let Kind::Se {
                k,
                scratch,
                se,
                sh,
                pre_squeezed,
                ..
            } = &mut steps[j].kind
            {
                let (nk, name) = self.kernel(kernels::se_block(&self.jit, *sh, se, true))?;
                (*k, *scratch, *pre_squeezed) = (nk, sh.cr + sh.c * n, true);
                steps[j].kernel = name;
            }
            last_fused = Some(j);
        }
        Ok(means_len)
    }

    /// The squeeze of each folded SE gate, moved into the conv that produces the folded conv's
    /// input (when nothing else reads that tensor): its epilogue writes the channel means
    /// while each plane is in cache, and the gate kernel reads them instead of re-reading the
    /// tensor. Each pair gets its own region of the means buffer from `base` on (past the
    /// region of [`Self::fuse_squeeze`]); returns the buffer's new length.
    pub fn squeeze_gates(
        &mut self,
        steps: &mut [Step],
        pinned: &[usize],
        base: usize,
    ) -> Result<usize, CpuError> {
        let mut reads = vec![0usize; self.root.len()];
        for s in steps.iter() {
            for r in super::exec::step_use(s).reads {
                reads[r] += 1;
            }
        }
        let mut end = base;
        for j in 0..steps.len() {
            let Kind::Conv {
                conv,
                x: Src::Slot(v),
                gate: Some(gate),
                ..
            } = &steps[j].kind
            else {
                continue;
            };
            let (v, n, c_in, sh, se) = (*v, conv.shape.n, gate.c_in, gate.sh, gate.se.clone());
            if reads[v] != 1 || pinned.contains(&v) {
                continue;
            }
            let Some(q) = steps[..j].iter().rposition(|s| s.out == v) else {
                continue;
            };
            let Kind::Conv {
                conv: qc,
                epi_spec,
                gate: None,
                ..
            } = &steps[q].kind
            else {
                continue;
            };
            if epi_spec.means || qc.shape.m != c_in || qc.shape.oh * qc.shape.ow == 0 {
                continue;
            }
            if self.write_means(&mut steps[q], end)?.is_none() {
                continue;
            }
            let (gk, gname) = self.kernel(kernels::se_gate(&self.jit, c_in, sh, &se, true))?;
            if let Kind::Conv { gate: Some(g), .. } = &mut steps[j].kind {
                (g.k, g.presq_at) = (gk, Some(end));
            }
            let parts: Vec<&str> = steps[j].kernel.split(" + ").collect();
            if let [conv_part, _, epi_part] = parts[..] {
                steps[j].kernel = format!("{conv_part} + {gname} + {epi_part}");
            }
            end += n * c_in;
        }
        Ok(end)
    }

    /// Switches conv step `step` to the epilogue variant that also writes each output
    /// channel's mean, into the means buffer from `at` on. Returns the values written
    /// (`n·M`), or `None` when the step is not a conv.
    fn write_means(&mut self, step: &mut Step, at: usize) -> Result<Option<usize>, CpuError> {
        let Kind::Conv {
            conv,
            epi,
            epi_spec,
            means_at,
            ..
        } = &mut step.kind
        else {
            return Ok(None);
        };
        let spec = Epilogue {
            means: true,
            ..*epi_spec
        };
        let hw = conv.shape.oh * conv.shape.ow;
        let (k, name) = self.kernel(kernels::epilogue(&self.jit, hw, spec))?;
        (*epi, *epi_spec, *means_at) = (k, spec, at);
        let len = conv.shape.n * conv.shape.m;
        step.kernel = format!("{} + {name}", conv_part(&step.kernel));
        Ok(Some(len))
    }

    fn kernel(&mut self, p: Pending) -> Result<(usize, String), CpuError> {
        if let Some(&k) = self.cache.get(&p.name) {
            return Ok((k, p.name));
        }
        let name = p.name.clone();
        let k = self.jit.add(p)?;
        self.cache.insert(name.clone(), k);
        Ok((k, name))
    }

    pub fn shape(&self, v: ValueId, node: &str) -> Result<Vec<usize>, CpuError> {
        self.g
            .ty_of(v)
            .and_then(|t| t.shape.as_fixed())
            .ok_or_else(|| CpuError::Unsupported {
                node: node.to_string(),
                msg: format!("value `{}` has no fixed shape", self.g.value(v).name),
            })
    }

    pub fn src(&self, v: ValueId) -> Src {
        match &self.g.value(v).def {
            ValueDef::Weight(t) => Src::Weight(Arc::clone(t)),
            _ => Src::Slot(self.root[v.index()]),
        }
    }

    fn weight(&self, v: ValueId) -> Option<Arc<Tensor>> {
        self.g.value(v).weight().cloned()
    }

    /// Lowers `node`; `None` for views (the output was aliased to the input).
    pub fn lower(&mut self, node: &Node) -> Result<Option<Step>, CpuError> {
        let out_v = node.outputs[0];
        let out_shape = self.shape(out_v, &node.name)?;
        let out_len = out_shape.iter().product::<usize>();
        let ins = &node.inputs;
        let (kind, kernel) = match &node.op {
            Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity | Op::Dropout => {
                if matches!(self.g.value(ins[0]).def, ValueDef::Weight(_)) {
                    // A view of a constant: copied into the output.
                    let (k, name) = self.kernel(kernels::strided(
                        &self.jit,
                        MapOp::Scale(1.0),
                        &[out_len],
                        &[vec![1]],
                    ))?;
                    let ins = vec![self.src(ins[0])];
                    (Kind::Map { k, ins }, name)
                } else {
                    self.root[out_v.index()] = self.root[ins[0].index()];
                    return Ok(None);
                }
            }
            Op::Conv(c) => {
                let e = Epilogue {
                    bias: ins.len() > 2,
                    act: None,
                    gate: false,
                    residual: false,
                    post_act: None,
                    means: false,
                };
                self.conv(node, c, e, &out_shape)?
            }
            Op::FusedConv(f) => {
                let e = Epilogue {
                    bias: f.bias,
                    act: f.act,
                    gate: false,
                    residual: f.residual,
                    post_act: f.post_act,
                    means: false,
                };
                self.conv(node, &f.conv, e, &out_shape)?
            }
            Op::SeBlock(se) => {
                let [n, c, h, w] = dims4(&self.shape(ins[0], &node.name)?, &node.name)?;
                let cr = self
                    .shape(ins[1], &node.name)?
                    .first()
                    .copied()
                    .unwrap_or(0);
                let sh = SeShape { c, cr, hw: h * w };
                let (k, name) = self.kernel(kernels::se_block(&self.jit, sh, se, false))?;
                let split = [
                    self.kernel(kernels::mean_planes(&self.jit, sh.hw))?.0,
                    self.kernel(kernels::fc_rows(&self.jit, c, Some(se.act), se.bias1))?
                        .0,
                    self.kernel(kernels::se_scale_range(&self.jit, sh, se))?.0,
                ];
                let s = se.input_slots();
                let pick = |i: Option<usize>| i.map(|i| self.src(ins[i]));
                let srcs = [Some(0), Some(1), s.b1, Some(s.w2), s.b2, s.r].map(pick);
                (
                    Kind::Se {
                        k,
                        split,
                        ins: srcs,
                        n,
                        scratch: c + cr,
                        se: se.clone(),
                        sh,
                        pre_squeezed: false,
                    },
                    name,
                )
            }
            op if op.is_unary_elementwise() => {
                let (k, name) =
                    self.kernel(kernels::unary(&self.jit, excite_ir::Act::from_op(op)))?;
                (
                    Kind::Unary {
                        k,
                        x: self.src(ins[0]),
                    },
                    name,
                )
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div
                if self.shape(ins[0], &node.name)? == out_shape
                    && self.shape(ins[1], &node.name)? == out_shape =>
            {
                let op = match node.op {
                    Op::Add => BinOp::Add,
                    Op::Sub => BinOp::Sub,
                    Op::Mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let (k, name) = self.kernel(kernels::binary(&self.jit, op))?;
                (
                    Kind::Binary {
                        k,
                        a: self.src(ins[0]),
                        b: self.src(ins[1]),
                    },
                    name,
                )
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => {
                let op = match node.op {
                    Op::Add => BinOp::Add,
                    Op::Sub => BinOp::Sub,
                    Op::Mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let strides = [ins[0], ins[1]]
                    .iter()
                    .map(|&v| self.broadcast(v, &out_shape, &node.name))
                    .collect::<Result<Vec<_>, _>>()?;
                self.map(MapOp::Bin(op), &out_shape, &strides, ins)?
            }
            Op::Expand { .. } => {
                let strides = vec![self.broadcast(ins[0], &out_shape, &node.name)?];
                self.map(MapOp::Scale(1.0), &out_shape, &strides, &ins[..1])?
            }
            Op::BatchNorm { epsilon } => {
                if out_shape.len() < 2 || ins.len() != 5 {
                    return Err(unsupported(
                        &node.name,
                        "BatchNorm needs [N, C, ...] and 4 params",
                    ));
                }
                let mut per_channel = vec![0; out_shape.len()];
                per_channel[1] = 1;
                let mut strides = vec![row_major(&out_shape)];
                for &v in &ins[1..] {
                    if self.shape(v, &node.name)? != [out_shape[1]] {
                        return Err(unsupported(&node.name, "BatchNorm parameters must be [C]"));
                    }
                    strides.push(per_channel.clone());
                }
                self.map(MapOp::BatchNorm(*epsilon), &out_shape, &strides, ins)?
            }
            Op::Softmax { axis } => {
                let dims = self.shape(ins[0], &node.name)?;
                if *axis >= dims.len() {
                    return Err(unsupported(&node.name, "softmax axis out of range"));
                }
                let outer: usize = dims[..*axis].iter().product();
                let inner: usize = dims[axis + 1..].iter().product();
                let p = kernels::softmax(&self.jit, outer, dims[*axis], inner);
                let (k, name) = self.kernel(p)?;
                let ins = vec![self.src(ins[0])];
                (Kind::Map { k, ins }, name)
            }
            Op::MatMul => self.matmul(node, &out_shape)?,
            Op::GlobalAveragePool => self.mean(node, 2)?,
            Op::ReduceMean { axes, .. }
                if !axes.is_empty()
                    && axes.windows(2).all(|w| w[1] == w[0] + 1)
                    && axes.last().copied() == Some(self.shape(ins[0], &node.name)?.len() - 1) =>
            {
                self.mean(node, axes[0])?
            }
            Op::ReduceMean { axes, .. } => {
                let dims = self.shape(ins[0], &node.name)?;
                if axes.iter().any(|&a| a >= dims.len()) {
                    return Err(unsupported(&node.name, "ReduceMean axis out of range"));
                }
                let st = row_major(&dims);
                let pick = |red: bool| -> Vec<(usize, usize)> {
                    (0..dims.len())
                        .filter(|i| axes.contains(i) == red)
                        .map(|i| (dims[i], st[i]))
                        .collect()
                };
                let x_len = dims.iter().product();
                let p = kernels::reduce_mean(&self.jit, x_len, &pick(false), &pick(true));
                let (k, name) = self.kernel(p)?;
                let ins = vec![self.src(ins[0])];
                (Kind::Map { k, ins }, name)
            }
            Op::MaxPool(p) | Op::AveragePool(p) => {
                let [n, c, h, w] = dims4(&self.shape(ins[0], &node.name)?, &node.name)?;
                let max = matches!(node.op, Op::MaxPool(_));
                let (oh, ow) = (out_shape[2], out_shape[3]);
                let (k, name) = self.kernel(kernels::pool(&self.jit, max, p, (h, w), (oh, ow)))?;
                let (rdiv, cdiv) = if max {
                    (Vec::new(), Vec::new())
                } else {
                    (
                        kernels::pool_divisors(p, 0, h, oh),
                        kernels::pool_divisors(p, 1, w, ow),
                    )
                };
                (
                    Kind::Pool {
                        k,
                        x: self.src(ins[0]),
                        dims: [n * c, h, w, oh, ow],
                        rdiv,
                        cdiv,
                        row: kernels::pool_row_len(p, w, ow),
                    },
                    name,
                )
            }
            Op::Gemm(gm) => match self.gemm(node, gm, &out_shape)? {
                Some(k) => (k, "gemm (gemm crate)".to_string()),
                None => self.gemm_general(node, gm, &out_shape)?,
            },
            Op::Concat { axis } => {
                let mut inner = Vec::with_capacity(ins.len());
                for &v in ins {
                    let sh = self.shape(v, &node.name)?;
                    inner.push(sh.get(*axis..).map_or(0, |d| d.iter().product()));
                }
                let outer = out_shape.get(..*axis).map_or(1, |d| d.iter().product());
                let srcs = ins.iter().map(|&v| self.src(v)).collect();
                (
                    Kind::Concat {
                        ins: srcs,
                        outer,
                        inner,
                    },
                    "concat (native copies)".to_string(),
                )
            }
            op => {
                return Err(unsupported(
                    &node.name,
                    &format!("no CPU kernel for {} here", op.name()),
                ));
            }
        };
        Ok(Some(Step {
            node: node.name.clone(),
            op: node.op.name(),
            kernel,
            kind,
            out: self.root[out_v.index()],
            out_len,
        }))
    }

    fn conv(
        &mut self,
        node: &Node,
        c: &excite_ir::op::Conv,
        e: Epilogue,
        out: &[usize],
    ) -> Result<(Kind, String), CpuError> {
        let ins = &node.inputs;
        let weight = self.weight(ins[1]);
        let bias = if e.bias {
            self.weight(ins[2])
        } else {
            Some(Arc::new(Tensor::zeros(vec![0])))
        };
        let (Some(weight), Some(bias)) = (weight, bias) else {
            return self.conv_dyn(node, c, e, out);
        };
        let shape = self.conv_shape(node, c, out)?;
        let (kh, kw) = (shape.kh, shape.kw);
        let kind = if excite_cpu::winograd::eligible(&shape) {
            "winograd"
        } else if shape.is_depthwise() {
            "depthwise"
        } else if shape.is_pointwise() {
            "1x1 gemm"
        } else if shape.implicit_gemm() {
            "implicit gemm"
        } else {
            "im2col gemm"
        };
        let (epi, ename) = self.kernel(kernels::epilogue(&self.jit, out[2] * out[3], e))?;
        let ks = self.conv_ks(&shape)?;
        let r = e.residual.then(|| self.src(ins[2 + usize::from(e.bias)]));
        let conv = ConvKernel::new(shape, weight.data().to_vec(), bias.data().to_vec());
        let x = self.src(ins[0]);
        Ok((
            Kind::Conv {
                conv,
                epi,
                ks,
                epi_spec: e,
                x,
                r,
                gate: None,
                means_at: 0,
            },
            format!("conv {kh}x{kw} {kind} + {ename}"),
        ))
    }

    fn mean(&mut self, node: &Node, from_axis: usize) -> Result<(Kind, String), CpuError> {
        let shape = self.shape(node.inputs[0], &node.name)?;
        let hw: usize = shape[from_axis.min(shape.len())..].iter().product();
        let planes: usize = shape[..from_axis.min(shape.len())].iter().product();
        let (k, name) = self.kernel(kernels::mean_planes(&self.jit, hw))?;
        Ok((
            Kind::Mean {
                k,
                x: self.src(node.inputs[0]),
                planes,
            },
            name,
        ))
    }

    /// Native when `B` (and `C`, broadcast along rows) are weights: `B` is laid out `K × N`
    /// and scaled by `alpha`, `C` scaled by `beta`, once here.
    fn gemm(
        &self,
        node: &Node,
        gm: &excite_ir::op::Gemm,
        out: &[usize],
    ) -> Result<Option<Kind>, CpuError> {
        let ins = &node.inputs;
        let Some(b) = self.weight(ins[1]) else {
            return Ok(None);
        };
        let a_shape = self.shape(ins[0], &node.name)?;
        let (&[m, n], &[ar, ac], &[br, bc]) = (out, a_shape.as_slice(), b.shape()) else {
            return Ok(None);
        };
        let k = ac;
        if ar != m || (if gm.trans_b { (bc, br) } else { (br, bc) }) != (k, n) {
            return Ok(None);
        }
        let mut bk = vec![0f32; k * n];
        for p in 0..k {
            for j in 0..n {
                let v = if gm.trans_b {
                    b.data()[j * bc + p]
                } else {
                    b.data()[p * bc + j]
                };
                bk[p * n + j] = gm.alpha * v;
            }
        }
        let bias = match ins.get(2) {
            None => Vec::new(),
            Some(&cv) => match self.weight(cv) {
                Some(c) if c.numel() == n && c.shape().last() == Some(&n) => {
                    c.data().iter().map(|v| gm.beta * v).collect()
                }
                Some(c) if c.numel() == 1 => vec![gm.beta * c.data()[0]; n],
                _ => return Ok(None),
            },
        };
        Ok(Some(Kind::Gemm {
            a: self.src(ins[0]),
            mnk: (m, n, k),
            b: bk,
            bias,
        }))
    }

    /// The static shape of convolution `node` with attributes `c` and output shape `out`.
    fn conv_shape(
        &self,
        node: &Node,
        c: &excite_ir::op::Conv,
        out: &[usize],
    ) -> Result<ConvShape, CpuError> {
        let ins = &node.inputs;
        let [n, ch, h, w] = dims4(&self.shape(ins[0], &node.name)?, &node.name)?;
        let [m, _, kh, kw] = dims4(&self.shape(ins[1], &node.name)?, &node.name)?;
        let &[_, _, oh, ow] = out else {
            return Err(unsupported(&node.name, "convolution output must be 4-D"));
        };
        Ok(ConvShape {
            n,
            c: ch,
            h,
            w,
            m,
            oh,
            ow,
            kh,
            kw,
            attrs: c.clone(),
        })
    }

    /// Compiles the generated kernels a convolution needs besides its epilogue.
    fn conv_ks(&mut self, s: &ConvShape) -> Result<ConvKs, CpuError> {
        let p = s.pending(&self.jit);
        let mut ks = ConvKs::default();
        if let Some(k) = p.im2col {
            ks.im2col = Some(self.kernel(k)?.0);
        }
        if let Some(k) = p.taps {
            ks.taps = Some(self.kernel(k)?.0);
        }
        if let Some((i, o)) = p.winograd {
            ks.wino = Some((self.kernel(i)?.0, self.kernel(o)?.0));
        }
        if let Some(k) = p.depthwise {
            ks.depthwise = Some(self.kernel(k)?.0);
        }
        Ok(ks)
    }

    /// A [`kernels::strided`] step over `out` with the operands `ins`.
    fn map(
        &mut self,
        op: MapOp,
        out: &[usize],
        strides: &[Vec<usize>],
        ins: &[ValueId],
    ) -> Result<(Kind, String), CpuError> {
        let (k, name) = self.kernel(kernels::strided(&self.jit, op, out, strides))?;
        let ins = ins.iter().map(|&v| self.src(v)).collect();
        Ok((Kind::Map { k, ins }, name))
    }

    /// Strides reading value `v` broadcast (NumPy rules, right-aligned) to `out`.
    fn broadcast(&self, v: ValueId, out: &[usize], node: &str) -> Result<Vec<usize>, CpuError> {
        let shape = self.shape(v, node)?;
        broadcast_strides(&shape, out)
            .ok_or_else(|| unsupported(node, &format!("{shape:?} does not broadcast to {out:?}")))
    }

    /// MatMul with NumPy semantics: 1-D operands promoted, batch dimensions broadcast.
    fn matmul(&mut self, node: &Node, out: &[usize]) -> Result<(Kind, String), CpuError> {
        let (a, b) = (node.inputs[0], node.inputs[1]);
        let (sa, sb) = (self.shape(a, &node.name)?, self.shape(b, &node.name)?);
        if sa.is_empty() || sb.is_empty() {
            return Err(unsupported(
                &node.name,
                "MatMul operands must have rank >= 1",
            ));
        }
        let a2 = if sa.len() == 1 {
            vec![1, sa[0]]
        } else {
            sa.clone()
        };
        let b2 = if sb.len() == 1 {
            vec![sb[0], 1]
        } else {
            sb.clone()
        };
        let (ra, rb) = (a2.len(), b2.len());
        let (m, k, kb, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
        let (ba, bb) = (&a2[..ra - 2], &b2[..rb - 2]);
        let rank = ba.len().max(bb.len());
        let mut batch = vec![1; rank];
        for (i, d) in batch.iter_mut().enumerate() {
            let pick = |s: &[usize]| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
            let (x, y) = (pick(ba), pick(bb));
            *d = if x == 1 { y } else { x };
            if (x != 1 && y != 1 && x != y) || k != kb {
                return Err(unsupported(&node.name, "MatMul shapes do not match"));
            }
        }
        let batches: usize = batch.iter().product();
        if batches * m * n != out.iter().product::<usize>() {
            return Err(unsupported(&node.name, "MatMul output shape differs"));
        }
        let (sta, stb) = (
            broadcast_strides(ba, &batch).unwrap_or_default(),
            broadcast_strides(bb, &batch).unwrap_or_default(),
        );
        let offsets = (0..batches)
            .map(|i| {
                let (mut rem, mut oa, mut ob) = (i, 0, 0);
                for d in (0..rank).rev() {
                    let idx = rem % batch[d];
                    rem /= batch[d];
                    oa += idx * sta.get(d).copied().unwrap_or(0);
                    ob += idx * stb.get(d).copied().unwrap_or(0);
                }
                (oa * m * k, ob * k * n)
            })
            .collect();
        Ok((
            Kind::MatMul {
                a: self.src(a),
                b: self.src(b),
                mnk: (m, n, k),
                batches: offsets,
            },
            "matmul (gemm crate)".to_string(),
        ))
    }

    /// Gemm with a transposed A, a B that is not a constant, or a C of another shape: copies
    /// of `op(A)` and `alpha·op(B)` into scratch and `beta·C` into the output (generated
    /// strided kernels), then the product accumulated by the `gemm` crate.
    fn gemm_general(
        &mut self,
        node: &Node,
        gm: &excite_ir::op::Gemm,
        out: &[usize],
    ) -> Result<(Kind, String), CpuError> {
        let ins = &node.inputs;
        let (sa, sb) = (
            self.shape(ins[0], &node.name)?,
            self.shape(ins[1], &node.name)?,
        );
        let (&[m, n], &[a0, a1], &[b0, b1]) = (out, sa.as_slice(), sb.as_slice()) else {
            return Err(unsupported(&node.name, "Gemm needs 2-D operands"));
        };
        let k = if gm.trans_a { a0 } else { a1 };
        let (am, bk, bn) = (
            if gm.trans_a { a1 } else { a0 },
            if gm.trans_b { b1 } else { b0 },
            if gm.trans_b { b0 } else { b1 },
        );
        if am != m || bk != k || bn != n {
            return Err(unsupported(&node.name, "Gemm shapes do not match"));
        }
        // op(A) as m x k: element (i, p) at p * m + i when transposed.
        let ta = if gm.trans_a {
            let p = kernels::strided(&self.jit, MapOp::Scale(1.0), &[m, k], &[vec![1, m]]);
            Some(self.kernel(p)?.0)
        } else {
            None
        };
        let sbt = if gm.trans_b { vec![1, k] } else { vec![n, 1] };
        let p = kernels::strided(&self.jit, MapOp::Scale(gm.alpha), &[k, n], &[sbt]);
        let tb = self.kernel(p)?.0;
        let (c, tc) = match ins.get(2) {
            Some(&cv) => {
                let st = self.broadcast(cv, out, &node.name)?;
                let p = kernels::strided(&self.jit, MapOp::Scale(gm.beta), out, &[st]);
                (Some(self.src(cv)), Some(self.kernel(p)?.0))
            }
            None => (None, None),
        };
        Ok((
            Kind::GemmGeneral {
                a: self.src(ins[0]),
                b: self.src(ins[1]),
                c,
                ta,
                tb,
                tc,
                mnk: (m, n, k),
            },
            "gemm (strided copies + gemm crate)".to_string(),
        ))
    }

    /// A convolution whose weight or bias is computed at run time.
    fn conv_dyn(
        &mut self,
        node: &Node,
        c: &excite_ir::op::Conv,
        e: Epilogue,
        out: &[usize],
    ) -> Result<(Kind, String), CpuError> {
        let ins = &node.inputs;
        let shape = self.conv_shape(node, c, out)?;
        let (kh, kw) = (shape.kh, shape.kw);
        let (epi, ename) = self.kernel(kernels::epilogue(&self.jit, out[2] * out[3], e))?;
        let ks = self.conv_ks(&shape)?;
        let b = e.bias.then(|| self.src(ins[2]));
        let r = e.residual.then(|| self.src(ins[2 + usize::from(e.bias)]));
        Ok((
            Kind::ConvDyn {
                shape,
                epi,
                ks,
                x: self.src(ins[0]),
                w: self.src(ins[1]),
                b,
                r,
            },
            format!("conv {kh}x{kw} (weights at run time) + {ename}"),
        ))
    }
}

fn dims4(s: &[usize], node: &str) -> Result<[usize; 4], CpuError> {
    <[usize; 4]>::try_from(s).map_err(|_| CpuError::Unsupported {
        node: node.to_string(),
        msg: format!("expected a 4-D tensor, got shape {s:?}"),
    })
}

/// The convolution part of a conv step's kernel description (`"conv 1x1 ... + epilogue..."`).
fn conv_part(kernel: &str) -> String {
    kernel.split(" + ").next().unwrap_or("conv").to_string()
}

/// Row-major strides of `shape`.
fn row_major(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// Strides that read a row-major tensor of shape `from` broadcast (right-aligned, NumPy rules)
/// to `to`; `None` when it does not broadcast.
fn broadcast_strides(from: &[usize], to: &[usize]) -> Option<Vec<usize>> {
    let lead = to.len().checked_sub(from.len())?;
    let st = row_major(from);
    (0..to.len())
        .map(|i| match i.checked_sub(lead) {
            None => Some(0),
            Some(j) if from[j] == to[i] => Some(if to[i] == 1 { 0 } else { st[j] }),
            Some(j) if from[j] == 1 => Some(0),
            Some(_) => None,
        })
        .collect()
}

/// A typed refusal naming the node.
fn unsupported(node: &str, msg: &str) -> CpuError {
    CpuError::Unsupported {
        node: node.to_string(),
        msg: msg.to_string(),
    }
}
