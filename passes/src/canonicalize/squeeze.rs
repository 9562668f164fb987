//! The squeeze written as `ReduceMean` over H and W becomes `GlobalAveragePool`.
//!
//! ```text
//! before:  node sq = ReduceMean(x) {axes=[2,3], keepdims=false} -> s: f32[N,8]
//! after:   node sq = GlobalAveragePool(x) -> s.4d: f32[N,8,1,1]
//!          node sq.flatten = Flatten(s.4d) {axis=1} -> s: f32[N,8]
//! ```
//! Only a 4-D input reduced over exactly `[2,3]` qualifies; other axes are left alone.

use excite_ir::{IrError, NodeId, Op};

use super::Fired;
use super::edit::{Editor, fresh_name, fresh_value_name};

pub(super) fn reduce_mean(ed: &mut Editor<'_>, id: NodeId) -> Result<Option<Fired>, IrError> {
    let node = ed.g.node(id);
    let Op::ReduceMean { axes, keepdims } = &node.op else {
        return Ok(None);
    };
    let keepdims = *keepdims;
    let x = node.inputs[0];
    if axes != &[2, 3] || ed.shape(x).map(|s| s.rank()) != Some(4) {
        return Ok(None);
    }
    let (name, out) = ed.name_and_output(id);
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
