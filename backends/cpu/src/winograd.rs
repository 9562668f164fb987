//! Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 ungrouped convolutions: 16 GEMMs of
//! `M × C × T` (T = 2x2 output tiles) instead of one of `M × 9C × 4T`, 2.25x fewer
//! multiplications. Weights are transformed once (`U = G g Gᵀ`, 16 `M × C` matrices, packed for
//! [`packed_gemm`] where the CPU has AVX-512, or AVX2 from 256 output channels, [`Weights`]); per image the input tiles are
//! transformed (`V = Bᵀ d B`, laid out `[C][16][T]`), the 16 GEMMs write `[16][M][T]`, and each
//! block of output channels transforms its tiles back (`Y = Aᵀ m A`) and runs its epilogue.
//! Both transforms are generated kernels ([`crate::kernels::winograd_input`],
//! [`crate::kernels::winograd_output`]).
//!
//! On several threads the three phases normally split three ways (input channels, the 16
//! GEMMs, output channels), so `V` and the products cross between threads twice. When the
//! threads do not share a cache ([`Par::far`]) each thread instead runs the whole pipeline for
//! its own block of output channels in its own scratch: it transforms every input channel
//! itself (the transform is cheap next to the GEMMs) and nothing it writes is read by another
//! thread (SE-ResNet-50 batch 1 on 2 threads in that placement: its Winograd convs 10-30%
//! faster; sharing a cache, 15% slower, hence only then; BENCHMARKS.md).

use std::sync::Mutex;

use rayon::prelude::*;

use crate::conv::{ConvShape, channel_blocks};
use crate::error::KernelError;
use crate::jit::{Arg, Isa, Kernel, PackedWeight, Par, Rhs, packed_gemm, sgemm};

/// Whether `s` runs by Winograd: 3x3, stride 1, dilation 1, pads 1, one group, and enough
/// tiles for the 16 small GEMMs to run near full speed.
pub fn eligible(s: &ConvShape) -> bool {
    let a = &s.attrs;
    s.kh == 3
        && s.kw == 3
        && a.strides == [1, 1]
        && a.dilations == [1, 1]
        && a.pads == [1; 4]
        && a.group == 1
        && s.m > 0
        && s.c > 0
        && s.oh == s.h
        && s.ow == s.w
        && tiles(s) >= 40
}

/// Output tiles of one image: `ceil(oh / 2) · ceil(ow / 2)`.
pub fn tiles(s: &ConvShape) -> usize {
    s.oh.div_ceil(2) * s.ow.div_ceil(2)
}

/// Scratch elements per image: the transformed input and the 16 GEMM outputs.
pub fn scratch_len(s: &ConvShape) -> usize {
    16 * (s.c + s.m) * tiles(s)
}

/// Scratch elements [`run_image`] needs on `threads` threads: [`scratch_len`] per thread, room
/// for the per-thread pipelines of a run whose threads are far apart.
pub fn scratch_len_on(s: &ConvShape, threads: usize) -> usize {
    scratch_len(s) * threads.max(1)
}

/// The transformed weights `U`: 16 `M × C` matrices, each packed for [`packed_gemm`] where the
/// CPU has AVX-512 (at one thread 5-8% faster than the `gemm` crate on ResNet's Winograd convs,
/// which packs `V[xi]` on every call), or AVX2 and `M >= 256` (Zen 3: layer 3's 256-channel
/// convs 10-15% faster; layer 1's 64 channels 10% slower, so those stay on the crate), else
/// plain `[16][M][C]` for the `gemm` crate.
#[derive(Clone, Debug)]
pub enum Weights {
    Plain(Vec<f32>),
    Packed(Vec<PackedWeight>),
}

impl Weights {
    /// Rows of the GEMM's smallest unit of output channels: a packed panel, or 16 for the
    /// `gemm` crate.
    pub fn unit(&self) -> usize {
        match self {
            Weights::Packed(p) => p.first().map_or(16, PackedWeight::panel),
            Weights::Plain(_) => 16,
        }
    }

    /// Transforms `w` (`[M, C, 3, 3]`, at least `M * C * 9` long) and packs the result when the
    /// CPU allows.
    pub fn new(s: &ConvShape, w: &[f32]) -> Weights {
        let u = transform_weights(s, w);
        let mc = s.m * s.c;
        let packed: Vec<PackedWeight> = u
            .chunks_exact(mc.max(1))
            .filter_map(|ux| match Isa::detect()? {
                Isa::Avx512 => PackedWeight::for_isa(ux, s.m, s.c, Isa::Avx512),
                Isa::Avx2 if s.m >= 256 => PackedWeight::for_isa(ux, s.m, s.c, Isa::Avx2),
                Isa::Avx2 => None,
            })
            .collect();
        if packed.len() == 16 {
            Weights::Packed(packed)
        } else {
            Weights::Plain(u)
        }
    }

    /// `M[xi] = U[xi] · V[xi]` for the output channels `rows` (whole 32-row panels when
    /// packed; `dst` starts at the first of them): `v` holds `V[xi]`'s `C` rows, `rs` apart.
    fn gemm(
        &self,
        s: &ConvShape,
        xi: usize,
        rows: std::ops::Range<usize>,
        dst: &mut [f32],
        (v, rs): (&[f32], usize),
    ) -> Result<(), KernelError> {
        let (m, c, t) = (s.m, s.c, tiles(s));
        match self {
            Weights::Packed(p) => {
                let pr = p[xi].panel();
                let panels = rows.start / pr..rows.end.div_ceil(pr);
                let rhs = Rhs::Rows { data: v, rs };
                packed_gemm(&p[xi], panels, t, dst, t, rhs, false, Par::from(1))
            }
            Weights::Plain(u) => {
                let lhs = &u[(xi * m + rows.start) * c..];
                sgemm((rows.len(), t, c), dst, t, lhs, c, v, rs, false, 1)
            }
        }
    }
}

/// `U = G g Gᵀ` for every (output, input) channel pair, laid out `[16][M][C]`.
pub fn transform_weights(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (m, c) = (s.m, s.c);
    let mut u = vec![0f32; 16 * m * c];
    for (mc, g) in w.chunks_exact(9).take(m * c).enumerate() {
        // t = G g (4 x 3), then U = t Gᵀ (4 x 4).
        let mut t = [[0f32; 3]; 4];
        for j in 0..3 {
            let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
            t[0][j] = g0;
            t[1][j] = 0.5 * (g0 + g1 + g2);
            t[2][j] = 0.5 * (g0 - g1 + g2);
            t[3][j] = g2;
        }
        for (i, r) in t.iter().enumerate() {
            let row = [
                r[0],
                0.5 * (r[0] + r[1] + r[2]),
                0.5 * (r[0] - r[1] + r[2]),
                r[2],
            ];
            for (j, v) in row.into_iter().enumerate() {
                u[(i * 4 + j) * m * c + mc] = v;
            }
        }
    }
    u
}

/// The epilogue run on each block of output channels: `(first channel, planes, means)`.
pub type After<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) -> Result<(), KernelError> + Sync + 'a;

/// One image: `y = conv(x)` (no bias), then `after(c0, planes, means)` on each block of
/// output channels while it is in cache (`means`: empty, or one per output channel). `scratch`
/// at least [`scratch_len`] long; with [`scratch_len_on`], threads that are far apart
/// ([`Par::far`]) each run the whole pipeline for their own output channels.
#[allow(clippy::too_many_arguments)]
pub fn run_image(
    s: &ConvShape,
    (k_in, k_out): (&Kernel, &Kernel),
    u: &Weights,
    x: &[f32],
    y: &mut [f32],
    means: &mut [f32],
    scratch: &mut [f32],
    Par { threads, far }: Par,
    after: &After<'_>,
) -> Result<(), KernelError> {
    let (c, m, t) = (s.c, s.m, tiles(s));
    let (hw, ohw) = (s.h * s.w, s.oh * s.ow);
    if scratch.len() < scratch_len(s) || x.len() < c * hw || y.len() < m * ohw || t == 0 {
        return Err(KernelError::Call {
            kernel: "winograd".into(),
            msg: format!("buffers too short for {s:?}"),
        });
    }
    if far && threads > 1 && scratch.len() / threads >= scratch_len(s) {
        return run_far(s, (k_in, k_out), u, x, y, means, scratch, threads, after);
    }
    let (v, mbuf) = scratch.split_at_mut(16 * c * t);
    let v = &mut v[..16 * c * t];
    // Input transform (generated kernel), channels split across the pool's threads.
    let per_in = if threads > 1 {
        c.div_ceil(threads * 4).max(1)
    } else {
        c
    };
    let pad = crate::kernels::winograd_input_scratch(s);
    let transform = |(i, vc): (usize, &mut [f32])| {
        let mut buf = vec![0f32; pad];
        let n = vc.len() / (16 * t);
        let xs = x.get(i * per_in * hw..).unwrap_or_default();
        k_in.call(n, &mut [Arg::In(xs), Arg::Out(vc), Arg::Out(&mut buf)])
    };
    if threads > 1 {
        v.par_chunks_mut(per_in * 16 * t)
            .enumerate()
            .try_for_each(transform)?;
    } else {
        v.chunks_mut(per_in * 16 * t)
            .enumerate()
            .try_for_each(transform)?;
    }
    let v = &*v;
    // The 16 GEMMs, `M[xi] = U[xi] · V[xi]` into `[16][M][T]`, one task per `xi` on several
    // threads.
    let mbuf = &mut mbuf[..16 * m * t];
    let gemm = |(xi, mx): (usize, &mut [f32])| u.gemm(s, xi, 0..m, mx, (&v[xi * t..], 16 * t));
    if threads > 1 {
        mbuf.par_chunks_mut(m * t).enumerate().try_for_each(gemm)?;
    } else {
        mbuf.chunks_mut(m * t).enumerate().try_for_each(gemm)?;
    }
    let mbuf = &*mbuf;
    // Output transform and epilogue per block of output channels.
    let per = if threads > 1 {
        m.div_ceil(threads * 2).max(1)
    } else {
        m.max(1)
    };
    let task = |bi: usize, yb: &mut [f32], mc: &mut [f32]| {
        let (m0, mn) = (bi * per, yb.len() / ohw);
        let mut buf = vec![0f32; crate::kernels::winograd_output_scratch(s)];
        let mt = mbuf.get(m0 * t..).unwrap_or_default();
        k_out.call(mn, &mut [Arg::In(mt), Arg::Out(yb), Arg::Out(&mut buf)])?;
        after(m0, yb, mc)
    };
    channel_blocks(&mut y[..m * ohw], means, (per, ohw), threads > 1, task)
}

/// [`run_image`] for threads that do not share a cache: one task per block of whole 32-row
/// panels of output channels, each transforming every input channel into its own `V`, running
/// the 16 GEMMs for its rows into its own products (rows from 0, the layout the output
/// transform reads), then the output transform and `after`. `scratch` splits into `threads`
/// equal regions and each pool thread works in the one its pool index picks: given the same
/// buffer in every conv (the runtime passes its whole scratch buffer), a thread's region
/// starts at the same place in every Winograd conv of a run, so its lines stay in that
/// thread's cache whichever task it picks up. Other convs' scratch (a stride-2 conv's phase
/// split, written by both threads) can still land in a region between two Winograd convs.
#[allow(clippy::too_many_arguments)]
fn run_far(
    s: &ConvShape,
    (k_in, k_out): (&Kernel, &Kernel),
    u: &Weights,
    x: &[f32],
    y: &mut [f32],
    means: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
    after: &After<'_>,
) -> Result<(), KernelError> {
    let (c, m, t) = (s.c, s.m, tiles(s));
    let ohw = s.oh * s.ow;
    let per = m.div_ceil(threads).next_multiple_of(u.unit()).min(m).max(1);
    let pad =
        crate::kernels::winograd_input_scratch(s).max(crate::kernels::winograd_output_scratch(s));
    let one = scratch_len(s);
    let stride = scratch.len() / threads.max(1);
    let regions: Vec<Mutex<&mut [f32]>> = scratch
        .chunks_mut(stride.max(1))
        .take(threads)
        .map(Mutex::new)
        .collect();
    let task = |bi: usize, yb: &mut [f32], mc: &mut [f32]| {
        let (m0, mn) = (bi * per, yb.len() / ohw);
        let at = rayon::current_thread_index().unwrap_or(bi) % regions.len().max(1);
        let mut region = regions[at].lock().map_err(|_| KernelError::Call {
            kernel: "winograd".into(),
            msg: "a scratch region's lock was poisoned by a panic".into(),
        })?;
        let (v, mm) = region[..one].split_at_mut(16 * c * t);
        let mut buf = vec![0f32; pad];
        k_in.call(c, &mut [Arg::In(x), Arg::Out(v), Arg::Out(&mut buf)])?;
        for xi in 0..16 {
            let dst = &mut mm[xi * m * t..];
            u.gemm(s, xi, m0..m0 + mn, dst, (&v[xi * t..], 16 * t))?;
        }
        k_out.call(mn, &mut [Arg::In(mm), Arg::Out(yb), Arg::Out(&mut buf)])?;
        after(m0, yb, mc)
    };
    channel_blocks(&mut y[..m * ohw], means, (per, ohw), true, task)
}
