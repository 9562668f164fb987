//! `const-fold` (not written yet).

use excite_ir::Graph;

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct ConstFold;

impl Pass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }

    fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> Result<(), PassError> {
        Ok(())
    }
}
