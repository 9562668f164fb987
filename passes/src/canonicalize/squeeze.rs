//! The squeeze written as `ReduceMean` over H and W becomes `GlobalAveragePool`.
//!
//! ```text
//! before:  node sq = ReduceMean(x) {axes=[2,3], keepdims=false} -> s: f32[N,8]
//! after:   node sq = GlobalAveragePool(x) -> s.4d: f32[N,8,1,1]
//!          node sq.flatten = Flatten(s.4d) {axis=1} -> s: f32[N,8]
//! ```
//! Only a 4-D input reduced over exactly `[2,3]` qualifies; other axes are left alone. The
//! `x.view(N, C, -1).mean(-1)` spelling (a Reshape/Flatten of a 4-D `[N,C,H,W]` to
//! `[N,C,H*W]`, then `ReduceMean` over axis 2) becomes the same pool, read from the 4-D value:
//!
//! ```text
//! before:  node view = Reshape(x) {shape=[0,8,-1]} -> x3: f32[N,8,20]
//!          node sq = ReduceMean(x3) {axes=[2], keepdims=false} -> s: f32[N,8]
//! after:   node sq = GlobalAveragePool(x) -> s.4d: f32[N,8,1,1]
//!          node sq.flatten = Flatten(s.4d) {axis=1} -> s: f32[N,8]
//! ```

use excite_ir::{Dim, IrError, NodeId, Op, ValueId};

use super::Fired;
use super::edit::{Editor, fresh_name, fresh_value_name};

pub(super) fn reduce_mean(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let Op::ReduceMean { axes, keepdims } = &node.op else {
        return Ok(None);
    };
    let keepdims = *keepdims;
    let mut x = node.inputs[0];
    let mut rule = "reducemean-as-pool";
    if axes == &[2] {
        // The flattened spelling: the pool reads the 4-D value the reshape flattened.
        let Some(x4) = flattened_spatial(ed, x) else {
            return Ok(None);
        };
        x = x4;
        rule = "view-mean-as-pool";
    } else if axes != &[2, 3] || ed.shape(x).map(|s| s.rank()) != Some(4) {
        return Ok(None);
    }
    let (name, out) = ed.name_and_output(id);
    if rule == "view-mean-as-pool" {
        let old = node.inputs[0];
        ed.remove(id);
        let s4 = fresh_value_name(ed.g, &format!("{out}.4d"));
        let s4 = ed.add(&name, Op::GlobalAveragePool, &[x], &s4)?;
        let (kind, op) = if keepdims {
            let c = ed.shape(x).and_then(|s| s.dims()[1].fixed()).unwrap_or(0) as i64;
            (
                "reshape",
                Op::Reshape {
                    shape: vec![0, c, 1],
                    allowzero: false,
                },
            )
        } else {
            ("flatten", Op::Flatten { axis: 1 })
        };
        let back = fresh_name(ed.g, &format!("{name}.{kind}"));
        ed.add(&back, op, &[s4], &out)?;
        ed.retire(old);
        return Ok(Some(Fired::new(
            rule,
            &name,
            format!("mean of a [N,C,H*W] view -> GlobalAveragePool + {back}"),
        )));
    }
    if keepdims {
        ed.replace(id, Op::GlobalAveragePool, &[x])?;
        return Ok(Some(Fired::new(
            "reducemean-as-pool",
            &name,
            "keepdims=1 -> GlobalAveragePool",
        )));
    }
    ed.remove(id);
    let s4 = fresh_value_name(ed.g, &format!("{out}.4d"));
    let s4 = ed.add(&name, Op::GlobalAveragePool, &[x], &s4)?;
    let flat = fresh_name(ed.g, &format!("{name}.flatten"));
    ed.add(&flat, Op::Flatten { axis: 1 }, &[s4], &out)?;
    Ok(Some(Fired::new(
        "reducemean-as-pool",
        &name,
        format!("keepdims=0 -> GlobalAveragePool + {flat}"),
    )))
}

/// `x` when `v` is a Flatten/Reshape of a 4-D `x: [N,C,H,W]` to `[N,C,H*W]` (same N and C).
fn flattened_spatial(ed: &Editor<'_>, v: ValueId) -> Option<ValueId> {
    let (_, r) = ed.producer(v)?;
    if !matches!(r.op, Op::Reshape { .. } | Op::Flatten { .. }) {
        return None;
    }
    let x = r.inputs[0];
    let (xs, vs) = (ed.shape(x)?, ed.shape(v)?);
    let (xd, vd) = (xs.dims(), vs.dims());
    let hw = xd.get(2)?.fixed()?.checked_mul(xd.get(3)?.fixed()?)?;
    (xd.len() == 4 && vd.len() == 3 && vd[..2] == xd[..2] && vd[2] == Dim::Fixed(hw)).then_some(x)
}
