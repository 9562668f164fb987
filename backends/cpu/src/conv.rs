//! Convolutions: per image and group a GEMM `Y[Mg × OHW] = W[Mg × K] · col[K × OHW]` on the
//! `gemm` crate's micro-kernels (the weight tensor `[M, C/g, kH, kW]` already is `W` row-major,
//! so it is used in place), with `col` built by im2col — or the input itself for 1x1 stride-1
//! unpadded convolutions, or never written at all for an implicit GEMM
//! ([`ConvShape::implicit_gemm`]: the packed micro-kernel reads each tap from the phase-split
//! padded input). Depthwise convolutions (one input and one output channel per group)
//! use a direct loop instead, and 3x3 stride-1 convolutions with enough output tiles run by
//! Winograd F(2x2, 3x3) ([`crate::winograd`]). Each image's output then goes through the
//! generated epilogue kernel (bias, activation, residual add, post-activation). On several
//! threads an ungrouped convolution runs one task per block of output channels — its rows of
//! the GEMM, then the epilogue on them while they are still in cache.

use excite_ir::op::Conv;

use rayon::prelude::*;

use crate::error::KernelError;
use crate::jit::{Arg, Isa, Jit, Kernel, PackedWeight, Par, Pending, Rhs, packed_gemm, sgemm};
use crate::kernels::{Epilogue, TapLayout};
use crate::winograd;

/// Static shape of one convolution: input `[n, c, h, w]`, output `[n, m, oh, ow]`, kernel
/// `kh × kw`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub attrs: Conv,
}

impl ConvShape {
    fn cg(&self) -> usize {
        self.c / self.attrs.group
    }
    fn mg(&self) -> usize {
        self.m / self.attrs.group
    }
    /// Rows of `col` (and columns of `W`): `C/g · kH · kW`.
    pub fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    pub fn is_pointwise(&self) -> bool {
        let a = &self.attrs;
        self.kh == 1 && self.kw == 1 && a.strides == [1, 1] && a.pads == [0; 4]
    }
    pub fn is_depthwise(&self) -> bool {
        self.attrs.group > 1 && self.cg() == 1 && self.mg() == 1
    }
    /// Whether one image's GEMM is much wider than tall (at least 32 output columns per output
    /// channel: ResNet's stem and its first 64-channel 1x1 convs). On several threads such a
    /// GEMM runs on the `gemm` crate's own parallelism, which splits the columns and packs the
    /// large right-hand side once, instead of one task per block of output channels each
    /// packing all of it (stem on 2 threads: 1.35-1.43 -> 1.13-1.20 ms).
    pub fn is_wide(&self) -> bool {
        self.oh * self.ow >= 32 * self.m
    }
    /// Whether the GEMM of an ungrouped, non-depthwise convolution runs on the crate's own
    /// micro-kernel over weights packed once ([`packed_gemm`]): K >= 256 and fewer than 1024
    /// output pixels per image (512 with AVX2), or an implicit GEMM. With AVX-512 it ran
    /// 5-45% faster than the `gemm` crate there (1 and 2 threads; the crate loses a quarter of
    /// its speed when N is not a multiple of 16, e.g. layer 4's 49 pixels), and lost where K
    /// is short (K = 64: 175 vs 248 GFLOP/s) or the image wide. The AVX2 kernel (Zen 3) won
    /// on layer 3's 1x1 expansions and downsamples, tied on layer 4 and lost 5-15% on
    /// layer 2's 784 pixels (BENCHMARKS.md).
    pub fn packs_weight(&self) -> bool {
        self.attrs.group == 1
            && self.packed_pixel_limit().is_some_and(|limit| {
                self.implicit_gemm() || (self.k() >= 256 && self.oh * self.ow < limit)
            })
    }
    /// Whether an ungrouped convolution that is neither pointwise nor Winograd runs as an
    /// implicit GEMM: [`packed_gemm`] reading its taps straight from the phase-split padded
    /// input ([`crate::kernels::tap_split`], [`Rhs::Taps`]) instead of an im2col matrix
    /// (where [`packed_gemm`] runs; elsewhere im2col and the `gemm` crate). ResNet-50 batch 1
    /// with AVX-512: stem and strided 3x3 convs 10-30% faster, 1x1 stride-2 convs slower, so
    /// those keep im2col; with AVX2 the stem 14% faster, the others even (BENCHMARKS.md,
    /// "implicit GEMM").
    pub fn implicit_gemm(&self) -> bool {
        self.attrs.group == 1
            && self.kh * self.kw > 1
            && !winograd::eligible(self)
            && self.packed_pixel_limit().is_some()
    }
    /// The [`packed_gemm`] micro-kernel's policy on this CPU, `None` where none suits this
    /// output size: the output pixels per image under which a 1x1 or im2col product with
    /// K >= 256 runs on it — 1024 with AVX-512 (which vectorizes output channels), 512 with
    /// AVX2 — and the AVX2 one (16 pixels per tile) only from 16 output pixels (on the
    /// classifier's 1-pixel FC it took 1.1 ms where the crate took 0.54).
    fn packed_pixel_limit(&self) -> Option<usize> {
        match Isa::detect()? {
            Isa::Avx512 => Some(1024),
            Isa::Avx2 => (self.oh * self.ow >= 16).then_some(512),
        }
    }
    /// A name part identifying this geometry: sizes, kernel, strides, pads, dilations.
    pub fn key(&self) -> String {
        let a = &self.attrs;
        format!(
            "{}x{}_to_{}x{}_k{}x{}_s{}x{}_p{}x{}_d{}x{}",
            self.h,
            self.w,
            self.oh,
            self.ow,
            self.kh,
            self.kw,
            a.strides[0],
            a.strides[1],
            a.pads[0],
            a.pads[1],
            a.dilations[0],
            a.dilations[1]
        )
    }
    /// The generated kernels this convolution needs besides its epilogue: im2col unless it
    /// is pointwise, depthwise or Winograd; the Winograd transforms; the depthwise kernel.
    pub fn pending(&self, jit: &Jit) -> ConvPending {
        let wino = winograd::eligible(self);
        let implicit = self.implicit_gemm();
        ConvPending {
            im2col: (!(self.is_pointwise() || self.is_depthwise() || wino || implicit))
                .then(|| crate::kernels::im2col(jit, self)),
            taps: implicit.then(|| crate::kernels::tap_split(jit, self)),
            winograd: wino.then(|| {
                (
                    crate::kernels::winograd_input(jit, self),
                    crate::kernels::winograd_output(jit, self),
                )
            }),
            depthwise: self
                .is_depthwise()
                .then(|| crate::kernels::depthwise(jit, self)),
        }
    }
    /// How many images [`ConvKernel::run`] works on side by side on `threads` threads: one
    /// per thread when the batch has at least two images, else one image on all threads.
    pub fn image_workers(&self, threads: usize) -> usize {
        if threads > 1 && self.n > 1 {
            threads.min(self.n)
        } else {
            1
        }
    }
    /// Scratch elements `run` needs on `threads` threads: one image's worth per
    /// [`Self::image_workers`]; for Winograd one per thread (one pipeline per thread when the
    /// threads are far apart, [`winograd::run_image`]).
    pub fn scratch_len_on(&self, threads: usize) -> usize {
        if winograd::eligible(self) {
            return winograd::scratch_len_on(self, threads);
        }
        self.scratch_len() * self.image_workers(threads)
    }
    /// Scratch elements one image needs for im2col (or Winograd's transformed tiles).
    pub fn scratch_len(&self) -> usize {
        if winograd::eligible(self) {
            winograd::scratch_len(self)
        } else if self.is_pointwise() || self.is_depthwise() {
            0
        } else if self.implicit_gemm() {
            self.cg() * TapLayout::of(self).plane()
        } else {
            self.k() * self.oh * self.ow
        }
    }
}

/// The generated kernels a convolution needs besides its epilogue, still to be compiled
/// ([`ConvShape::pending`]).
#[derive(Debug)]
pub struct ConvPending {
    pub im2col: Option<Pending>,
    pub taps: Option<Pending>,
    pub winograd: Option<(Pending, Pending)>,
    pub depthwise: Option<Pending>,
}

/// A convolution's generated kernels compiled on their own (for running a [`ConvKernel`]
/// outside a compiled program, as the tests do); the runtime compiles them into its
/// program's JIT instead.
#[derive(Debug)]
pub struct ConvKernelSet {
    epilogue: Kernel,
    im2col: Option<Kernel>,
    taps: Option<Kernel>,
    winograd: Option<(Kernel, Kernel)>,
    depthwise: Option<Kernel>,
}

impl ConvKernelSet {
    /// Compiles the kernels `s` needs, with the epilogue `e`.
    pub fn compile(s: &ConvShape, e: Epilogue) -> Result<ConvKernelSet, KernelError> {
        let mut jit = Jit::new()?;
        let hw = s.oh * s.ow;
        let epi = jit.add(crate::kernels::epilogue(&jit, hw, e))?;
        let p = s.pending(&jit);
        let mut add = |p: Option<Pending>| p.map(|p| jit.add(p)).transpose();
        let im2col = add(p.im2col)?;
        let taps = add(p.taps)?;
        let depthwise = add(p.depthwise)?;
        let winograd = match p.winograd {
            Some((i, o)) => Some((jit.add(i)?, jit.add(o)?)),
            None => None,
        };
        let mut ks: Vec<Option<Kernel>> = jit.finish()?.into_iter().map(Some).collect();
        let mut take = |i: usize| {
            ks.get_mut(i)
                .and_then(Option::take)
                .ok_or_else(|| KernelError::Call {
                    kernel: "conv".into(),
                    msg: "kernel missing after compilation".into(),
                })
        };
        Ok(ConvKernelSet {
            epilogue: take(epi)?,
            im2col: im2col.map(&mut take).transpose()?,
            taps: taps.map(&mut take).transpose()?,
            winograd: match winograd {
                Some((i, o)) => Some((take(i)?, take(o)?)),
                None => None,
            },
            depthwise: depthwise.map(&mut take).transpose()?,
        })
    }

    /// The kernels, borrowed for [`ConvKernel::run`].
    pub fn kernels(&self) -> ConvKernels<'_> {
        ConvKernels {
            epilogue: &self.epilogue,
            im2col: self.im2col.as_ref(),
            taps: self.taps.as_ref(),
            winograd: self.winograd.as_ref().map(|(i, o)| (i, o)),
            depthwise: self.depthwise.as_ref(),
        }
    }
}

/// The generated kernels a convolution runs: its epilogue; the im2col kernel
/// ([`crate::kernels::im2col`]) unless it is pointwise, depthwise, Winograd or an implicit
/// GEMM, whose input goes through [`crate::kernels::tap_split`] instead; the Winograd
/// input and output transforms when it is Winograd; the direct kernel when it is depthwise.
#[derive(Clone, Copy, Debug)]
pub struct ConvKernels<'a> {
    pub epilogue: &'a Kernel,
    pub im2col: Option<&'a Kernel>,
    pub taps: Option<&'a Kernel>,
    pub winograd: Option<(&'a Kernel, &'a Kernel)>,
    pub depthwise: Option<&'a Kernel>,
}

/// What a convolution's epilogue reads besides its output: the residual `r` (`n·M·OH·OW`) and
/// an SE block's gates `g` (`n·M`), each empty when absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reads<'a> {
    pub r: &'a [f32],
    pub g: &'a [f32],
}

impl<'a> Reads<'a> {
    /// Image `img`'s part (`mohw` residual and `m` gate values per image).
    fn image(self, img: usize, mohw: usize, m: usize) -> Reads<'a> {
        let part = |v: &'a [f32], len: usize| v.get(img * len..(img + 1) * len).unwrap_or(&[]);
        Reads {
            r: part(self.r, mohw),
            g: part(self.g, m),
        }
    }
}

/// One convolution node, ready to run: shape, weights and bias (the epilogue kernel is passed
/// to [`ConvKernel::run`]).
#[derive(Clone, Debug)]
pub struct ConvKernel {
    pub shape: ConvShape,
    pub weight: Vec<f32>,
    /// Empty when the node has no bias.
    pub bias: Vec<f32>,
    /// Winograd-transformed weights when [`winograd::eligible`].
    wino: Option<winograd::Weights>,
    /// The weight packed for the crate's own AVX-512 micro-kernel ([`packed_gemm`]) when
    /// [`ConvShape::packs_weight`] and the CPU has AVX-512F; else the `gemm` crate runs it.
    packed: Option<PackedWeight>,
    /// Each im2col row's offset in the phase-split input when [`ConvShape::implicit_gemm`].
    taps: Vec<usize>,
}

impl ConvKernel {
    /// Takes the weight `[M, C/g, kH, kW]` and bias (empty for none); pre-transforms the
    /// weights when the convolution runs by Winograd.
    pub fn new(shape: ConvShape, weight: Vec<f32>, bias: Vec<f32>) -> ConvKernel {
        let wino = (winograd::eligible(&shape) && weight.len() >= shape.m * shape.k())
            .then(|| winograd::Weights::new(&shape, &weight));
        let packed = (wino.is_none() && shape.packs_weight())
            .then(|| PackedWeight::new(&weight, shape.m, shape.k()))
            .flatten();
        let taps = if packed.is_some() && shape.implicit_gemm() {
            TapLayout::of(&shape).offsets(&shape)
        } else {
            Vec::new()
        };
        ConvKernel {
            shape,
            weight,
            bias,
            wino,
            packed,
            taps,
        }
    }

    /// Whether the convolution runs as an implicit GEMM ([`ConvShape::implicit_gemm`]).
    pub fn is_implicit(&self) -> bool {
        !self.taps.is_empty()
    }

    /// The right-hand side of this convolution's GEMM for one group's input `xg`: `xg` itself
    /// (pointwise), its taps through [`tap_split`] into `col`, or its im2col matrix in `col`.
    fn rhs<'c>(
        &'c self,
        k: ConvKernels<'_>,
        xg: &'c [f32],
        col: &'c mut [f32],
        threads: usize,
    ) -> Result<Rhs<'c>, KernelError> {
        let s = &self.shape;
        let ohw = s.oh * s.ow;
        if s.is_pointwise() {
            return Ok(Rhs::Rows { data: xg, rs: ohw });
        }
        let scratch = |need: usize| KernelError::Call {
            kernel: "conv".into(),
            msg: format!("scratch too short ({} < {need})", col.len()),
        };
        if self.is_implicit() {
            let lay = TapLayout::of(s);
            let need = s.cg() * lay.plane();
            if col.len() < need {
                return Err(scratch(need));
            }
            let out = &mut col[..need];
            tap_split(s, k.taps, xg, out, threads)?;
            return Ok(Rhs::Taps {
                data: out,
                offs: &self.taps,
                width: s.ow,
                step: lay.step(s),
            });
        }
        let need = s.k() * ohw;
        if col.len() < need {
            return Err(scratch(need));
        }
        let col = &mut col[..need];
        im2col(s, k.im2col, xg, col, threads)?;
        Ok(Rhs::Rows { data: col, rs: ohw })
    }

    /// Whether the GEMM runs on [`packed_gemm`] (weights packed at compile time).
    pub fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Whether this convolution runs by Winograd F(2x2, 3x3).
    pub fn is_winograd(&self) -> bool {
        self.wino.is_some()
    }

    /// `y = epilogue(conv(x))` with the epilogue's other operands `reads` (residual and SE
    /// gates, each empty when the node has none); `means` (empty, or `n * m`) receives each
    /// output channel's mean when the epilogue computes them.
    /// `par`: the threads to use (a plain `usize` will do) and whether they share a cache.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        k: ConvKernels<'_>,
        x: &[f32],
        reads: Reads<'_>,
        y: &mut [f32],
        means: &mut [f32],
        col: &mut [f32],
        par: impl Into<Par>,
    ) -> Result<(), KernelError> {
        let par = par.into();
        let threads = par.threads;
        let s = &self.shape;
        let (chw, ohw) = (s.c * s.h * s.w, s.oh * s.ow);
        let mohw = s.m * ohw;
        if x.len() < s.n * chw || y.len() < s.n * mohw || self.weight.len() < s.m * s.k() {
            return Err(KernelError::Call {
                kernel: "conv".into(),
                msg: format!("buffers too short for {s:?}"),
            });
        }
        let short = |v: &[f32], need: usize| !v.is_empty() && v.len() < need;
        if short(reads.r, s.n * mohw) || short(reads.g, s.n * s.m) || short(means, s.n * s.m) {
            return Err(KernelError::Call {
                kernel: "conv".into(),
                msg: "residual, gates or means buffer too short".into(),
            });
        }
        let workers = s.image_workers(threads);
        let one = s.scratch_len();
        if col.len() < one * workers {
            return Err(KernelError::Call {
                kernel: "conv".into(),
                msg: "scratch too short".into(),
            });
        }
        let mean_of = |means: &mut [f32], img: usize| -> (usize, usize) {
            if means.is_empty() {
                (0, 0)
            } else {
                (img * s.m, (img + 1) * s.m)
            }
        };
        // With at least as many images as threads, whole images run side by side, one
        // single-threaded worker per group of images with its own scratch (no synchronisation
        // inside an image); the images left over run one at a time on all threads.
        let per = if workers > 1 { s.n / workers } else { 0 };
        let together = per * workers;
        if together > 0 {
            let (y_par, _) = y.split_at_mut(together * mohw);
            let mlen = if means.is_empty() { 0 } else { per * s.m };
            let mut jobs = Vec::with_capacity(workers);
            let (mut ys, mut ms, mut cs) = (y_par, &mut means[..mlen * workers], &mut col[..]);
            for wi in 0..workers {
                let (yw, yr) = ys.split_at_mut(per * mohw);
                let (mw, mr) = ms.split_at_mut(mlen);
                let (cw, cr) = cs.split_at_mut(one);
                jobs.push((wi, yw, mw, cw));
                (ys, ms, cs) = (yr, mr, cr);
            }
            jobs.into_par_iter().try_for_each(|(wi, yw, mw, cw)| {
                for i in 0..per {
                    let img = wi * per + i;
                    let yi = &mut yw[i * mohw..(i + 1) * mohw];
                    let mi = if mw.is_empty() {
                        &mut []
                    } else {
                        &mut mw[i * s.m..(i + 1) * s.m]
                    };
                    self.image(k, img, x, reads, yi, mi, cw, Par::from(1))?;
                }
                Ok(())
            })?;
        }
        for img in together..s.n {
            let yi = &mut y[img * mohw..(img + 1) * mohw];
            let (m0, m1) = mean_of(means, img);
            self.image(k, img, x, reads, yi, &mut means[m0..m1], col, par)?;
        }
        Ok(())
    }

    /// Image `img` of `x` (and of the epilogue's `reads`) into its output planes `yi` and
    /// channel means `mi` (empty when not computed).
    #[allow(clippy::too_many_arguments)]
    fn image(
        &self,
        k: ConvKernels<'_>,
        img: usize,
        x: &[f32],
        reads: Reads<'_>,
        yi: &mut [f32],
        mi: &mut [f32],
        col: &mut [f32],
        par: Par,
    ) -> Result<(), KernelError> {
        let threads = par.threads;
        let s = &self.shape;
        let (chw, mohw) = (s.c * s.h * s.w, s.m * s.oh * s.ow);
        let xi = &x[img * chw..(img + 1) * chw];
        let ri = reads.image(img, mohw, s.m);
        if let Some(wino) = &self.wino {
            let after = |c0: usize, yc: &mut [f32], mc: &mut [f32]| {
                self.epilogue_chunk(k.epilogue, c0, yc, ri, mc)
            };
            let wk = k.winograd.ok_or_else(|| KernelError::Call {
                kernel: "conv".into(),
                msg: "no Winograd transform kernels for a Winograd convolution".into(),
            })?;
            return winograd::run_image(s, wk, wino, xi, yi, mi, col, par, &after);
        } else if s.is_depthwise() {
            depthwise(s, k.depthwise, xi, &self.weight, yi, threads)?;
        } else if threads > 1 && s.attrs.group == 1 && (!s.is_wide() || self.is_implicit()) {
            return self.split_image(k, xi, yi, ri, mi, col, par);
        } else {
            self.gemm_image(k, xi, yi, col, par)?;
        }
        self.epilogue(k.epilogue, yi, ri, mi, threads)
    }

    /// One image of an ungrouped convolution on several threads: im2col (by rows, in
    /// parallel), then one task per block of output channels running a single-threaded GEMM
    /// for its rows and, while they are still in cache, the epilogue on them. Splitting the
    /// rows (not the columns) keeps each task's output and its epilogue's channel planes
    /// contiguous.
    #[allow(clippy::too_many_arguments)]
    fn split_image(
        &self,
        k: ConvKernels<'_>,
        xi: &[f32],
        yi: &mut [f32],
        ri: Reads<'_>,
        means: &mut [f32],
        col: &mut [f32],
        par: Par,
    ) -> Result<(), KernelError> {
        let threads = par.threads;
        let s = &self.shape;
        let (ohw, kk) = ((s.oh * s.ow).max(1), s.k());
        let rhs = self.rhs(k, xi, col, threads)?;
        // Rows per task: an equal share per thread, rounded up to the micro-kernel's rows (16
        // for the `gemm` crate, a panel of 32 or 6 rows for `packed_gemm`).
        let unit = self.packed.as_ref().map_or(16, PackedWeight::panel);
        let per = s.m.div_ceil(threads).next_multiple_of(unit).min(s.m).max(1);
        let task = |ci: usize, yc: &mut [f32], mc: &mut [f32]| {
            let c0 = ci * per;
            let cn = yc.len() / ohw;
            match &self.packed {
                Some(pw) => {
                    let panels = c0 / pw.panel()..(c0 + cn).div_ceil(pw.panel());
                    let one = Par { threads: 1, ..par };
                    packed_gemm(pw, panels, ohw, yc, ohw, rhs, false, one)?;
                }
                None => {
                    let Rhs::Rows { data, rs } = rhs else {
                        return Err(KernelError::Call {
                            kernel: "conv".into(),
                            msg: "an implicit GEMM without packed weights".into(),
                        });
                    };
                    let w = &self.weight[c0 * kk..(c0 + cn) * kk];
                    sgemm((cn, ohw, kk), yc, ohw, w, kk, data, rs, false, 1)?;
                }
            }
            self.epilogue_chunk(k.epilogue, c0, yc, ri, mc)
        };
        channel_blocks(&mut yi[..s.m * ohw], means, (per, ohw), true, task)
    }

    /// The epilogue on the channels `c0..` whose planes are `yc` (bias and the image's reads
    /// `ri` indexed from its channel 0).
    fn epilogue_chunk(
        &self,
        epilogue: &Kernel,
        c0: usize,
        yc: &mut [f32],
        ri: Reads<'_>,
        mc: &mut [f32],
    ) -> Result<(), KernelError> {
        let ohw = (self.shape.oh * self.shape.ow).max(1);
        let cn = yc.len() / ohw;
        let b = self.bias.get(c0..c0 + cn).unwrap_or(&[]);
        let r = ri.r.get(c0 * ohw..(c0 + cn) * ohw).unwrap_or(&[]);
        let g = ri.g.get(c0..c0 + cn).unwrap_or(&[]);
        epilogue.call(
            cn,
            &mut [
                Arg::Out(yc),
                Arg::In(b),
                Arg::In(r),
                Arg::Out(mc),
                Arg::In(g),
            ],
        )
    }

    /// The epilogue over one image, split into channel chunks across the pool's threads;
    /// `means` (empty, or one per output channel) receives each channel's mean.
    fn epilogue(
        &self,
        epilogue: &Kernel,
        yi: &mut [f32],
        ri: Reads<'_>,
        means: &mut [f32],
        threads: usize,
    ) -> Result<(), KernelError> {
        let s = &self.shape;
        let ohw = (s.oh * s.ow).max(1);
        let per = s.m.div_ceil(threads.max(1) * 4).max(1);
        let run = |ci: usize, yc: &mut [f32], mc: &mut [f32]| {
            self.epilogue_chunk(epilogue, ci * per, yc, ri, mc)
        };
        if threads < 2 || s.m < 2 {
            run(0, yi, means)
        } else {
            channel_blocks(yi, means, (per, ohw), true, run)
        }
    }

    fn gemm_image(
        &self,
        k: ConvKernels<'_>,
        xi: &[f32],
        yi: &mut [f32],
        col: &mut [f32],
        par: Par,
    ) -> Result<(), KernelError> {
        let threads = par.threads;
        let s = &self.shape;
        let (hw, ohw, kk, cg, mg) = (s.h * s.w, s.oh * s.ow, s.k(), s.cg(), s.mg());
        for g in 0..s.attrs.group {
            let xg = &xi[g * cg * hw..(g + 1) * cg * hw];
            let rhs = self.rhs(k, xg, col, threads)?;
            let yg = &mut yi[g * mg * ohw..(g + 1) * mg * ohw];
            match (&self.packed, rhs) {
                // Ungrouped (ConvShape::packs_weight): the whole weight.
                (Some(pw), rhs) => {
                    let panels = 0..mg.div_ceil(pw.panel());
                    packed_gemm(pw, panels, ohw, yg, ohw, rhs, false, par)?
                }
                (None, Rhs::Rows { data, rs }) => {
                    let w = &self.weight[g * mg * kk..(g + 1) * mg * kk];
                    sgemm((mg, ohw, kk), yg, ohw, w, kk, data, rs, false, threads)?;
                }
                (None, Rhs::Taps { .. }) => {
                    return Err(KernelError::Call {
                        kernel: "conv".into(),
                        msg: "an implicit GEMM without packed weights".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Runs `f(block, planes, means)` over `y` in blocks of `per` channel planes of `plane` floats
/// each, with `means` (empty, or one per channel) in the matching blocks of `per`: on the
/// rayon pool when `parallel`, else one block after another.
pub(crate) fn channel_blocks(
    y: &mut [f32],
    means: &mut [f32],
    (per, plane): (usize, usize),
    parallel: bool,
    f: impl Fn(usize, &mut [f32], &mut [f32]) -> Result<(), KernelError> + Sync + Send,
) -> Result<(), KernelError> {
    let per = per.max(1);
    let len = (per * plane).max(1);
    if !parallel {
        let mut ms = means.chunks_mut(per);
        for (bi, yb) in y.chunks_mut(len).enumerate() {
            f(bi, yb, ms.next().unwrap_or_default())?;
        }
        Ok(())
    } else if means.is_empty() {
        y.par_chunks_mut(len)
            .enumerate()
            .try_for_each(|(bi, yb)| f(bi, yb, &mut []))
    } else {
        y.par_chunks_mut(len)
            .zip(means.par_chunks_mut(per))
            .enumerate()
            .try_for_each(|(bi, (yb, mc))| f(bi, yb, mc))
    }
}

/// Runs `f(first channel, out chunk)` over `out` (`channels` runs of `len` floats) in chunks
/// of whole channels: 4 per thread on several threads, else one.
fn by_channels(
    out: &mut [f32],
    channels: usize,
    len: usize,
    threads: usize,
    f: impl Fn(usize, &mut [f32]) -> Result<(), KernelError> + Sync,
) -> Result<(), KernelError> {
    let per = if threads > 1 {
        channels.div_ceil(threads * 4).max(1)
    } else {
        channels.max(1)
    };
    let run = |(i, o): (usize, &mut [f32])| f(i * per, o);
    if threads > 1 {
        out.par_chunks_mut(per * len).enumerate().try_for_each(run)
    } else {
        out.chunks_mut(per * len).enumerate().try_for_each(run)
    }
}

/// The phase-split padded input of one group ([`crate::kernels::tap_split`]) for an implicit
/// GEMM, input channels split across the pool's threads.
fn tap_split(
    s: &ConvShape,
    k: Option<&Kernel>,
    x: &[f32],
    out: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    let k = k.ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "no tap_split kernel for an implicit-GEMM convolution".into(),
    })?;
    let (hw, plane, cg) = (s.h * s.w, TapLayout::of(s).plane(), s.cg());
    if plane == 0 || hw == 0 {
        return Ok(());
    }
    let out = out.get_mut(..cg * plane).ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "tap_split scratch too short".into(),
    })?;
    by_channels(out, cg, plane, threads, |c0, o| {
        let xs = x.get(c0 * hw..).unwrap_or_default();
        k.call(o.len() / plane, &mut [Arg::In(xs), Arg::Out(o)])
    })
}

/// The im2col matrix of one group through the generated kernel `k`
/// ([`crate::kernels::im2col`]), input channels split across the pool's threads (each task
/// with its own row-phase scratch).
fn im2col(
    s: &ConvShape,
    k: Option<&Kernel>,
    x: &[f32],
    col: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    let k = k.ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "no im2col kernel for an im2col convolution".into(),
    })?;
    let (hw, rows) = (s.h * s.w, s.kh * s.kw * s.oh * s.ow);
    if rows == 0 || hw == 0 {
        return Ok(());
    }
    let cg = s.cg();
    let col = col.get_mut(..cg * rows).ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "im2col scratch too short".into(),
    })?;
    let scratch = crate::kernels::im2col_scratch(s);
    by_channels(col, cg, rows, threads, |c0, out| {
        let mut split = vec![0f32; scratch];
        let xs = x.get(c0 * hw..).unwrap_or_default();
        k.call(
            out.len() / rows,
            &mut [Arg::In(xs), Arg::Out(out), Arg::Out(&mut split)],
        )
    })
}

/// Direct depthwise convolution of one image through the generated kernel
/// ([`crate::kernels::depthwise`]), channels spread over the pool's threads.
fn depthwise(
    s: &ConvShape,
    k: Option<&Kernel>,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    let k = k.ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "no depthwise kernel for a depthwise convolution".into(),
    })?;
    let (hw, kk, ohw) = (s.h * s.w, s.kh * s.kw, (s.oh * s.ow).max(1));
    let y = y.get_mut(..s.m * ohw).ok_or_else(|| KernelError::Call {
        kernel: "conv".into(),
        msg: "output too short".into(),
    })?;
    let per = if threads > 1 {
        s.m.div_ceil(threads * 4).max(1)
    } else {
        s.m.max(1)
    };
    let run = |(i, yc): (usize, &mut [f32])| {
        let n = yc.len() / ohw;
        let xs = x.get(i * per * hw..).unwrap_or_default();
        let ws = w.get(i * per * kk..).unwrap_or_default();
        k.call(n, &mut [Arg::In(xs), Arg::In(ws), Arg::Out(yc)])
    };
    if threads > 1 {
        y.par_chunks_mut(per * ohw).enumerate().try_for_each(run)
    } else {
        y.chunks_mut(per * ohw).enumerate().try_for_each(run)
    }
}
