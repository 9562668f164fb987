//! The SE block in two dispatches: `se_fc` (finish the squeeze, FC1, act: the `[N, Cr]` hidden
//! values, many workgroups per image) then `se_scale` (per block of channels: FC2 and the gates
//! of those channels, then scale -> residual add -> act over their planes, vectorised). When
//! the SE input comes straight from a 1x1 convolution, that conv already wrote partial channel
//! sums (`conv1x1_squeeze.wgsl` per image tile, `conv1x1.wgsl` over tiles straddling images,
//! or `splitk_squeeze.wgsl` for a split-K conv), so `se_fc` only adds a few partials per
//! channel; otherwise one `se_fc` workgroup per image reads the image itself.
//!
//! When the SE output's first reader is a plain 1x1 conv ([`scale_into_consumers`]), the second
//! dispatch only stores the gates (`se_gates`) and that conv applies the scale as it loads its
//! input (see `conv.rs`), so the block makes no pass over its tensor of its own.
//!
//! WGSL has no grid-wide barrier and no float atomics, so the sums must be complete (a finished
//! dispatch) before FC1, and FC1 complete before any gate: the block's two global dependencies,
//! hence two dispatches. FC2 is split by channel block, so no work is repeated.

use std::collections::HashMap;

use excite_ir::{Node, NodeId, Op, SeBlock, ValueId};

use crate::WgslError;
use crate::expr::{Step, act_expr, emit_with, lit};
use crate::lower::{Deferred, Lower, bindings, unsupported};
use crate::render::{render, u};

const FC: &str = include_str!("kernels/se_fc.wgsl");
const SCALE: &str = include_str!("kernels/se_scale.wgsl");
// The variants of se_fc's `squeeze` and se_scale's `finish` holes.
const PARTIALS: &str = include_str!("kernels/se_fc_partials.wgsl");
const STRADDLE: &str = include_str!("kernels/se_fc_straddle.wgsl");
const POOL: &str = include_str!("kernels/se_fc_pool.wgsl");
const APPLY: &str = include_str!("kernels/se_scale_apply.wgsl");
const GATES_STORE: &str = include_str!("kernels/se_gates_store.wgsl");

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
    let mut cb = 16;
    while cb > 1 && cb * hw > ELEMS_PER_GROUP {
        cb /= 2;
    }
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
    let xb = l.buffer_of(xv)?;
    let mut temps = Vec::new();
    let (mut decl, mut binds, squeeze, tiles, jb) = match l.squeezed.get(&xv).copied().flatten() {
        Some((buf, tiles, straddle)) => {
            // Used once: another SE block reading the same tensor squeezes it itself.
            l.squeezed.insert(xv, None);
            temps.push(buf);
            let code = if straddle { STRADDLE } else { PARTIALS };
            let decl = vec![("partials", false, "f32")];
            (decl, vec![buf], code, tiles, UNITS_PER_GROUP)
        }
        // One workgroup per image then computes every hidden unit.
        None => (
            vec![("x", false, "f32")],
            vec![xb],
            POOL,
            1,
            cr.next_multiple_of(2),
        ),
    };
    decl.push(("w1", false, "f32"));
    binds.push(fc_weight(l, node, node.inputs[1], cr * c)?);
    if let Some(b1) = slots.b1 {
        decl.push(("b1", false, "f32"));
        binds.push(l.buffer_of(node.inputs[b1])?);
    }
    let z = l.temp(&format!("{}.hidden", node.name), n * cr)?;
    temps.push(z);
    decl.push(("z", true, "f32"));
    binds.push(z);
    let m = l.module(
        "se_fc",
        FC,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr)),
            ("hw", u(hw)),
            ("tiles", u(tiles)),
            ("scale", lit(1.0 / hw.max(1) as f32)?),
            ("jb", u(jb)),
            ("squeeze", squeeze.trim_end().to_string()),
            (
                "b1",
                if slots.b1.is_some() { "b1[j]" } else { "0.0" }.into(),
            ),
            ("act", act_expr(se.act, "v")?),
        ],
    )?;
    l.dispatch(node, m, binds, [cr.div_ceil(jb) as u32, n as u32, 1])?;

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
    let deferred = l.defer_scale.contains(&out);
    let width = if hw.is_multiple_of(4) { 4 } else { 1 };
    let vt = if width == 4 { "vec4<f32>" } else { "f32" };
    let mut decl = if deferred {
        vec![("z", false, "f32"), ("w2", false, "f32")]
    } else {
        vec![("x", false, vt), ("z", false, "f32"), ("w2", false, "f32")]
    };
    let mut binds = if deferred { vec![] } else { vec![xb] };
    binds.extend([z, fc_weight(l, node, node.inputs[slots.w2], cr * c)?]);
    if let Some(b2) = slots.b2 {
        decl.push(("b2", false, "f32"));
        binds.push(l.buffer_of(node.inputs[b2])?);
    }
    let finish = if deferred {
        // The consumer conv scales as it loads (conv1x1.wgsl's prologue): store the gates.
        let gates = l.temp(&format!("{}.gates", node.name), n * c)?;
        decl.push(("gates", true, "f32"));
        binds.push(gates);
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
        GATES_STORE.trim_end().to_string()
    } else {
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
        render(
            "se_scale_apply",
            APPLY,
            &[
                ("load_res", load_res),
                ("vt", vt.to_string()),
                ("xj", lane("xq")),
                ("epilogue", epilogue.trim_end().to_string()),
                ("outj", lane("out")),
            ],
        )?
        .trim_end()
        .to_string()
    };
    let m = l.module(
        if deferred { "se_gates" } else { "se_scale" },
        SCALE,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr)),
            ("hw", u(hw.max(1))),
            ("cb", u(cb)),
            ("width", u(width)),
            (
                "b2",
                if slots.b2.is_some() { "b2[c]" } else { "0.0" }.into(),
            ),
            ("gate", act_expr(se.gate, "v")?),
            ("finish", finish),
        ],
    )?;
    l.dispatch(node, m, binds, [c.div_ceil(cb) as u32, n as u32, 1])?;
    Ok(temps)
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
        if g.outputs().contains(&y) {
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
        let squeezes = l.squeezed.contains_key(&user.outputs[0]);
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
