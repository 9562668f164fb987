//! The SE block in two dispatches: `se_fc` (finish the squeeze, FC1, act: the `[N, Cr]` hidden
//! values, many workgroups per image) then `se_scale` (per block of channels: FC2 and the gates
//! of those channels, then scale -> residual add -> act over their planes, vectorised). When
//! the SE input comes straight from a 1x1 convolution, that conv's epilogue already wrote
//! per-tile channel sums (`conv1x1_squeeze.wgsl`, or `splitk_squeeze.wgsl` for a split-K
//! conv), so `se_fc` only adds a few partials per channel; otherwise one `se_fc` workgroup per
//! image reads the image itself.
//!
//! WGSL has no grid-wide barrier and no float atomics, so the sums must be complete (a finished
//! dispatch) before FC1, and FC1 complete before any gate: the block's two global dependencies,
//! hence two dispatches. FC2 is split by channel block, so no work is repeated.

use excite_ir::{Node, SeBlock};

use crate::WgslError;
use crate::expr::{Step, act_expr, emit_with, lit};
use crate::lower::{Lower, bindings, unsupported};
use crate::render::u;

const FC: &str = include_str!("kernels/se_fc.wgsl");
const SCALE: &str = include_str!("kernels/se_scale.wgsl");

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
        Some((buf, tiles)) => {
            // Used once: another SE block reading the same tensor squeezes it itself.
            l.squeezed.insert(xv, None);
            temps.push(buf);
            let code = "    for (var c = t; c < C; c = c + 256u) {\n        var s = 0.0;\n        \
                for (var i = 0u; i < TILES; i = i + 1u) {\n            \
                s = s + partials[(n * TILES + i) * C + c];\n        }\n        \
                sm[c] = s * SCALE;\n    }";
            let jb = UNITS_PER_GROUP;
            (vec![("partials", false, "f32")], vec![buf], code, tiles, jb)
        }
        None => {
            // Eight channels at a time, 32 neighbouring pixels per channel per step; one
            // workgroup per image then computes every hidden unit.
            let code = "    for (var c0 = 0u; c0 < C; c0 = c0 + 8u) {\n        \
                let c = c0 + t / 32u;\n        let pl = t % 32u;\n        var s = 0.0;\n        if (c < C) {\n            \
                for (var p = pl; p < HW; p = p + 32u) {\n                \
                s = s + x[(n * C + c) * HW + p];\n            }\n        }\n        \
                red[t] = s;\n        workgroupBarrier();\n        if (pl == 0u && c < C) {\n            \
                var a = 0.0;\n            for (var i = 0u; i < 32u; i = i + 1u) {\n                \
                a = a + red[t + i];\n            }\n            sm[c] = a * SCALE;\n        }\n        \
                workgroupBarrier();\n    }";
            (
                vec![("x", false, "f32")],
                vec![xb],
                code,
                1,
                cr.next_multiple_of(2),
            )
        }
    };
    let w1 = l
        .weight_data(node.inputs[1])
        .ok_or_else(|| unsupported(node, "the FC weights must be constants"))?;
    if w1.len() != cr * c {
        return Err(unsupported(
            node,
            "FC weight size does not match the channels",
        ));
    }
    decl.push(("w1", false, "f32"));
    binds.push(l.buffer_of(node.inputs[1])?);
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
            ("squeeze", squeeze.to_string()),
            (
                "b1",
                if slots.b1.is_some() { "b1[j]" } else { "0.0" }.into(),
            ),
            ("act", act_expr(se.act, "v")?),
        ],
    )?;
    l.dispatch(node, m, binds, [cr.div_ceil(jb) as u32, n as u32, 1])?;

    // Gates and scale, four elements per access when every plane is a whole number of vec4s.
    let width = if hw.is_multiple_of(4) { 4 } else { 1 };
    let vt = if width == 4 { "vec4<f32>" } else { "f32" };
    let w2 = l
        .weight_data(node.inputs[slots.w2])
        .ok_or_else(|| unsupported(node, "the FC weights must be constants"))?;
    if w2.len() != cr * c {
        return Err(unsupported(
            node,
            "FC weight size does not match the channels",
        ));
    }
    let mut decl = vec![("x", false, vt), ("z", false, "f32"), ("w2", false, "f32")];
    let mut binds = vec![xb, z, l.buffer_of(node.inputs[slots.w2])?];
    if let Some(b2) = slots.b2 {
        decl.push(("b2", false, "f32"));
        binds.push(l.buffer_of(node.inputs[b2])?);
    }
    let mut steps = vec![Step::Scale];
    let mut load_res = String::new();
    if let Some(r) = slots.r {
        decl.push(("res", false, vt));
        binds.push(l.buffer_of(node.inputs[r])?);
        steps.push(Step::Residual);
        load_res = "        let rq = res[q];".into();
    }
    steps.extend(se.post_act.map(Step::Act));
    decl.push(("y", true, vt));
    binds.push(y);
    let lane = |v: &str| {
        if width == 4 {
            format!("{v}[j]")
        } else {
            v.to_string()
        }
    };
    let m = l.module(
        "se_scale",
        SCALE,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr)),
            ("hw", u(hw.max(1))),
            ("cb", u(cb)),
            ("width", u(width)),
            ("vt", vt.into()),
            (
                "b2",
                if slots.b2.is_some() { "b2[c]" } else { "0.0" }.into(),
            ),
            ("gate", act_expr(se.gate, "v")?),
            ("load_res", load_res),
            ("xj", lane("xq")),
            ("outj", lane("out")),
            ("epilogue", emit_with(&steps, &lane("rq"))?),
        ],
    )?;
    l.dispatch(node, m, binds, [c.div_ceil(cb) as u32, n as u32, 1])?;
    Ok(temps)
}
