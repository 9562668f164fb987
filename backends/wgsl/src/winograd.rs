//! Winograd F(2x2, 3x3) for 3x3, stride-1 convolutions (an A/B knob, `Limits::winograd`,
//! off by default until measured on a GPU): an input transform (`wino_in.wgsl`: each 4x4
//! input patch to 16 values), the 16 products `P[xi] = U[xi] V[xi]` as one grouped pointwise
//! conv on the GEMM kernel (`conv1x1.wgsl`, 16 groups), and an output transform with the conv's
//! epilogue and, for a conv feeding an SE block, the squeeze (`wino_out.wgsl`). 2.25x fewer
//! multiplies than the direct GEMM, for 4x the activation traffic in the transformed tiles.

use std::sync::Arc;

use excite_ir::Node;
use excite_ir::op::Conv;

use crate::WgslError;
use crate::conv::pointwise_gemm;
use crate::lower::{Lower, Partials, bindings, tree_sum};
use crate::render::{i, render, u};

const WINO_IN: &str = include_str!("kernels/wino_in.wgsl");
const WINO_OUT: &str = include_str!("kernels/wino_out.wgsl");
const SQUEEZE_END: &str = include_str!("kernels/splitk_squeeze_end.wgsl");

/// Tiles of a conv's output: per row, per image, in all (`n` images), and padded to a
/// multiple of 4 (the GEMM's columns).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tiles {
    pub tw: usize,
    pub per_image: usize,
    pub total: usize,
    pub padded: usize,
}

impl Tiles {
    pub fn new(n: usize, [oh, ow]: [usize; 2]) -> Tiles {
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        let total = n * th * tw;
        Tiles {
            tw,
            per_image: th * tw,
            total,
            padded: total.next_multiple_of(4),
        }
    }
}

/// Whether the conv (`cin -> m` channels over `n` images) runs by Winograd: the knob is on, a
/// dense 3x3 stride-1 undilated conv, enough GEMM tiles that it would not split K, and the
/// transformed tiles fit one binding.
pub(crate) fn eligible(
    l: &Lower<'_>,
    c: &Conv,
    [n, cin, m]: [usize; 3],
    oh_ow: [usize; 2],
) -> bool {
    if !l.limits.winograd
        || c.group != 1
        || c.strides != [1, 1]
        || c.dilations != [1, 1]
        || oh_ow.contains(&0)
    {
        return false;
    }
    let t = Tiles::new(n, oh_ow);
    let gemm_tiles = t.padded.div_ceil(64) * m.div_ceil(64) * 16;
    let most = l
        .limits
        .max_storage_buffer_binding_size
        .min(l.limits.max_buffer_size) as usize;
    gemm_tiles >= l.limits.min_workgroups as usize && 16 * cin.max(m) * t.padded * 4 <= most
}

/// `U[xi][m][c]` (`G g G^T` of each 3x3 filter, computed in f64) laid out as a grouped
/// pointwise conv's weight: row `xi * m + mo`, column `ci`.
fn transform_weights(w: &[f32], m: usize, c: usize) -> Vec<f32> {
    let g = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let mut out = vec![0f32; 16 * m * c];
    for mo in 0..m {
        for ci in 0..c {
            let f = |r: usize, s: usize| f64::from(w[((mo * c + ci) * 3 + r) * 3 + s]);
            for a in 0..4 {
                for b in 0..4 {
                    let mut v = 0.0;
                    for (r, gr) in g[a].iter().enumerate() {
                        for (s, gs) in g[b].iter().enumerate() {
                            v += gr * f(r, s) * gs;
                        }
                    }
                    out[((a * 4 + b) * m + mo) * c + ci] = v as f32;
                }
            }
        }
    }
    out
}

/// What [`lower`] needs of the conv: its buffers and the epilogue's bindings and code.
pub(crate) struct WinoConv<'a> {
    /// Input and output buffers.
    pub x: usize,
    pub y: usize,
    /// The weight `[m, cin, 3, 3]` and its name (for the transformed copy).
    pub w: &'a [f32],
    pub w_name: String,
    /// `(name, writable, type)` and buffer of each epilogue operand (bias, residual, gates).
    pub extra: Vec<(crate::conv::Binding, usize)>,
    pub epilogue: String,
    /// Whether the output feeds an SE block whose squeeze this conv writes.
    pub squeeze: bool,
}

/// Lowers one conv by Winograd (`eligible` said so): three dispatches.
pub(crate) fn lower(
    l: &mut Lower<'_>,
    node: &Node,
    c: &Conv,
    [n, cin, h, w]: [usize; 4],
    [m, oh, ow]: [usize; 3],
    wc: WinoConv<'_>,
) -> Result<(), WgslError> {
    let t = Tiles::new(n, [oh, ow]);
    if wc.w.len() < m * cin * 9 {
        return Err(crate::lower::unsupported(
            node,
            "weight shorter than its shape",
        ));
    }
    // 1. Input transform into V[16][cin][TP].
    let v = l.temp(&format!("{}.wino_v", node.name), 16 * cin * t.padded)?;
    let (groups, row) = l.grid(cin * t.padded);
    let holes = [
        (
            "bindings",
            bindings(&[("x", false, "f32"), ("v", true, "f32")]),
        ),
        ("c", u(cin)),
        ("h", i(h)),
        ("w", i(w)),
        ("pt", i(c.pads[0])),
        ("pl", i(c.pads[1])),
        ("tw", u(t.tw)),
        ("tpl", u(t.per_image)),
        ("t", u(t.total)),
        ("tp", u(t.padded)),
        ("row", row),
    ];
    let module = l.module("wino_in", WINO_IN, &holes)?;
    l.dispatch(node, module, vec![wc.x, v], groups)?;
    // 2. P[xi] = U[xi] V[xi]: a pointwise conv of 16 groups over TP columns.
    let p = l.temp(&format!("{}.wino_p", node.name), 16 * m * t.padded)?;
    let u_w: Arc<[f32]> = Arc::from(transform_weights(wc.w, m, cin));
    let label = format!("{}.winograd", wc.w_name);
    pointwise_gemm(l, node, [v, p], (&u_w, &label), [16, cin, m, t.padded])?;
    l.release(v);
    // 3. Output transform, epilogue and squeeze, by planes of SPAN-tile chunks.
    let span = 256;
    let threads = t.per_image.min(span).next_power_of_two().clamp(32, 256);
    let chunks = t.per_image.div_ceil(span);
    let mut decl = vec![("part", false, "f32")];
    let mut binds = vec![p];
    for (d, b) in &wc.extra {
        decl.push(*d);
        binds.push(*b);
    }
    decl.push(("y", true, "f32"));
    binds.push(wc.y);
    let mut squeeze = String::new();
    if wc.squeeze {
        let partials = l.temp(&format!("{}.partials", node.name), n * chunks * m)?;
        decl.push(("partials", true, "f32"));
        binds.push(partials);
        l.squeezed.insert(
            node.outputs[0],
            Some(Partials {
                buf: partials,
                tiles: chunks,
                parts: 0,
            }),
        );
        let sum = tree_sum(["red", "lid.x", "s", "THREADS", "lane"])?;
        squeeze = render("splitk_squeeze_end", SQUEEZE_END, &[("sum", sum)])?
            .trim_end()
            .to_string();
    }
    let holes = [
        ("bindings", bindings(&decl)),
        ("cout", u(m)),
        ("oh", u(oh)),
        ("ow", u(ow)),
        ("tw", u(t.tw)),
        ("tpl", u(t.per_image)),
        ("tp", u(t.padded)),
        ("threads", u(threads)),
        ("chunks", u(chunks)),
        ("span", u(span)),
        ("epilogue", indent(&wc.epilogue, 24)),
        ("squeeze", squeeze),
    ];
    let module = l.module("wino_out", WINO_OUT, &holes)?;
    let groups = [m.div_ceil(256 / threads), n, chunks].map(|d| d as u32);
    l.dispatch(node, module, binds, groups)?;
    l.release(p);
    Ok(())
}

/// `code` with each line indented by `by` spaces.
fn indent(code: &str, by: usize) -> String {
    code.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("{}{}", " ".repeat(by), line.trim_start()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_output_in_2x2_blocks() {
        let t = Tiles::new(2, [7, 5]);
        assert_eq!((t.tw, t.per_image, t.total, t.padded), (3, 12, 24, 24));
        let t = Tiles::new(1, [3, 3]);
        assert_eq!((t.tw, t.per_image, t.total, t.padded), (2, 4, 4, 4));
        assert_eq!(Tiles::new(1, [1, 5]).padded, 4);
    }

    #[test]
    fn transformed_weights_of_a_delta_filter() {
        // A filter that is 1 at its centre: G g G^T = g[1][1] * G[:,1] G[:,1]^T.
        let mut w = vec![0f32; 9];
        w[4] = 1.0;
        let u = transform_weights(&w, 1, 1);
        let col = [0.0, 0.5, -0.5, 0.0];
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(u[a * 4 + b], (col[a] * col[b]) as f32, "({a}, {b})");
            }
        }
    }
}
