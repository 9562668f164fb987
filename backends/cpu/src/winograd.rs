//! Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 ungrouped convolutions: 16 GEMMs of
//! `M × C × T` (T = 2x2 output tiles) instead of one of `M × 9C × 4T`, 2.25x fewer
//! multiplications. Weights are transformed once (`U = G g Gᵀ`, laid out `[16][M][C]`); per
//! image the input tiles are transformed (`V = Bᵀ d B`, laid out `[C][16][T]`), the 16 GEMMs
//! write `[16][M][T]` (one task per GEMM), and each block of output channels transforms its
//! tiles back (`Y = Aᵀ m A`) and runs its epilogue, one block per task. Both transforms are generated kernels
//! ([`crate::kernels::winograd_input`], [`crate::kernels::winograd_output`]).

use rayon::prelude::*;

use crate::conv::ConvShape;
use crate::error::KernelError;
use crate::jit::{Arg, Kernel, Par, pre_read, sgemm};

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
/// output channels while it is in cache (`means`: empty, or one per output channel). `u` from
/// [`transform_weights`], `scratch` at least [`scratch_len`] long.
#[allow(clippy::too_many_arguments)]
pub fn run_image(
    s: &ConvShape,
    (k_in, k_out): (&Kernel, &Kernel),
    u: &[f32],
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
    // threads: every operand is packed once (splitting by output channels instead had each
    // task re-pack all 16 `V[xi]`).
    let mbuf = &mut mbuf[..16 * m * t];
    let gemm = |(xi, mx): (usize, &mut [f32])| {
        if far {
            // `V[xi]`: one row of T per input channel, written by both threads.
            for ci in 0..c {
                pre_read(&v[(ci * 16 + xi) * t..(ci * 16 + xi + 1) * t]);
            }
        }
        let lhs = &u[xi * m * c..];
        sgemm((m, t, c), mx, t, lhs, c, &v[xi * t..], 16 * t, false, 1)
    };
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
        let mut buf = vec![0f32; 4 * (s.ow.div_ceil(2) + 4)];
        let mt = mbuf.get(m0 * t..).unwrap_or_default();
        if far {
            // This block's rows of the 16 products, half of them from the other thread.
            for xi in 0..16 {
                pre_read(mt.get(xi * m * t..(xi * m + mn) * t).unwrap_or_default());
            }
        }
        k_out.call(mn, &mut [Arg::In(mt), Arg::Out(yb), Arg::Out(&mut buf)])?;
        after(m0, yb, mc)
    };
    let y = &mut y[..m * ohw];
    if threads < 2 {
        let mut means = means.chunks_mut(per);
        for (bi, yb) in y.chunks_mut(per * ohw).enumerate() {
            task(bi, yb, means.next().unwrap_or_default())?;
        }
        Ok(())
    } else if means.is_empty() {
        y.par_chunks_mut(per * ohw)
            .enumerate()
            .try_for_each(|(bi, yb)| task(bi, yb, &mut []))
    } else {
        y.par_chunks_mut(per * ohw)
            .zip(means.par_chunks_mut(per))
            .enumerate()
            .try_for_each(|(bi, (yb, mc))| task(bi, yb, mc))
    }
}
