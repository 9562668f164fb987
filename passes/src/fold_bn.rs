//! `fold-bn` (not written yet).

use excite_ir::Graph;

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-bn"
    }

    fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> Result<(), PassError> {
        Ok(())
    }
}
