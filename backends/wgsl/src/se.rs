//! The SE block in at most two dispatches: the squeeze (per-channel sums), then one kernel
//! doing pool-finish -> FC -> act -> FC -> gate -> scale -> residual add -> act for a block of
//! channels. When the SE input comes straight from a 1x1 convolution, that conv's epilogue
//! writes per-tile channel sums (`conv1x1_squeeze.wgsl`) and the block is one dispatch.
//!
//! WGSL has no grid-wide barrier and no float atomics, so the sums must be complete (a finished
//! dispatch) before any gate is computed; that is the only global dependency of the block.

use std::sync::Arc;

use excite_ir::{Node, SeBlock, ValueId};

use crate::WgslError;
use crate::expr::{Step, act_expr, emit, lit};
use crate::lower::{Lower, bindings, unsupported};
use crate::render::u;

const POOL: &str = include_str!("kernels/se_pool.wgsl");
const EXCITE: &str = include_str!("kernels/se_excite.wgsl");

/// Elements of x each excite workgroup scales (sets the channels per block).
const ELEMS_PER_GROUP: usize = 8192;

/// Lowers a SeBlock; returns the pooled-means buffer as a temporary to free after the node.
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
    let cr = *w1s
        .first()
        .ok_or_else(|| unsupported(node, "w1 has no shape"))?;
    // FC1 runs on all 256 threads: `parts` slices of the channels per hidden unit.
    let parts = (256 / cr.max(1)).clamp(1, c.max(1));
    let cslice = c.div_ceil(parts).max(1);
    // Workgroup memory holds the C means, the FC1 slices, the Cr hidden values and CB gates.
    let room = (l.limits.max_compute_workgroup_storage_size as usize / 4)
        .saturating_sub(c + cr * parts + cr);
    if room == 0 {
        return Err(unsupported(
            node,
            &format!(
                "{c} channels and {cr} hidden values do not fit the device's workgroup memory"
            ),
        ));
    }
    let cb = (ELEMS_PER_GROUP / hw.max(1)).clamp(1, c.max(1)).min(room);
    let xb = l.buffer_of(xv)?;
    let (partials, tiles, scale) = match l.squeezed.get(&xv).copied().flatten() {
        Some((buf, tiles)) => {
            // Used once: another SE block reading the same tensor squeezes it itself.
            l.squeezed.insert(xv, None);
            (buf, tiles, 1.0 / hw.max(1) as f32)
        }
        None => {
            let pooled = l.temp(&format!("{}.pooled", node.name), n * c)?;
            let m = l.module(
                "se_pool",
                POOL,
                &[
                    (
                        "bindings",
                        bindings(&[("x", false, "f32"), ("partials", true, "f32")]),
                    ),
                    ("c", u(c)),
                    ("hw", u(hw)),
                ],
            )?;
            l.dispatch(node, m, vec![xb, pooled], [c as u32, n as u32, 1])?;
            (pooled, 1, 1.0)
        }
    };
    let mut decl = vec![
        ("x", false, "f32"),
        ("partials", false, "f32"),
        ("w1t", false, "f32"),
    ];
    let w1t = transposed(l, node, node.inputs[1], cr, c)?;
    let mut binds = vec![xb, partials, w1t];
    if let Some(b1) = slots.b1 {
        decl.push(("b1", false, "f32"));
        binds.push(l.buffer_of(node.inputs[b1])?);
    }
    decl.push(("w2t", false, "f32"));
    binds.push(transposed(l, node, node.inputs[slots.w2], c, cr)?);
    if let Some(b2) = slots.b2 {
        decl.push(("b2", false, "f32"));
        binds.push(l.buffer_of(node.inputs[b2])?);
    }
    let mut steps = vec![Step::Scale];
    if let Some(r) = slots.r {
        decl.push(("res", false, "f32"));
        binds.push(l.buffer_of(node.inputs[r])?);
        steps.push(Step::Residual);
    }
    steps.extend(se.post_act.map(Step::Act));
    decl.push(("y", true, "f32"));
    binds.push(y);
    let m = l.module(
        "se_excite",
        EXCITE,
        &[
            ("bindings", bindings(&decl)),
            ("c", u(c)),
            ("cr", u(cr.max(1))),
            ("cb", u(cb)),
            ("hw", u(hw)),
            ("tiles", u(tiles)),
            ("scale", lit(scale)?),
            ("parts", u(parts)),
            ("cslice", u(cslice)),
            (
                "b1",
                if slots.b1.is_some() { "b1[j]" } else { "0.0" }.into(),
            ),
            (
                "b2",
                if slots.b2.is_some() { "b2[c]" } else { "0.0" }.into(),
            ),
            ("act", act_expr(se.act, "v")?),
            ("gate", act_expr(se.gate, "v")?),
            ("epilogue", emit(&steps)?),
        ],
    )?;
    l.dispatch(node, m, binds, [c.div_ceil(cb) as u32, n as u32, 1])?;
    Ok(vec![partials])
}

/// A buffer holding the `[rows, cols]` weight `v` transposed to `[cols, rows]`.
fn transposed(
    l: &mut Lower<'_>,
    node: &Node,
    v: ValueId,
    rows: usize,
    cols: usize,
) -> Result<usize, WgslError> {
    let w = l
        .weight_data(v)
        .ok_or_else(|| unsupported(node, "the FC weights must be constants"))?;
    if w.len() != rows * cols {
        return Err(unsupported(
            node,
            "FC weight size does not match the channels",
        ));
    }
    let t: Vec<f32> = (0..rows * cols)
        .map(|i| w[(i % rows) * cols + i / rows])
        .collect();
    let label = format!("{}.t", l.g.value(v).name);
    l.weight(&label, Arc::from(t))
}
