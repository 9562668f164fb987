//! Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 ungrouped convolutions: 16 GEMMs of
//! `M × C × T` (T = 2x2 output tiles) instead of one of `M × 9C × 4T`, 2.25x fewer
//! multiplications. Weights are transformed once (`U = G g Gᵀ`, laid out `[16][M][C]`); per
//! image the input tiles are transformed (`V = Bᵀ d B`, laid out `[C][16][T]`), each block of
//! output channels runs its 16 GEMMs into `[M][16][T]` and transforms its tiles back
//! (`Y = Aᵀ m A`), one block per task.

use rayon::prelude::*;

use crate::conv::ConvShape;
use crate::error::KernelError;
use crate::jit::sgemm;

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

/// Input transform of one channel plane into its `[16][T]` block of `V`. Every loop runs
/// along a row of tiles over contiguous memory (so it vectorises): the plane is first copied
/// into `buf` with its zero padding, each row split into even and odd padded columns, which
/// turns the transform's stride-2 window into unit-stride reads.
fn input_channel(s: &ConvShape, plane: &[f32], v: &mut [f32], buf: &mut Vec<f32>) {
    let (h, w) = (s.h, s.w);
    let (th, tw) = (s.oh.div_ceil(2), s.ow.div_ceil(2));
    let t_all = th * tw;
    // Padded row `p` holds input row `p - 1`; padded column `q` input column `q - 1`. A row
    // is stored as `[even q | odd q]`, `tw + 1` each: even `q = 2k` is column `2k - 1`, odd
    // `q = 2k + 1` is column `2k`.
    let half = tw + 1;
    let row_len = 2 * half;
    let rows = 2 * th + 2;
    buf.clear();
    buf.resize(rows * row_len + 4 * row_len, 0.0);
    let (padded, t) = buf.split_at_mut(rows * row_len);
    for (p, prow) in padded.chunks_exact_mut(row_len).enumerate() {
        let Some(iy) = p.checked_sub(1).filter(|&y| y < h) else {
            continue;
        };
        let line = &plane[iy * w..(iy + 1) * w];
        let (ev, od) = prow.split_at_mut(half);
        for (e, &x) in ev[1..].iter_mut().zip(line.iter().skip(1).step_by(2)) {
            *e = x;
        }
        for (o, &x) in od.iter_mut().zip(line.iter().step_by(2)) {
            *o = x;
        }
    }
    let (t01, t23) = t.split_at_mut(2 * row_len);
    let (t0, t1) = t01.split_at_mut(row_len);
    let (t2, t3) = t23.split_at_mut(row_len);
    for ty in 0..th {
        let band = &padded[2 * ty * row_len..(2 * ty + 4) * row_len];
        let (d0, rest) = band.split_at(row_len);
        let (d1, rest) = rest.split_at(row_len);
        let (d2, d3) = rest.split_at(row_len);
        // t = Bᵀ d, elementwise along the rows.
        for q in 0..row_len {
            t0[q] = d0[q] - d2[q];
            t1[q] = d1[q] + d2[q];
            t2[q] = d2[q] - d1[q];
            t3[q] = d1[q] - d3[q];
        }
        // V = t B: with e = even and o = odd columns, tile `tx` reads e[tx], o[tx], e[tx + 1],
        // o[tx + 1].
        for (i, ti) in [&*t0, &*t1, &*t2, &*t3].into_iter().enumerate() {
            let (e, o) = ti.split_at(half);
            let at = |j: usize| (i * 4 + j) * t_all + ty * tw;
            let (e0, e1, o0, o1) = (&e[..tw], &e[1..], &o[..tw], &o[1..]);
            for ((out, &a), &b) in v[at(0)..at(0) + tw].iter_mut().zip(e0).zip(e1) {
                *out = a - b;
            }
            for ((out, &a), &b) in v[at(1)..at(1) + tw].iter_mut().zip(o0).zip(e1) {
                *out = a + b;
            }
            for ((out, &a), &b) in v[at(2)..at(2) + tw].iter_mut().zip(e1).zip(o0) {
                *out = a - b;
            }
            for ((out, &a), &b) in v[at(3)..at(3) + tw].iter_mut().zip(o0).zip(o1) {
                *out = a - b;
            }
        }
    }
}

/// Output transform of one channel's `[16][T]` GEMM results into its output plane, along
/// each row of tiles: the 2x2 outputs are computed as even- and odd-column rows (contiguous
/// loops) and then interleaved into the plane.
fn output_channel(s: &ConvShape, mt: &[f32], y: &mut [f32], buf: &mut Vec<f32>) {
    let (oh, ow) = (s.oh, s.ow);
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let t_all = th * tw;
    buf.clear();
    buf.resize(12 * tw, 0.0);
    let (sr, yr) = buf.split_at_mut(8 * tw);
    for ty in 0..th {
        let m = |i: usize, j: usize| {
            let at = (i * 4 + j) * t_all + ty * tw;
            &mt[at..at + tw]
        };
        // s = Aᵀ m (2 x 4): row 0 = m0 + m1 + m2, row 1 = m1 - m2 - m3, per column j.
        for (j, (s0, s1)) in sr
            .chunks_exact_mut(2 * tw)
            .map(|c| c.split_at_mut(tw))
            .enumerate()
        {
            let (m0, m1, m2, m3) = (m(0, j), m(1, j), m(2, j), m(3, j));
            for (q, (a, b)) in s0.iter_mut().zip(s1.iter_mut()).enumerate() {
                *a = m0[q] + m1[q] + m2[q];
                *b = m1[q] - m2[q] - m3[q];
            }
        }
        // Y = s A (2 x 2): even column = s0 + s1 + s2, odd column = s1 - s2 - s3.
        for i in 0..2 {
            let oy = 2 * ty + i;
            if oy >= oh {
                break;
            }
            let col = |j: usize| &sr[j * 2 * tw + i * tw..j * 2 * tw + (i + 1) * tw];
            let (c0, c1, c2, c3) = (col(0), col(1), col(2), col(3));
            let (ye, yo) = yr.split_at_mut(2 * tw);
            for q in 0..tw {
                ye[q] = c0[q] + c1[q] + c2[q];
                yo[q] = c1[q] - c2[q] - c3[q];
            }
            let out = &mut y[oy * ow..(oy + 1) * ow];
            for (pair, (&e, &o)) in out.chunks_exact_mut(2).zip(ye.iter().zip(yo.iter())) {
                pair[0] = e;
                pair[1] = o;
            }
            if ow % 2 == 1 {
                out[ow - 1] = ye[tw - 1];
            }
        }
    }
}

/// The epilogue run on each block of output channels: `(first channel, planes, means)`.
pub type After<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) -> Result<(), KernelError> + Sync + 'a;

/// One image: `y = conv(x)` (no bias), then `after(c0, planes, means)` on each block of
/// output channels while it is in cache (`means`: empty, or one per output channel). `u` from
/// [`transform_weights`], `scratch` at least [`scratch_len`] long.
#[allow(clippy::too_many_arguments)]
pub fn run_image(
    s: &ConvShape,
    u: &[f32],
    x: &[f32],
    y: &mut [f32],
    means: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
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
    if threads > 1 {
        v.par_chunks_mut(16 * t)
            .zip(x.par_chunks(hw))
            .for_each_init(Vec::new, |buf, (vc, plane)| {
                input_channel(s, plane, vc, buf)
            });
    } else {
        let mut buf = Vec::new();
        for (vc, plane) in v.chunks_mut(16 * t).zip(x.chunks(hw)) {
            input_channel(s, plane, vc, &mut buf);
        }
    }
    let v = &*v;
    // Output channels per task: an equal share per thread, rounded up to 16 rows. (Smaller
    // blocks on one thread were slower: each re-packs `V` in all 16 GEMMs.)
    let per = if threads > 1 {
        m.div_ceil(threads).next_multiple_of(16).min(m)
    } else {
        m
    };
    let task = |bi: usize, mb: &mut [f32], yb: &mut [f32], mc: &mut [f32]| {
        let (m0, mn) = (bi * per, yb.len() / ohw);
        for xi in 0..16 {
            let lhs = &u[xi * m * c + m0 * c..];
            let rhs = &v[xi * t..];
            sgemm(
                (mn, t, c),
                &mut mb[xi * t..],
                16 * t,
                lhs,
                c,
                rhs,
                16 * t,
                false,
                1,
            )?;
        }
        let mut buf = Vec::new();
        for (mt, yc) in mb.chunks_exact(16 * t).zip(yb.chunks_exact_mut(ohw)) {
            output_channel(s, mt, yc, &mut buf);
        }
        after(m0, yb, mc)
    };
    let mbuf = &mut mbuf[..16 * m * t];
    let y = &mut y[..m * ohw];
    if threads < 2 {
        let mut means = means.chunks_mut(per);
        for (bi, (mb, yb)) in mbuf
            .chunks_mut(per * 16 * t)
            .zip(y.chunks_mut(per * ohw))
            .enumerate()
        {
            task(bi, mb, yb, means.next().unwrap_or_default())?;
        }
        Ok(())
    } else if means.is_empty() {
        mbuf.par_chunks_mut(per * 16 * t)
            .zip(y.par_chunks_mut(per * ohw))
            .enumerate()
            .try_for_each(|(bi, (mb, yb))| task(bi, mb, yb, &mut []))
    } else {
        mbuf.par_chunks_mut(per * 16 * t)
            .zip(y.par_chunks_mut(per * ohw))
            .zip(means.par_chunks_mut(per))
            .enumerate()
            .try_for_each(|(bi, ((mb, yb), mc))| task(bi, mb, yb, mc))
    }
}
