//! The SE block split across the thread pool, for batches with fewer images than threads: per
//! image the channel means (split by channel range, or taken from the conv epilogue), then the
//! tiny first FC once on the calling thread, then the gate and `y = post_act(x * g + r)` pass
//! over channel ranges in parallel (each range computes its own gates from `z`).

use excite_cpu::kernels::SeShape;
use excite_cpu::{Arg, Kernel};
use rayon::prelude::*;

use super::CpuError;

/// `s` from offset `at`, empty when absent or shorter (the kernel's length check then refuses
/// the call if the operand was required).
fn tail(s: &[f32], at: usize) -> &[f32] {
    s.get(at..).unwrap_or(&[])
}

/// Runs the SE block on `imgs` images with the `[mean, fc1, scale]` kernels of the split path.
/// `srcs`: `x, w1, b1, w2, b2, r` (absent ones empty); `pre_squeezed`: the channel means of
/// every image (`C` each) when the producing conv computed them. `scratch` holds `z ++ s`.
pub fn run(
    [mean, fc1, scale]: [&Kernel; 3],
    srcs: &[&[f32]],
    (imgs, sh): (usize, SeShape),
    pre_squeezed: Option<&[f32]>,
    threads: usize,
    out: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), CpuError> {
    let err = |msg: String| CpuError::Unsupported {
        node: scale.name().to_string(),
        msg,
    };
    let &[x, w1, b1, w2, b2, r] = srcs else {
        return Err(err(format!("SE block with {} operands", srcs.len())));
    };
    let SeShape { c, cr, hw } = sh;
    let chw = c * hw;
    if chw == 0 || out.len() != imgs * chw {
        return Err(err(format!(
            "output of {} elements for {imgs} x {chw}",
            out.len()
        )));
    }
    let scr = scratch
        .get_mut(..cr + c)
        .ok_or_else(|| err("SE scratch too small".into()))?;
    let (z, s) = scr.split_at_mut(cr);
    let ch = c.div_ceil(threads.max(1)).max(1);
    for (i, y) in out.chunks_exact_mut(chw).enumerate() {
        let xi = tail(x, i * chw);
        let ri = tail(r, i * chw);
        let s: &[f32] = match pre_squeezed {
            Some(m) => m
                .get(i * c..(i + 1) * c)
                .ok_or_else(|| err("channel means shorter than the batch".into()))?,
            None => {
                s.par_chunks_mut(ch).enumerate().try_for_each(|(j, sj)| {
                    let n = sj.len();
                    let args = &mut [Arg::In(tail(xi, j * ch * hw)), Arg::Out(sj)];
                    mean.call(n, args)
                })?;
                &*s
            }
        };
        let rows = cr.div_ceil(threads.max(1)).max(1);
        z.par_chunks_mut(rows).enumerate().try_for_each(|(j, zj)| {
            let (j0, n) = (j * rows, zj.len());
            let args = &mut [
                Arg::In(s),
                Arg::In(tail(w1, j0 * c)),
                Arg::In(tail(b1, j0)),
                Arg::Out(zj),
            ];
            fc1.call(n, args)
        })?;
        let z: &[f32] = z;
        y.par_chunks_mut(ch * hw)
            .enumerate()
            .try_for_each(|(j, yj)| {
                let (c0, n) = (j * ch, yj.len() / hw);
                let args = &mut [
                    Arg::In(tail(xi, c0 * hw)),
                    Arg::In(tail(w2, c0 * cr)),
                    Arg::In(tail(b2, c0)),
                    Arg::In(tail(ri, c0 * hw)),
                    Arg::Out(yj),
                    Arg::In(z),
                ];
                scale.call(n, args)
            })?;
    }
    Ok(())
}
