//! `const-fold`: a node whose inputs are all weights becomes a weight, computed by the
//! reference interpreter (`excite_ir::interp::eval_op`). The weight takes the name of the
//! node's output value, so readers and graph outputs are unchanged. Nodes are visited in
//! topological order, so chains of constant nodes fold in one run.
//!
//! ```text
//! before:  weight k: f32[4]
//!          node half = Mul(k, two) -> k2: f32[4]        # two: f32[] weight
//!          node y = Add(x, k2) -> y: f32[N,4]
//! after:   weight k2: f32[4]
//!          node y = Add(x, k2) -> y: f32[N,4]
//! ```
//! Left alone: nodes reading a graph input, nodes the interpreter cannot evaluate, and nodes
//! whose result would be larger than both their inputs together and [`MAX_GROWTH_ELEMS`]
//! elements (an `Expand` of a scalar to a feature map), so folding never inflates the model.
//! The weights a fold leaves unread are dropped by `dce`.

use std::sync::Arc;

use excite_ir::interp::eval_op;
use excite_ir::{Graph, Tensor};

use crate::pass::{Pass, PassContext, PassError};

/// Size (elements) up to which a folded result may exceed its inputs.
pub const MAX_GROWTH_ELEMS: usize = 4096;

#[derive(Debug)]
pub struct ConstFold;

impl Pass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError> {
        let ir = |source| PassError::Ir {
            pass: "const-fold",
            source,
        };
        for id in g.topo_order().map_err(ir)? {
            let node = g.node(id);
            let args: Option<Vec<Arc<Tensor>>> = node
                .inputs
                .iter()
                .map(|&v| g.value(v).weight().cloned())
                .collect();
            let (Some(args), &[out]) = (args, node.outputs.as_slice()) else {
                continue;
            };
            let refs: Vec<&Tensor> = args.iter().map(|t| t.as_ref()).collect();
            let Ok(t) = eval_op(&node.name, &node.op, &refs) else {
                continue; // left for the runtime, which reports it with the node's name
            };
            let in_elems: usize = refs.iter().map(|t| t.numel()).sum();
            if t.numel() > in_elems.max(MAX_GROWTH_ELEMS) {
                continue;
            }
            let out_name = g.value(out).name.clone();
            let detail = format!("{} -> weight `{out_name}` {:?}", node.op.name(), t.shape());
            let node_name = node.name.clone();
            g.remove_node(id);
            g.add_weight(&out_name, Arc::new(t)).map_err(ir)?;
            cx.record("const-fold", "fold", node_name, detail);
        }
        Ok(())
    }
}
