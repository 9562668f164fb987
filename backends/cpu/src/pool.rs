//! Max and average pooling over NCHW planes with every ONNX attribute (kernel, strides,
//! asymmetric pads, dilations, ceil mode, `count_include_pad`), matching
//! `excite_ir::interp`'s rules: only positions inside the input contribute; the average's
//! divisor counts positions inside the input, or inside input plus pads; an empty window gives
//! the lowest finite `f32` (max) or 0 (average). Taps are precomputed per output row and column.

use excite_ir::op::Pool;
use rayon::prelude::*;

/// Which reduction the window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Average,
}

/// Along one axis, for each output index: the input indices its window reads and how many
/// taps count toward the padded divisor.
fn axis_taps(p: &Pool, axis: usize, size: usize, outs: usize) -> Vec<(Vec<usize>, usize)> {
    let (stride, dil, pb, pe) = (
        p.strides[axis],
        p.dilations[axis],
        p.pads[axis],
        p.pads[axis + 2],
    );
    (0..outs)
        .map(|o| {
            let mut inside = Vec::new();
            let mut padded = 0;
            for k in 0..p.kernel[axis] {
                let at = o * stride + k * dil;
                if let Some(i) = at.checked_sub(pb).filter(|&i| i < size) {
                    inside.push(i);
                }
                padded += usize::from(at < pb + size + pe);
            }
            (inside, padded)
        })
        .collect()
}

/// Whether the max pool's columns take the vectorised path: windows of 3 taps at stride 2
/// starting one column left of `2·ox` (ResNet's stem pool and its kin).
pub fn max_cols_fast(p: &Pool) -> bool {
    p.kernel[1] == 3 && p.strides[1] == 2 && p.dilations[1] == 1 && p.pads[1] == 1
}

/// Pools `planes` planes of `h × w` in `x` into `oh × ow` planes of `y`, planes spread over the
/// current rayon pool.
pub fn pool(
    p: &Pool,
    kind: PoolKind,
    (planes, h, w): (usize, usize, usize),
    (oh, ow): (usize, usize),
    x: &[f32],
    y: &mut [f32],
) {
    let rows = axis_taps(p, 0, h, oh);
    if kind == PoolKind::Max && max_cols_fast(p) {
        x.par_chunks_exact((h * w).max(1))
            .zip(y.par_chunks_exact_mut((oh * ow).max(1)))
            .take(planes)
            .for_each_init(Vec::new, |buf, (plane, out)| {
                max_plane_s2k3(&rows, w, ow, plane, out, buf)
            });
        return;
    }
    let cols = axis_taps(p, 1, w, ow);
    let one_plane = |(plane, out): (&[f32], &mut [f32])| {
        for ((iys, ry), out_row) in rows.iter().zip(out.chunks_exact_mut(ow.max(1))) {
            for ((ixs, rx), o) in cols.iter().zip(out_row.iter_mut()) {
                *o = match kind {
                    PoolKind::Max => {
                        let mut max = f32::MIN;
                        for &iy in iys {
                            let line = &plane[iy * w..(iy + 1) * w];
                            for &ix in ixs {
                                if line[ix] > max {
                                    max = line[ix];
                                }
                            }
                        }
                        max
                    }
                    PoolKind::Average => {
                        let mut sum = 0f32;
                        for &iy in iys {
                            let line = &plane[iy * w..(iy + 1) * w];
                            sum += ixs.iter().map(|&ix| line[ix]).sum::<f32>();
                        }
                        let d = if p.count_include_pad {
                            ry * rx
                        } else {
                            iys.len() * ixs.len()
                        };
                        if d == 0 { 0.0 } else { sum / d as f32 }
                    }
                };
            }
        }
    };
    x.par_chunks_exact((h * w).max(1))
        .zip(y.par_chunks_exact_mut((oh * ow).max(1)))
        .take(planes)
        .for_each(one_plane);
}

/// One plane of a max pool whose columns satisfy [`max_cols_fast`]: per output row, the
/// elementwise max of its input rows (contiguous), padded with `f32::MIN` on both sides and
/// split into even and odd padded columns `e`, `o`, so that output `ox` is
/// `max(e[ox], o[ox], e[ox + 1])`, again contiguous. `f32::MIN` is what the window of only
/// padding yields, and never wins against a value inside the input.
fn max_plane_s2k3(
    rows: &[(Vec<usize>, usize)],
    w: usize,
    ow: usize,
    plane: &[f32],
    out: &mut [f32],
    buf: &mut Vec<f32>,
) {
    // Padded column q holds input column q - 1; 2 * ow + 1 padded columns are read.
    let half = ow + 1;
    let padded = (2 * half).max(w + 2);
    buf.clear();
    buf.resize(padded + 2 * half, f32::MIN);
    let (t, eo) = buf.split_at_mut(padded);
    let (e, o) = eo.split_at_mut(half);
    for ((iys, _), out_row) in rows.iter().zip(out.chunks_exact_mut(ow.max(1))) {
        let inner = &mut t[1..w + 1];
        inner.fill(f32::MIN);
        for &iy in iys {
            for (m, &v) in inner.iter_mut().zip(&plane[iy * w..(iy + 1) * w]) {
                *m = m.max(v);
            }
        }
        for ((pair, ev), od) in t.chunks_exact(2).zip(e.iter_mut()).zip(o.iter_mut()) {
            *ev = pair[0];
            *od = pair[1];
        }
        for (q, y) in out_row.iter_mut().enumerate() {
            *y = e[q].max(o[q]).max(e[q + 1]);
        }
    }
}
