//! Equality saturation with egg: fusing SE blocks and convolution epilogues.
//!
//! The graph becomes an e-graph ([`convert`], in the language of [`lang`]) whose e-classes
//! know their shape and whether they are shared ([`analysis`]). Each rule set of [`rules`]
//! runs in its own bounded `Runner`, adding fused e-nodes beside the nodes they replace; the
//! cheapest e-node of each class by the kernel-and-bytes model of [`cost`] is then extracted,
//! and the graph rebuilt from those choices, one node per e-class.

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod lang;
pub mod rules;

use std::time::Instant;

use egg::{Extractor, Runner, SimpleScheduler};
use excite_ir::Graph;

use crate::pass::{EqsatReport, PassContext, PassError};
use analysis::GraphAnalysis;
use convert::FusedNode;
use cost::KernelCost;

/// Fuses `g`: returns the fused graph (verified) and what each fused node absorbed, or `None`
/// when nothing was fused. Pushes one [`EqsatReport`] per rule set into `cx.eqsat`.
pub fn fuse_graph(
    g: &Graph,
    cx: &mut PassContext,
) -> Result<Option<(Graph, Vec<FusedNode>)>, PassError> {
    let sets = rules::rule_sets().map_err(|e| PassError::Failed {
        pass: "fuse",
        msg: e.to_string(),
    })?;
    let mut conv = convert::to_egraph(g)?;
    for set in &sets {
        let start = Instant::now();
        let runner = Runner::<_, _, ()>::new(GraphAnalysis::default())
            .with_egraph(std::mem::take(&mut conv.egraph))
            .with_scheduler(SimpleScheduler)
            .with_iter_limit(cx.limits.iter_limit)
            .with_node_limit(cx.limits.node_limit)
            .with_time_limit(cx.limits.time_limit)
            .run(&set.rules);
        cx.eqsat.push(EqsatReport {
            rule_set: set.name.to_string(),
            stop_reason: runner
                .stop_reason
                .as_ref()
                .map_or_else(|| "None".to_string(), |r| format!("{r:?}")),
            iterations: runner.iterations.len(),
            egraph_nodes: runner.egraph.total_number_of_nodes(),
            egraph_classes: runner.egraph.number_of_classes(),
            time: start.elapsed(),
        });
        conv.egraph = runner.egraph;
    }
    let extractor = Extractor::new(&conv.egraph, KernelCost::new(&conv.egraph));
    let (mut fused_graph, fused) = convert::to_graph(g, &conv, |c| extractor.find_best_node(c))?;
    if fused.is_empty() {
        return Ok(None);
    }
    excite_ir::verify::verify(&mut fused_graph).map_err(|errors| PassError::Verify {
        pass: "fuse",
        errors,
    })?;
    Ok(Some((fused_graph, fused)))
}
