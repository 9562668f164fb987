//! Lowering: each node of a batch-resolved graph becomes one [`Step`] — a generated kernel, a
//! GEMM-based convolution, a pool, a GEMM, a concat by copies — or, for the rarer ops without
//! a native kernel (Softmax, Expand, MatMul, BatchNorm, broadcasting binaries, ...), a call to
//! the reference interpreter's `eval_op` (correct by construction, slower). Flatten, Reshape, Identity and Dropout are views:
//! their output aliases the input's buffer and no step runs.

use std::collections::HashMap;
use std::sync::Arc;

use excite_cpu::conv::{ConvKernel, ConvShape};
use excite_cpu::jit::sgemm;
use excite_cpu::kernels::{self, BinOp, Epilogue, SeShape};
use excite_cpu::pool::PoolKind;
use excite_cpu::{Jit, Pending};
use excite_ir::op::Pool;
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
    Conv {
        conv: ConvKernel,
        epi: usize,
        epi_spec: Epilogue,
        x: Src,
        r: Option<Src>,
        gate: Option<Box<SeGate>>,
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
    Pool {
        attrs: Pool,
        kind: PoolKind,
        x: Src,
        dims: [usize; 5],
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
    Fallback {
        op: Op,
        ins: Vec<(Src, Vec<usize>)>,
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
            let (gk, gname) = self.kernel(kernels::se_gate(&self.jit, c_in, *sh, se))?;
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
            };
            let r = if se.residual { r.clone() } else { None };
            let conv_part = steps[p]
                .kernel
                .split(" + ")
                .next()
                .unwrap_or("conv")
                .to_string();
            let conv_node = steps[p].node.clone();
            let Kind::Conv { conv, x: cx, .. } = std::mem::replace(
                &mut steps[p].kind,
                Kind::Fallback {
                    op: Op::Identity,
                    ins: Vec::new(),
                },
            ) else {
                continue;
            };
            let se_step = &mut steps[j];
            se_step.kernel = format!("{conv_part} + {gname} + {ename}");
            se_step.node = format!("{conv_node} + {}", se_step.node);
            se_step.op = "FusedConv+SeBlock";
            se_step.kind = Kind::Conv {
                conv,
                epi: ek,
                epi_spec: spec,
                x: cx,
                r,
                gate: Some(Box::new(gate)),
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
            if let Kind::Conv {
                conv,
                epi,
                epi_spec,
                ..
            } = &mut steps[p].kind
            {
                let spec = Epilogue {
                    means: true,
                    ..*epi_spec
                };
                let hw = conv.shape.oh * conv.shape.ow;
                let (k, name) = self.kernel(kernels::epilogue(&self.jit, hw, spec))?;
                means_len = means_len.max(conv.shape.n * conv.shape.m);
                (*epi, *epi_spec) = (k, spec);
                let conv_part = steps[p]
                    .kernel
                    .split(" + ")
                    .next()
                    .unwrap_or("conv")
                    .to_string();
                steps[p].kernel = format!("{conv_part} + {name}");
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
                    self.fallback(node)?
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
            Op::GlobalAveragePool => self.mean(node, 2)?,
            Op::ReduceMean { axes, .. }
                if !axes.is_empty()
                    && axes.windows(2).all(|w| w[1] == w[0] + 1)
                    && axes.last().copied() == Some(self.shape(ins[0], &node.name)?.len() - 1) =>
            {
                self.mean(node, axes[0])?
            }
            Op::MaxPool(p) | Op::AveragePool(p) => {
                let [n, c, h, w] = dims4(&self.shape(ins[0], &node.name)?, &node.name)?;
                let kind = if matches!(node.op, Op::MaxPool(_)) {
                    PoolKind::Max
                } else {
                    PoolKind::Average
                };
                let name = format!("{kind:?}Pool (native)").to_lowercase();
                let dims = [n * c, h, w, out_shape[2], out_shape[3]];
                (
                    Kind::Pool {
                        attrs: p.clone(),
                        kind,
                        x: self.src(ins[0]),
                        dims,
                    },
                    name,
                )
            }
            Op::Gemm(gm) if !gm.trans_a => match self.gemm(node, gm, &out_shape)? {
                Some(k) => (k, "gemm (gemm crate)".to_string()),
                None => self.fallback(node)?,
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
            _ => self.fallback(node)?,
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
        let [n, ch, h, w] = dims4(&self.shape(ins[0], &node.name)?, &node.name)?;
        let [m, _, kh, kw] = dims4(&self.shape(ins[1], &node.name)?, &node.name)?;
        let weight = self.weight(ins[1]);
        let bias = if e.bias {
            self.weight(ins[2])
        } else {
            Some(Arc::new(Tensor::zeros(vec![0])))
        };
        let (Some(weight), Some(bias)) = (weight, bias) else {
            return self.fallback(node);
        };
        let shape = ConvShape {
            n,
            c: ch,
            h,
            w,
            m,
            oh: out[2],
            ow: out[3],
            kh,
            kw,
            attrs: c.clone(),
        };
        let kind = if excite_cpu::winograd::eligible(&shape) {
            "winograd"
        } else if shape.is_depthwise() {
            "depthwise"
        } else if shape.is_pointwise() {
            "1x1 gemm"
        } else {
            "im2col gemm"
        };
        let (epi, ename) = self.kernel(kernels::epilogue(&self.jit, out[2] * out[3], e))?;
        let r = e.residual.then(|| self.src(ins[2 + usize::from(e.bias)]));
        let conv = ConvKernel::new(shape, weight.data().to_vec(), bias.data().to_vec());
        let x = self.src(ins[0]);
        Ok((
            Kind::Conv {
                conv,
                epi,
                epi_spec: e,
                x,
                r,
                gate: None,
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

    fn fallback(&self, node: &Node) -> Result<(Kind, String), CpuError> {
        let ins = node
            .inputs
            .iter()
            .map(|&v| Ok((self.src(v), self.shape(v, &node.name)?)))
            .collect::<Result<_, CpuError>>()?;
        Ok((
            Kind::Fallback {
                op: node.op.clone(),
                ins,
            },
            format!("{} (interpreter)", node.op.name()),
        ))
    }
}

fn dims4(s: &[usize], node: &str) -> Result<[usize; 4], CpuError> {
    <[usize; 4]>::try_from(s).map_err(|_| CpuError::Unsupported {
        node: node.to_string(),
        msg: format!("expected a 4-D tensor, got shape {s:?}"),
    })
}
