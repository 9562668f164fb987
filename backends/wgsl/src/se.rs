//! The SE block in two dispatches: `se_fc` (finish the squeeze, FC1, act: the `[N, Cr]` hidden
//! values, many workgroups per image) then `se_scale` (per block of channels: FC2 and the gates
//! of those channels, then scale -> residual add -> act over their planes, vectorised). When
//! the SE input comes straight from a GEMM convolution, that conv already wrote partial channel
//! sums (`conv1x1_squeeze.wgsl` per image tile, `conv1x1.wgsl` / `conv.wgsl` over tiles
//! straddling images, or `splitk_squeeze.wgsl` for a split-K conv), so `se_fc` only adds a few
//! partials per channel; otherwise one `se_fc` workgroup per image reads the image itself.
//!
//! An SE block fed by a linear 1x1 conv (a bottleneck's conv3, BN folded) is folded into that
//! conv ([`folds`], [`folded_conv`]): FC1 is composed with the conv (`W13 = W1 W3`, on the host),
//! so `se_fc` and the gates run *before* the conv, from the squeeze of the conv's input, and the
//! conv's epilogue applies gate, residual and act: the block adds two small dispatches and no
//! pass over any tensor. Where the conv splits K, or is small enough for each tile to compute
//! its own gates, not even those ([`conv::Gates`]).
//!
//! Otherwise, when the SE output's first reader is a plain 1x1 conv ([`scale_into_consumers`]),
//! the second dispatch only stores the gates (`se_gates`) and that conv applies the scale as it
//! loads its input (see `conv.rs`), so the block makes no pass over its tensor of its own.
//!
//! WGSL has no grid-wide barrier and no float atomics, so the sums must be complete (a finished
//! dispatch) before FC1, and FC1 complete before any gate: the block's two global dependencies,
//! hence two dispatches. FC2 is split by channel block, so no work is repeated.

use std::collections::HashMap;

use excite_ir::op::Conv;
use excite_ir::{Node, NodeId, Op, SeBlock, ValueId};

use crate::conv::{Binding, Hole};
use crate::expr::{Step, act_expr, emit_with, lit};
use crate::lower::{Deferred, Lower, bindings, tree_sum, unsupported};
use crate::render::{render, u};
use crate::{WgslError, conv};

const FC: &str = include_str!("kernels/se_fc.wgsl");
const HIDDEN: &str = include_str!("kernels/se_hidden.wgsl");
const TILE: &str = include_str!("kernels/se_tile.wgsl");
const SCALE: &str = include_str!("kernels/se_scale.wgsl");
// The variants of se_fc's `squeeze` and se_scale's `finish` holes.
const PARTIALS: &str = include_str!("kernels/se_fc_partials.wgsl");
const POOL: &str = include_str!("kernels/se_fc_pool.wgsl");
const APPLY: &str = include_str!("kernels/se_scale_apply.wgsl");
const GATES: &str = include_str!("kernels/se_gates.wgsl");

/// Elements each scale workgroup covers at most, unless one channel is larger (sets the
/// channels per block: a power of two up to 16).
const ELEMS_PER_GROUP: usize = 4096;
/// Hidden units per `se_fc` workgroup when the squeeze comes from partial sums.
const UNITS_PER_GROUP: usize = 2;

/// Lowers a SeBlock; returns the temporaries (squeeze partials, hidden values) to free after
/// the node.
pub(crate) fn se_block(
    l: &mut Lower<'_>,
    node: &Node,
    se: &SeBlock,
    y: usize,
) -> Result<Vec<usize>, WgslError> {
    let slots = se.input_slots();
    let xv = node.inputs[0];
    let xs = l.shape(xv)?;
    let &[n, c, h, w] = &xs[..] else {
        return Err(unsupported(node, "the input must be 4-D"));
    };
    let hw = h * w;
    let w1s = l.shape(node.inputs[1])?;
    let cr = (*w1s
        .first()
        .ok_or_else(|| unsupported(node, "w1 has no shape"))?)
    .max(1);
    let xb = l.buffer_of(xv)?;
    let w1 = fc_weight(l, node, node.inputs[1], cr * c)?;
    let b1 = slots.b1.map(|b| l.buffer_of(node.inputs[b])).transpose()?;
    let (z, temps) = hidden(l, node, se, xv, [n, c, hw, cr], w1, b1)?;
    let w2v = node.inputs[slots.w2];
    let b2 = slots.b2.map(|b| l.buffer_of(node.inputs[b])).transpose()?;

    // Gates and scale, four elements per access when every plane is a whole number of vec4s.
    let mut steps = vec![Step::Scale];
    let res = match slots.r {
        Some(r) => {
            steps.push(Step::Residual);
            Some(l.buffer_of(node.inputs[r])?)
        }
        None => None,
    };
    steps.extend(se.post_act.map(Step::Act));
    let out = node.outputs[0];
    if l.defer_scale.contains(&out) {
        // The consumer conv scales as it loads (conv1x1.wgsl's prologue): store the gates.
        let gates = store_gates(l, node, se, [n, c, hw, cr], z, w2v, b2)?;
        l.deferred.insert(
            out,
            Deferred {
                x: xb,
                gates,
                res,
                steps,
                y,
                temps: vec![gates],
            },
        );
        return Ok(temps);
    }
    let w2 = fc_weight(l, node, w2v, cr * c)?;
    let width = if hw.is_multiple_of(4) { 4 } else { 1 };
    let vt = if width == 4 { "vec4<f32>" } else { "f32" };
    let mut decl = vec![("x", false, vt), ("z", false, "f32"), ("w2", false, "f32")];
    let mut binds = vec![xb, z, w2];
    if let Some(b2) = b2 {
        decl.push(("b2", false, "f32"));
        binds.push(b2);
    }
    let mut load_res = String::new();
    if let Some(r) = res {
        decl.push(("res", false, vt));
        binds.push(r);
        load_res = "        let rq = res[q];".to_string();
    }
    decl.push(("y", true, vt));
    binds.push(y);
    let lane = |v: &str| {
        if width == 4 {
            format!("{v}[j]")
        } else {
            v.to_string()
        }
    };
    let epilogue: String = emit_with(&steps, &lane("rq"))?
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    let finish = render(
        "se_scale_apply",
        APPLY,
        &[
            ("load_res", load_res),
            ("vt", vt.to_string()),
            ("xj", lane("xq")),
            ("epilogue", epilogue.trim_end().to_string()),
            ("outj", lane("out")),
        ],
    )?;
    gates_dispatch(
        l,
        node,
        se,
        [n, c, hw, cr],
        (decl, binds),
        b2.is_some(),
        finish.trim_end().to_string(),
    )?;
    Ok(temps)
}

/// The SE hidden layer `z[n, :] = act(W1 . mean(x[n]) + b1)` for the `c`-channel tensor `x`
/// (`hw` pixels per plane, `cr` hidden units) as code (se_hidden.wgsl's `se_hidden` function)
/// and the bindings it reads and writes: from the partial sums its producing conv wrote where
/// it did, else reading `x` (then one call per image computes every hidden unit). `se_fc` runs
/// it in a dispatch of its own; a split-K conv an SE block is folded into, in extra workgroups
/// of its GEMM dispatch.
pub(crate) struct Hidden {
    /// `(name, writable, element type)` of each binding, in the order of `binds`.
    pub decl: Vec<Binding>,
    pub binds: Vec<usize>,
    /// se_hidden.wgsl, rendered.
    pub code: String,
    /// Calls per image (`se_hidden(ub, n, t)` for `ub` in `0..units`).
    pub units: usize,
    /// The `[N, cr]` hidden values (also in `temps`).
    pub z: usize,
    /// The temporaries to free once the block has run (the partial sums and `z`).
    pub temps: Vec<usize>,
}

/// The squeeze of an SE block's input `xv` (`n` images of `c` planes of `hw` pixels) as the
/// `squeeze` hole of se_hidden.wgsl / se_tile.wgsl: the channel means into `se_sm`, from the
/// partial sums its producing conv wrote (`partials`), else reading the tensor.
struct Squeeze {
    decl: Vec<Binding>,
    binds: Vec<usize>,
    code: String,
    /// Partial sums per image (per tile) for SE_TILES, or 1.
    tiles: usize,
    partials: bool,
    /// The partial sums' buffer, to free once the block has run.
    temps: Vec<usize>,
}

fn squeeze_code(
    l: &mut Lower<'_>,
    xv: ValueId,
    [_, c, hw]: [usize; 3],
) -> Result<Squeeze, WgslError> {
    Ok(match l.squeezed.get(&xv).copied().flatten() {
        Some(p) => {
            // Used once: another SE block reading the same tensor squeezes it itself.
            l.squeezed.insert(xv, None);
            // Lanes per channel: what leaves no thread idle, at most one per partial sum.
            let per_image = if p.parts == 0 { p.tiles } else { hw / 64 + 2 };
            let lanes = (256 / c.next_power_of_two())
                .min(per_image.next_power_of_two())
                .max(1);
            // Tiles per image, or the tiles meeting image n (`parts` sums each).
            let (setup, first, end, index) = if p.parts == 0 {
                (
                    "",
                    "0u",
                    "SE_TILES",
                    "(n * SE_TILES + i) * SE_C + c".to_string(),
                )
            } else {
                (
                    "    let ta = (n * SE_HW) / 64u;\n    let tb = ((n + 1u) * SE_HW - 1u) / 64u;",
                    "ta",
                    "tb + 1u",
                    format!("(i * {} + n - (i * 64u) / SE_HW) * SE_C + c", u(p.parts)),
                )
            };
            let holes = [
                ("setup", setup.to_string()),
                ("lanes", u(lanes)),
                ("first", first.to_string()),
                ("end", end.to_string()),
                ("index", index),
            ];
            Squeeze {
                decl: vec![("se_partials", false, "f32")],
                binds: vec![p.buf],
                code: render("se_fc_partials", PARTIALS, &holes)?,
                tiles: p.tiles,
                partials: true,
                temps: vec![p.buf],
            }
        }
        None => Squeeze {
            decl: vec![("se_x", false, "f32")],
            binds: vec![l.buffer_of(xv)?],
            code: POOL.to_string(),
            tiles: 1,
            partials: false,
            temps: Vec::new(),
        },
    })
}

/// The constants se_hidden.wgsl and se_tile.wgsl share (and their squeeze snippets use): input
/// channels, hidden units, pixels per plane, partial sums per image, 1 / pixels.
fn se_consts([c, cr, hw, tiles]: [usize; 4]) -> Result<[Hole; 5], WgslError> {
    Ok([
        ("c", u(c)),
        ("cr", u(cr)),
        ("hw", u(hw)),
        ("tiles", u(tiles)),
        ("scale", lit(1.0 / hw.max(1) as f32)?),
    ])
}

/// Builds [`Hidden`] for SE block `node` over `xv` (see there).
pub(crate) fn hidden_code(
    l: &mut Lower<'_>,
    node: &Node,
    se: &SeBlock,
    xv: ValueId,
    [n, c, hw, cr]: [usize; 4],
    w1: usize,
    b1: Option<usize>,
) -> Result<Hidden, WgslError> {
    // Workgroup memory: the C means and 256 sums (se_fc); 256 sums and CB gates (se_scale).
    let need = 4 * (c + 256);
    if need > l.limits.max_compute_workgroup_storage_size as usize {
        return Err(unsupported(
            node,
            &format!(
                "{c} channels and {cr} hidden values need {need} bytes of workgroup memory; \
                 the device has {}",
                l.limits.max_compute_workgroup_storage_size
            ),
        ));
    }
    let sq = squeeze_code(l, xv, [n, c, hw])?;
    let jb = if sq.partials {
        UNITS_PER_GROUP
    } else {
        // One workgroup per image then computes every hidden unit.
        cr.next_multiple_of(2)
    };
    let (mut decl, mut binds, mut temps) = (sq.decl, sq.binds, sq.temps);
    let (squeeze, tiles) = (sq.code, sq.tiles);
    decl.push(("se_w1", false, "f32"));
    binds.push(w1);
    if let Some(b1) = b1 {
        decl.push(("se_b1", false, "f32"));
        binds.push(b1);
    }
    let z = l.temp(&format!("{}.hidden", node.name), n * cr)?;
    temps.push(z);
    decl.push(("se_z", true, "f32"));
    binds.push(z);
    let [c0, c1, c2, c3, c4] = se_consts([c, cr, hw, tiles])?;
    let code = render(
        "se_hidden",
        HIDDEN,
        &[
            c0,
            c1,
            c2,
            c3,
            c4,
            ("jb", u(jb)),
            ("squeeze", squeeze.trim_end().to_string()),
            (
                "sum",
                tree_sum(
                    l.limits.tree_radix,
                    ["se_red", "t", "a.x + a.y + a.z + a.w", "lane"],
                    128,
                )?,
            ),
            ("b1", if b1.is_some() { "se_b1[j]" } else { "0.0" }.into()),
            ("act", act_expr(se.act, "v")?),
        ],
    )?;
    Ok(Hidden {
        decl,
        binds,
        code,
        units: cr.div_ceil(jb),
        z,
        temps,
    })
}

/// The SE block's dispatch 1 (`se_fc`): [`Hidden`] in a dispatch of its own. Returns `z` and
/// the temporaries to free once the block has run (the partial sums; `z` is one of them).
fn hidden(
    l: &mut Lower<'_>,
    node: &Node,
    se: &SeBlock,
    xv: ValueId,
    dims: [usize; 4],
    w1: usize,
    b1: Option<usize>,
) -> Result<(usize, Vec<usize>), WgslError> {
    let h = hidden_code(l, node, se, xv, dims, w1, b1)?;
    let m = l.module(
        "se_fc",
        FC,
        &[
            ("bindings", bindings(&h.decl)),
            ("hidden", h.code.trim_end().to_string()),
        ],
    )?;
    l.dispatch(node, m, h.binds, [h.units as u32, dims[0] as u32, 1])?;
    Ok((h.z, h.temps))
}

/// The gates of an SE block folded into a small 1x1 conv, computed by each of that conv's tiles
/// ([`conv::Gates::Tile`]): se_tile.wgsl rendered, and its bindings.
pub(crate) struct TileGates {
    pub decl: Vec<Binding>,
    pub binds: Vec<usize>,
    pub code: String,
    /// The squeeze's partial sums, to free once the conv has run.
    pub temps: Vec<usize>,
}

/// [`TileGates`] for SE block `se_node` folded into a conv over `xv` (`dims`: images, input
/// channels, pixels per plane, hidden units; `c` output channels), FC1 composed as `w13`/`b13`.
#[allow(clippy::too_many_arguments)]
fn tile_gates(
    l: &mut Lower<'_>,
    se_node: &Node,
    se: &SeBlock,
    xv: ValueId,
    [n, cin, hw, cr]: [usize; 4],
    c: usize,
    (w13, b13): (&[f32], &[f32]),
    w2v: ValueId,
) -> Result<TileGates, WgslError> {
    let slots = se.input_slots();
    let sq = squeeze_code(l, xv, [n, cin, hw])?;
    let mut w1b = w13.to_vec();
    w1b.extend_from_slice(b13);
    let mut w2b = constant(l, se_node, w2v, cr * c, "w2")?;
    let b2 = match slots.b2 {
        Some(b) => Some(constant(l, se_node, se_node.inputs[b], c, "b2")?),
        None => None,
    };
    if let Some(b2) = &b2 {
        w2b.extend_from_slice(b2);
    }
    let mut decl = sq.decl;
    let mut binds = sq.binds;
    decl.extend([("se_w1b", false, "f32"), ("se_w2b", false, "f32")]);
    binds.push(l.weight(&format!("{}.w13b", se_node.name), w1b.into())?);
    binds.push(l.weight(&format!("{}.w2b", se_node.name), w2b.into())?);
    let [c0, c1, c2, c3, c4] = se_consts([cin, cr, hw, sq.tiles])?;
    let lanes = (256 / cr.next_power_of_two()).max(1);
    let code = render(
        "se_tile",
        TILE,
        &[
            c0,
            c1,
            c2,
            c3,
            c4,
            ("lanes", u(lanes)),
            ("squeeze", sq.code.trim_end().to_string()),
            (
                "sum",
                tree_sum(l.limits.tree_radix, ["se_red", "t", "a", "l"], lanes)?,
            ),
            ("b1", "se_w1b[SE_CR * SE_C + j]".to_string()),
            ("act", act_expr(se.act, "v")?),
            (
                "b2",
                if b2.is_some() {
                    "se_w2b[COUT * SE_CR + c]"
                } else {
                    "0.0"
                }
                .to_string(),
            ),
            ("gate", act_expr(se.gate, "v")?),
        ],
    )?;
    Ok(TileGates {
        decl,
        binds,
        code,
        temps: sq.temps,
    })
}

/// The SE block's dispatch 2 when a conv applies the gates (`se_gates`): `gates[n, c] =
/// gate(W2[c] . z[n] + b2[c])` into a new `[N, C]` buffer, which it returns; one thread per
/// gate, over FC2's weight `w2v` transposed on the host.
fn store_gates(
    l: &mut Lower<'_>,
    node: &Node,
    se: &SeBlock,
    [n, c, _, cr]: [usize; 4],
    z: usize,
    w2v: ValueId,
    b2: Option<usize>,
) -> Result<usize, WgslError> {
    let w2 = constant(l, node, w2v, cr * c, "w2")?;
    let mut w2t = vec![0f32; cr * c];
    for (ch, row) in w2.chunks_exact(cr).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            w2t[j * c + ch] = v;
        }
    }
    let w2t = l.weight(&format!("{}.w2t", node.name), w2t.into())?;
    let mut decl = vec![("z", false, "f32"), ("w2t", false, "f32")];
    let mut binds = vec![z, w2t];
    if let Some(b2) = b2 {
        decl.push(("b2", false, "f32"));
        binds.push(b2);
    }
    let gates = l.temp(&format!("{}.gates", node.name), n * c)?;
    decl.push(("gates", true, "f32"));
    binds.push(gates);
    let (groups, row) = l.grid(n * c);
    let m = l.module(
        "se_gates",
        GATES,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr)),
            ("total", u(n * c)),
            ("row", row),
            ("b2", if b2.is_some() { "b2[c]" } else { "0.0" }.into()),
            ("gate", act_expr(se.gate, "v")?),
        ],
    )?;
    l.dispatch(node, m, binds, groups)?;
    Ok(gates)
}

/// se_scale.wgsl over `(decl, binds)`, one workgroup per (block of channels, image), its
/// `finish` hole filled with `finish`.
fn gates_dispatch(
    l: &mut Lower<'_>,
    node: &Node,
    se: &SeBlock,
    [n, c, hw, cr]: [usize; 4],
    (decl, binds): (Vec<(&str, bool, &str)>, Vec<usize>),
    b2: bool,
    finish: String,
) -> Result<(), WgslError> {
    let mut cb = 16;
    while cb > 1 && cb * hw > ELEMS_PER_GROUP {
        cb /= 2;
    }
    let m = l.module(
        "se_scale",
        SCALE,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr)),
            ("hw", u(hw.max(1))),
            ("cb", u(cb)),
            ("width", u(if hw.is_multiple_of(4) { 4 } else { 1 })),
            ("b2", if b2 { "b2[c]" } else { "0.0" }.into()),
            ("gate", act_expr(se.gate, "v")?),
            (
                "sum",
                tree_sum(l.limits.tree_radix, ["red", "t", "acc", "lane"], 256 / cb)?,
            ),
            ("finish", finish),
        ],
    )?;
    l.dispatch(node, m, binds, [c.div_ceil(cb) as u32, n as u32, 1])
}

/// The SE blocks folded into the conv that feeds them, by that conv's output value. The conv
/// must be linear (no activation or residual), 1x1, stride 1, unpadded, ungrouped, with constant
/// weight and bias, and read by the SE block alone (as its data input); the SE FC1 weights
/// must be constants. Then `mean(W3 x + b3) = W3 mean(x) + b3`, so with `W13 = W1 W3` and
/// `b13 = W1 b3 + b1` the gates follow from the conv's *input* `x` (squeezed by its own
/// producer): `se_fc` and `se_gates` run before the conv, whose epilogue applies gate,
/// residual and act ([`folded_conv`]). The SE block makes no pass over its tensor, and the
/// squeeze covers the conv's input, which in a bottleneck has a quarter of the channels.
pub(crate) fn folds(l: &Lower<'_>, order: &[NodeId]) -> HashMap<ValueId, NodeId> {
    let g = l.g;
    let mut out = HashMap::new();
    if !l.limits.fold_se {
        return out;
    }
    for &id in order {
        let node = g.node(id);
        let Op::SeBlock(se) = &node.op else {
            continue;
        };
        let x = node.inputs[0];
        let Some(p) = g.producer(x) else {
            continue;
        };
        let conv = g.node(p);
        let Some((c, bias)) = linear_conv(conv) else {
            continue;
        };
        let plain = c.group == 1 && c.strides == [1, 1] && c.pads == [0; 4];
        let ws = l.shape(conv.inputs[1]).unwrap_or_default();
        let one_by_one = ws.len() == 4 && ws[2] == 1 && ws[3] == 1;
        let constants = l.weight_data(conv.inputs[1]).is_some()
            && bias.is_none_or(|b| l.weight_data(b).is_some())
            && l.weight_data(node.inputs[1]).is_some()
            && se
                .input_slots()
                .b1
                .is_none_or(|b| l.weight_data(node.inputs[b]).is_some());
        let only_reader = g.users(x) == [id] && !node.inputs[1..].contains(&x);
        let shapes = l.shape(x).is_ok_and(|s| s.len() == 4) && l.shape(conv.inputs[0]).is_ok();
        if plain && one_by_one && constants && only_reader && shapes && !g.outputs().contains(&x) {
            out.insert(x, id);
        }
    }
    out
}

/// Lowers `node`, a conv with SE block `se_node` folded into it (see [`folds`]), into `y`, the
/// SE output: `se_fc` over the conv's input with `W13`/`b13`, `se_gates`, then the conv with
/// the epilogue `post_act(gate * (conv + b3) + r)`.
pub(crate) fn folded_conv(
    l: &mut Lower<'_>,
    node: &Node,
    se_node: &Node,
    y: usize,
) -> Result<(), WgslError> {
    let Op::SeBlock(se) = &se_node.op else {
        return Err(unsupported(
            node,
            "internal: folded into a node that is not an SE block",
        ));
    };
    let (conv, bias) = linear_conv(node)
        .ok_or_else(|| unsupported(node, "internal: an SE block folded into a non-linear conv"))?;
    let slots = se.input_slots();
    let xs = l.shape(node.inputs[0])?;
    let ys = l.shape(node.outputs[0])?;
    let (&[n, cin, h, w], &[_, c, ..]) = (&xs[..], &ys[..]) else {
        return Err(unsupported(node, "the input must be 4-D"));
    };
    let cr = l
        .shape(se_node.inputs[1])?
        .first()
        .copied()
        .unwrap_or(0)
        .max(1);
    let w1 = constant(l, se_node, se_node.inputs[1], cr * c, "w1")?;
    let w3 = constant(l, se_node, node.inputs[1], c * cin, "the conv weight")?;
    let b1 = match slots.b1 {
        Some(b) => Some(constant(l, se_node, se_node.inputs[b], cr, "b1")?),
        None => None,
    };
    let b3 = match bias {
        Some(b) => Some(constant(l, se_node, b, c, "the conv bias")?),
        None => None,
    };
    let (w13, b13) = fold_fc1(&w1, b1.as_deref(), &w3, b3.as_deref(), [cr, c, cin]);
    let (w13_data, b13_data) = (w13, b13);
    let w13 = l.weight(&format!("{}.w13", se_node.name), w13_data.clone().into())?;
    let b13 = l.weight(&format!("{}.b13", se_node.name), b13_data.clone().into())?;
    let dims = [n, cin, h * w, cr];
    let w2v = se_node.inputs[slots.w2];
    let b2 = slots
        .b2
        .map(|b| l.buffer_of(se_node.inputs[b]))
        .transpose()?;
    let res = slots.r.map(|r| se_node.inputs[r]);
    // Where the conv splits K, its GEMM dispatch computes the hidden layer in extra workgroups
    // and its reduction the gates (conv::Gates::Tail), if the bindings and workgroup memory
    // allow: GEMM x, weight, parts and 4 for the hidden layer; reduction parts, bias, residual,
    // y, squeeze partials, z, w2, b2. Else `se_fc` and `se_gates` run before the conv.
    let max_bindings = l.limits.max_storage_buffers_per_shader_stage as usize;
    let reduction = 4
        + usize::from(bias.is_some())
        + usize::from(res.is_some())
        + usize::from(l.squeezed.contains_key(&node.outputs[0]))
        + usize::from(b2.is_some());
    let memory = 4 * (3072 + cin + 256); // 128-row A tile, B tile, se_hidden's arrays
    let splits = conv::splits(l, node, conv)?;
    let max_memory = l.limits.max_compute_workgroup_storage_size as usize;
    let tail = splits > 1 && reduction.max(7) <= max_bindings && memory <= max_memory;
    // A small conv that does not split, over planes of whole 64-column tiles, with few tiles
    // (batch 1 and 2 in SE-ResNet-50's layer 1): each tile computes its own gates from the
    // squeeze (conv::Gates::Tile), which costs it less than the two SE dispatches would. Bindings:
    // x, weight, bias, residual, y, squeeze, [W13 | b13], [W2 | b2].
    let tiles = (n * h * w / 64) * c.div_ceil(64);
    let tile = splits == 1
        && (h * w).is_multiple_of(64)
        && cin * cr <= 4096
        && tiles <= l.limits.min_workgroups as usize
        && !l.squeezed.contains_key(&node.outputs[0])
        && !l.deferred.contains_key(&node.inputs[0])
        && 6 + usize::from(bias.is_some()) + usize::from(res.is_some()) <= max_bindings
        && 4 * (2048 + cin + 256 + cr + 64) <= max_memory;
    let (gates, temps, first) = if tile {
        let t = tile_gates(
            l,
            se_node,
            se,
            node.inputs[0],
            dims,
            c,
            (&w13_data, &b13_data),
            w2v,
        )?;
        let temps = t.temps.clone();
        (conv::Gates::Tile(t), temps, Step::TileGate)
    } else if tail {
        let hidden = hidden_code(l, se_node, se, node.inputs[0], dims, w13, Some(b13))?;
        let temps = hidden.temps.clone();
        let t = conv::SeTail {
            hidden,
            w2: fc_weight(l, se_node, w2v, cr * c)?,
            b2,
            cr,
            gate: act_expr(se.gate, "gv")?,
        };
        (conv::Gates::Tail(t), temps, Step::Scale)
    } else {
        let (z, mut temps) = hidden(l, se_node, se, node.inputs[0], dims, w13, Some(b13))?;
        let gates = store_gates(l, se_node, se, [n, c, h * w, cr], z, w2v, b2)?;
        temps.push(gates);
        (conv::Gates::Buffer(gates), temps, Step::Gate)
    };
    let mut post = vec![first];
    if res.is_some() {
        post.push(Step::Residual);
        post.extend(se.post_act.map(Step::Act));
    }
    conv::lower(l, node, conv, bias, res, &post, Some(&gates), y)?;
    for t in temps {
        l.release(t);
    }
    Ok(())
}

/// A conv node without activation or residual: its attributes and bias input (if any).
fn linear_conv(node: &Node) -> Option<(&Conv, Option<ValueId>)> {
    match &node.op {
        Op::Conv(c) => Some((c, node.inputs.get(2).copied())),
        Op::FusedConv(f) if f.act.is_none() && !f.residual && f.post_act.is_none() => Some((
            &f.conv,
            f.bias.then(|| node.inputs.get(2).copied()).flatten(),
        )),
        _ => None,
    }
}

/// `W13 = W1 W3` (`cr x cin`) and `b13 = W1 b3 + b1` for FC1 `w1` (`cr x c`) after the 1x1
/// conv `w3` (`c x cin`), accumulated in f64.
fn fold_fc1(
    w1: &[f32],
    b1: Option<&[f32]>,
    w3: &[f32],
    b3: Option<&[f32]>,
    [cr, c, cin]: [usize; 3],
) -> (Vec<f32>, Vec<f32>) {
    let mut w13 = vec![0f32; cr * cin];
    let mut row = vec![0f64; cin];
    for (r, out) in w13.chunks_exact_mut(cin.max(1)).enumerate().take(cr) {
        row.iter_mut().for_each(|v| *v = 0.0);
        for k in 0..c {
            let a = f64::from(w1[r * c + k]);
            for (acc, &b) in row.iter_mut().zip(&w3[k * cin..(k + 1) * cin]) {
                *acc += a * f64::from(b);
            }
        }
        for (o, v) in out.iter_mut().zip(&row) {
            *o = *v as f32;
        }
    }
    let b13 = (0..cr)
        .map(|r| {
            let wb: f64 = match b3 {
                Some(b3) => (0..c)
                    .map(|k| f64::from(w1[r * c + k]) * f64::from(b3[k]))
                    .sum(),
                None => 0.0,
            };
            (wb + b1.map_or(0.0, |b| f64::from(b[r]))) as f32
        })
        .collect();
    (w13, b13)
}

/// The data of `v`, an input of `node` that must be a constant of `len` values (`what` names it
/// in the error).
fn constant(
    l: &Lower<'_>,
    node: &Node,
    v: ValueId,
    len: usize,
    what: &str,
) -> Result<Vec<f32>, WgslError> {
    match l.weight_data(v) {
        Some(d) if d.len() == len => Ok(d.to_vec()),
        _ => Err(unsupported(
            node,
            &format!("{what} must be a constant of {len} values"),
        )),
    }
}

/// The buffer of an FC weight of `SeBlock` `node`, which must be a constant of `len` values.
fn fc_weight(l: &mut Lower<'_>, node: &Node, v: ValueId, len: usize) -> Result<usize, WgslError> {
    match l.weight_data(v) {
        None => Err(unsupported(node, "the FC weights must be constants")),
        Some(w) if w.len() != len => Err(unsupported(
            node,
            "FC weight size does not match the channels",
        )),
        Some(_) => l.buffer_of(v),
    }
}

/// The SE blocks whose scale pass their output's first consumer applies instead, as
/// `(SE node, conv node)`: that consumer must be a 1x1, stride-1, unpadded, ungrouped conv with
/// a constant weight over planes of whole vec4s (the `conv1x1` kernel), reading the SE output
/// as its data input only, and not itself feeding an SE block (it would squeeze). Saves a whole
/// read and write of the tensor per SE block.
pub(crate) fn scale_into_consumers(l: &Lower<'_>, order: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let g = l.g;
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut out = Vec::new();
    for &id in order {
        let node = g.node(id);
        let Op::SeBlock(se) = &node.op else {
            continue;
        };
        let y = node.outputs[0];
        if g.outputs().contains(&y) || l.folds.values().any(|&s| s == id) {
            continue;
        }
        let Some(&first) = g.users(y).iter().min_by_key(|u| pos.get(u).copied()) else {
            continue;
        };
        let user = g.node(first);
        let conv = match &user.op {
            Op::Conv(c) => c,
            Op::FusedConv(f) => &f.conv,
            _ => continue,
        };
        let shapes = (l.shape(y), user.inputs.get(1).map(|&w| l.shape(w)));
        let (Ok(ys), Some(Ok(ws))) = shapes else {
            continue;
        };
        let plain = conv.group == 1 && conv.strides == [1, 1] && conv.pads == [0; 4];
        let one_by_one = ws.len() == 4 && ws[2] == 1 && ws[3] == 1;
        let aligned = ys.len() == 4 && (ys[2] * ys[3]).is_multiple_of(4);
        let only_data = user.inputs[0] == y && !user.inputs[1..].contains(&y);
        let constant = l.weight_data(user.inputs[1]).is_some();
        // A conv an SE block is folded into squeezes its input before it runs.
        let squeezes =
            l.squeezed.contains_key(&user.outputs[0]) || l.folds.contains_key(&user.outputs[0]);
        // x4, wp, bias, conv residual, y, gates, SE residual, materialised SE output.
        let bindings = 6 + usize::from(user.inputs.len() > 2) + usize::from(user.inputs.len() > 3)
            - usize::from(!se.residual);
        if plain
            && one_by_one
            && aligned
            && only_data
            && constant
            && !squeezes
            && bindings <= l.limits.max_storage_buffers_per_shader_stage as usize
        {
            out.push((id, first));
        }
    }
    out
}
