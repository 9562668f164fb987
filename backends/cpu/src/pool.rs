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
