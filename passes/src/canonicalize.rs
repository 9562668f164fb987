//! `canonicalize` (not written yet).

use excite_ir::Graph;

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct Canonicalize;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> Result<(), PassError> {
        Ok(())
    }
}
