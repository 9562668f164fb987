//! `dce` (not written yet).

use excite_ir::Graph;

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> Result<(), PassError> {
        Ok(())
    }
}
