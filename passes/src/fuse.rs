//! `fuse` (not written yet).

use excite_ir::Graph;

use crate::pass::{Pass, PassContext, PassError};

#[derive(Debug)]
pub struct Fuse;

impl Pass for Fuse {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn run(&self, _g: &mut Graph, _cx: &mut PassContext) -> Result<(), PassError> {
        Ok(())
    }
}
