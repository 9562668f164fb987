//! The SE block split across the thread pool, for batches with fewer images than threads: per
//! image the channel means (split by channel range, or taken from the conv epilogue), then the
//! tiny first FC once on the calling thread, then the gate and `y = post_act(x * g + r)` pass
//! over channel ranges in parallel (each range computes its own gates from `z`). Also the
//! gates of an SE block folded into its 1x1 conv ([`gates`]).

use excite_cpu::kernels::SeShape;
use excite_cpu::{Arg, Kernel};
use rayon::prelude::*;

use super::CpuError;

/// `s` from offset `at`, empty when absent or shorter (the kernel's length check then refuses
/// the call if the operand was required).
fn tail(s: &[f32], at: usize) -> &[f32] {
    s.get(at..).unwrap_or(&[])
}

/// `s[c] = mean(x[c, :])` for the `s.len()` planes of `hw` values in `x`, channel ranges split
/// across `threads` tasks (the `mean` kernel per range).
fn means_by_channels(
    mean: &Kernel,
    x: &[f32],
    hw: usize,
    s: &mut [f32],
    threads: usize,
) -> Result<(), CpuError> {
    let per = s.len().div_ceil(threads.max(1)).max(1);
    s.par_chunks_mut(per).enumerate().try_for_each(|(j, sj)| {
        let len = sj.len();
        let args = &mut [Arg::In(tail(x, j * per * hw)), Arg::Out(sj)];
        mean.call(len, args)
    })?;
    Ok(())
}

/// `out[j] = act(W[j, :] · v + b[j])` (one FC of an SE block, kernel `k` from
/// `kernels::fc_rows`), row ranges split across `threads` tasks; `W` has `cols` columns, `b`
/// may be empty.
fn fc_by_rows(
    k: &Kernel,
    (w, b, cols): (&[f32], &[f32], usize),
    v: &[f32],
    out: &mut [f32],
    threads: usize,
) -> Result<(), CpuError> {
    let per = out.len().div_ceil(threads.max(1)).max(1);
    out.par_chunks_mut(per)
        .enumerate()
        .try_for_each(|(j, oj)| {
            let (j0, len) = (j * per, oj.len());
            let args = &mut [
                Arg::In(v),
                Arg::In(tail(w, j0 * cols)),
                Arg::In(tail(b, j0)),
                Arg::Out(oj),
            ];
            k.call(len, args)
        })?;
    Ok(())
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
                means_by_channels(mean, xi, hw, s, threads)?;
                &*s
            }
        };
        fc_by_rows(fc1, (w1, b1, c), s, z, threads)?;
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

/// The gates of an SE block folded into the 1x1 conv before it (`excite_cpu::kernels::se_gate`):
/// `g (n·c)` from the conv's input `x (n·c_in·hw)`. `ws`: `x, w13, b13, w2, b2` (`b2` empty
/// when absent). One thread: the whole kernel over all images. At least as many images as
/// threads: one image per task. Fewer: per image, the means by channel ranges, then the two
/// FCs by row ranges (`split`: mean, FC1, FC2 row kernels). `scratch`: `c_in + cr`. With
/// `presq`, `x` is already the channel means (`n·c_in`) and `full` the pre-squeezed kernel.
#[allow(clippy::too_many_arguments)]
pub fn gates(
    full: &Kernel,
    [mean, fc1, fc2]: [&Kernel; 3],
    ws: [&[f32]; 5],
    (n, c_in, sh, presq): (usize, usize, SeShape, bool),
    threads: usize,
    g: &mut [f32],
    scratch: &mut [f32],
) -> Result<(), CpuError> {
    let SeShape { c, cr, hw } = sh;
    let err = |msg: &str| CpuError::Unsupported {
        node: full.name().to_string(),
        msg: msg.into(),
    };
    let [x, w13, b13, w2, b2] = ws;
    let chw = if presq { c_in } else { c_in * hw };
    let call_full = |imgs: usize, x: &[f32], g: &mut [f32], scr: &mut [f32]| {
        let args = &mut [
            Arg::In(x),
            Arg::In(w13),
            Arg::In(b13),
            Arg::In(w2),
            Arg::In(b2),
            Arg::Out(g),
            Arg::Out(scr),
        ];
        full.call(imgs, args)
    };
    if threads < 2 {
        return Ok(call_full(n, x, g, scratch)?);
    }
    if n >= threads {
        return g
            .par_chunks_mut(c.max(1))
            .enumerate()
            .try_for_each(|(i, gi)| {
                let mut scr = vec![0f32; c_in + cr];
                Ok(call_full(1, tail(x, i * chw), gi, &mut scr)?)
            });
    }
    let scr = scratch
        .get_mut(..c_in + cr)
        .ok_or_else(|| err("SE gate scratch too small"))?;
    let (s, z) = scr.split_at_mut(c_in);
    for (i, gi) in g.chunks_exact_mut(c.max(1)).take(n).enumerate() {
        let xi = tail(x, i * chw);
        let s: &[f32] = if presq {
            xi.get(..c_in)
                .ok_or_else(|| err("channel means shorter than the batch"))?
        } else {
            means_by_channels(mean, xi, hw, s, threads)?;
            s
        };
        fc_by_rows(fc1, (w13, b13, c_in), s, z, threads)?;
        fc_by_rows(fc2, (w2, b2, cr), z, gi, threads)?;
    }
    Ok(())
}
