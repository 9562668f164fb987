//! Winograd F(MxM, 3x3), M = 2 or 4, for 3x3 stride-1 convolutions with enough GEMM tiles
//! (`Limits::winograd`: F(4x4) by default, which took ResNet-50 at batch 32 on an H100 from
//! 12.14 to 10.10 ms; F(2x2) 10.37; 0 turns it off): an input transform
//! (`wino_in.wgsl`: each (M+2)^2 input patch to as many values), the (M+2)^2 products
//! `P[xi] = U[xi] V[xi]` as one grouped pointwise conv on the GEMM kernel (`conv1x1.wgsl`), and an
//! output transform with the conv's epilogue and, for a conv feeding an SE block, the squeeze
//! (`wino_out.wgsl`). The transforms are generated straight-line from the variant's matrices
//! (Lavin and Gray's). F(2x2): 2.25x fewer multiplies than the direct GEMM for 4x the
//! activation traffic in the transformed tiles; F(4x4): 4x fewer for 2.25x.

use std::sync::Arc;

use excite_ir::Node;
use excite_ir::op::Conv;

use crate::WgslError;
use crate::conv::{plane_squeeze, pointwise_gemm};
use crate::lower::{Lower, bindings};
use crate::render::{i, u};

const WINO_IN: &str = include_str!("kernels/wino_in.wgsl");
const WINO_OUT: &str = include_str!("kernels/wino_out.wgsl");

/// A Winograd variant F(MxM, 3x3): `bt` (B^T, alpha x alpha), `g` (alpha x 3), `at` (A^T,
/// M x alpha), alpha = M + 2.
struct Variant {
    m: usize,
    bt: &'static [&'static [f64]],
    g: &'static [[f64; 3]],
    at: &'static [&'static [f64]],
}

impl Variant {
    fn alpha(&self) -> usize {
        self.m + 2
    }
}

const F2: Variant = Variant {
    m: 2,
    bt: &[
        &[1.0, 0.0, -1.0, 0.0],
        &[0.0, 1.0, 1.0, 0.0],
        &[0.0, -1.0, 1.0, 0.0],
        &[0.0, 1.0, 0.0, -1.0],
    ],
    g: &[
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ],
    at: &[&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, -1.0, -1.0]],
};

const F4: Variant = Variant {
    m: 4,
    bt: &[
        &[4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        &[0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        &[0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        &[0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        &[0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        &[0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ],
    g: &[
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ],
    at: &[
        &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        &[0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        &[0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        &[0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
};

/// The variant of tile side `m` (`Limits::winograd`): 2 or 4.
fn variant(m: u32) -> Option<&'static Variant> {
    match m {
        2 => Some(&F2),
        4 => Some(&F4),
        _ => None,
    }
}

/// `sum_k coef[k] * term(k)` as a WGSL expression (zero coefficients left out).
fn combo(coef: &[f64], term: impl Fn(usize) -> String) -> String {
    let mut e = String::new();
    for (k, &c) in coef.iter().enumerate() {
        if c == 0.0 {
            continue;
        }
        let sign = if c < 0.0 { "-" } else { "+" };
        let mag = c.abs();
        let t = if mag == 1.0 {
            term(k)
        } else {
            format!("{:?}f * {}", mag as f32, term(k))
        };
        if e.is_empty() {
            e = if c < 0.0 { format!("-{t}") } else { t };
        } else {
            e.push_str(&format!(" {sign} {t}"));
        }
    }
    if e.is_empty() { "0.0".to_string() } else { e }
}

/// wino_in.wgsl's `transform`: `e = B^T d`, then `V = e B`, each of the alpha^2 values stored
/// at `v[at + xi * CT]`.
fn input_transform(f: &Variant) -> String {
    let a = f.alpha();
    let mut code = String::new();
    for i in 0..a {
        for s in 0..a {
            let e = combo(f.bt[i], |k| format!("d[{k}][{s}]"));
            code.push_str(&format!("    let e{i}_{s} = {e};\n"));
        }
    }
    for i in 0..a {
        for j in 0..a {
            let v = combo(f.bt[j], |k| format!("e{i}_{k}"));
            code.push_str(&format!("    v[at + {}u * CT] = {v};\n", i * a + j));
        }
    }
    code.trim_end().to_string()
}

/// wino_out.wgsl's `transform`: the alpha^2 products of the tile, `q = A^T P`, then
/// `yt = q A`.
fn output_transform(f: &Variant) -> String {
    let a = f.alpha();
    let pad = " ".repeat(12);
    let mut code = String::new();
    for xi in 0..a * a {
        code.push_str(&format!(
            "{pad}let p{}_{} = part[at + {xi}u * CT];\n",
            xi / a,
            xi % a
        ));
    }
    for r in 0..f.m {
        for j in 0..a {
            let q = combo(f.at[r], |k| format!("p{k}_{j}"));
            code.push_str(&format!("{pad}let q{r}_{j} = {q};\n"));
        }
    }
    for r in 0..f.m {
        for s in 0..f.m {
            let y = combo(f.at[s], |k| format!("q{r}_{k}"));
            code.push_str(&format!("{pad}yt[{r}][{s}] = {y};\n"));
        }
    }
    code.trim_end().to_string()
}

/// Tiles of a conv's output, `m` x `m` outputs each: per row, per image, in all (`n`
/// images), and padded to a multiple of 4 (the GEMM's columns).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tiles {
    pub tw: usize,
    pub per_image: usize,
    pub total: usize,
    pub padded: usize,
}

impl Tiles {
    pub fn new(m: usize, n: usize, [oh, ow]: [usize; 2]) -> Tiles {
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
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
    let Some(f) = variant(l.limits.winograd) else {
        return false;
    };
    if c.group != 1 || c.strides != [1, 1] || c.dilations != [1, 1] || oh_ow.contains(&0) {
        return false;
    }
    let t = Tiles::new(f.m, n, oh_ow);
    let xis = f.alpha() * f.alpha();
    let gemm_tiles = t.padded.div_ceil(64) * m.div_ceil(64) * xis;
    let most = l
        .limits
        .max_storage_buffer_binding_size
        .min(l.limits.max_buffer_size) as usize;
    let bytes = [xis, cin.max(m), t.padded, 4]
        .into_iter()
        .fold(1usize, usize::saturating_mul);
    gemm_tiles >= l.limits.min_workgroups as usize && bytes <= most
}

/// `U[xi][m][c]` (`G g G^T` of each 3x3 filter, computed in f64) laid out as a grouped
/// pointwise conv's weight: row `xi * m + mo`, column `ci`.
fn transform_weights(f: &Variant, w: &[f32], m: usize, c: usize) -> Vec<f32> {
    let a = f.alpha();
    let mut out = vec![0f32; a * a * m * c];
    for mo in 0..m {
        for ci in 0..c {
            let g = |r: usize, s: usize| f64::from(w[((mo * c + ci) * 3 + r) * 3 + s]);
            for x in 0..a {
                for y in 0..a {
                    let mut v = 0.0;
                    for (r, gx) in f.g[x].iter().enumerate() {
                        for (s, gy) in f.g[y].iter().enumerate() {
                            v += gx * g(r, s) * gy;
                        }
                    }
                    out[((x * a + y) * m + mo) * c + ci] = v as f32;
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
    let f = variant(l.limits.winograd)
        .ok_or_else(|| crate::lower::unsupported(node, "internal: no such Winograd variant"))?;
    let xis = f.alpha() * f.alpha();
    let t = Tiles::new(f.m, n, [oh, ow]);
    if wc.w.len() < m * cin * 9 {
        return Err(crate::lower::unsupported(
            node,
            "weight shorter than its shape",
        ));
    }
    // 1. Input transform into V[alpha^2][cin][TP].
    let v = l.temp(&format!("{}.wino_v", node.name), xis * cin * t.padded)?;
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
        ("m", u(f.m)),
        ("alpha", f.alpha().to_string()),
        ("tw", u(t.tw)),
        ("tpl", u(t.per_image)),
        ("t", u(t.total)),
        ("tp", u(t.padded)),
        ("row", row),
        ("transform", input_transform(f)),
    ];
    let module = l.module("wino_in", WINO_IN, &holes)?;
    l.dispatch(node, module, vec![wc.x, v], groups)?;
    // 2. P[xi] = U[xi] V[xi]: a pointwise conv of alpha^2 groups over TP columns.
    let p = l.temp(&format!("{}.wino_p", node.name), xis * m * t.padded)?;
    let u_w: Arc<[f32]> = Arc::from(transform_weights(f, wc.w, m, cin));
    let label = format!("{}.winograd{}", wc.w_name, f.m);
    pointwise_gemm(l, node, [v, p], (&u_w, &label), [xis, cin, m, t.padded])?;
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
    let squeeze = if wc.squeeze {
        plane_squeeze(
            l,
            node,
            n * chunks * m,
            [chunks, threads],
            (&mut decl, &mut binds),
        )?
    } else {
        String::new()
    };
    let holes = [
        ("bindings", bindings(&decl)),
        ("cout", u(m)),
        ("oh", u(oh)),
        ("ow", u(ow)),
        ("m", u(f.m)),
        ("tw", u(t.tw)),
        ("tpl", u(t.per_image)),
        ("tp", u(t.padded)),
        ("threads", u(threads)),
        ("chunks", u(chunks)),
        ("span", u(span)),
        ("epilogue", indent(&wc.epilogue, 24)),
        ("squeeze", squeeze),
        ("transform", output_transform(f)),
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
    fn tiles_cover_the_output() {
        let t = Tiles::new(2, 2, [7, 5]);
        assert_eq!((t.tw, t.per_image, t.total, t.padded), (3, 12, 24, 24));
        let t = Tiles::new(2, 1, [3, 3]);
        assert_eq!((t.tw, t.per_image, t.total, t.padded), (2, 4, 4, 4));
        assert_eq!(Tiles::new(2, 1, [1, 5]).padded, 4);
        let t = Tiles::new(4, 3, [7, 9]);
        assert_eq!((t.tw, t.per_image, t.total, t.padded), (3, 6, 18, 20));
    }

    /// The 1-D Winograd identity each variant must satisfy: for a signal `d` (alpha long) and
    /// a filter `g` (3 long), `A^T ((G g) * (B^T d))` is the valid correlation of d with g.
    #[test]
    fn variants_compute_the_correlation() {
        for f in [&F2, &F4] {
            let a = f.alpha();
            let d: Vec<f64> = (0..a).map(|i| (i as f64 * 0.7 - 1.3).sin()).collect();
            let g = [0.3, -1.1, 0.6];
            let gg: Vec<f64> = (0..a)
                .map(|x| (0..3).map(|r| f.g[x][r] * g[r]).sum())
                .collect();
            let bd: Vec<f64> = (0..a)
                .map(|x| (0..a).map(|k| f.bt[x][k] * d[k]).sum())
                .collect();
            for (o, row) in f.at.iter().enumerate() {
                let got: f64 = (0..a).map(|x| row[x] * gg[x] * bd[x]).sum();
                let want: f64 = (0..3).map(|r| d[o + r] * g[r]).sum();
                assert!(
                    (got - want).abs() < 1e-12,
                    "F({}) output {o}: {got} vs {want}",
                    f.m
                );
            }
        }
    }

    #[test]
    fn transforms_leave_out_zero_terms() {
        assert_eq!(combo(&[1.0, 0.0, -1.0], |k| format!("d{k}")), "d0 - d2");
        assert_eq!(
            combo(&[0.0, -4.0, 0.5], |k| format!("d{k}")),
            "-4.0f * d1 + 0.5f * d2"
        );
        assert_eq!(combo(&[0.0, 0.0], |k| format!("d{k}")), "0.0");
        assert!(input_transform(&F4).contains("v[at + 35u * CT] = "));
        assert!(output_transform(&F4).contains("yt[3][3] = "));
    }
}
