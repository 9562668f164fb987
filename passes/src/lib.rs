//! excite's graph passes.
//!
//! [`pipeline::optimize`] runs the passes of [`pipeline::passes`] in order: clean-up
//! (identity removal, constant folding, BatchNorm folding), canonical forms that every SE
//! variant exporters emit is brought to, dead-node elimination, and fusion by equality
//! saturation ([`eqsat`]) into `SeBlock` and `FusedConv` kernels. The verifier runs after every
//! pass in tests and debug builds.
#![forbid(unsafe_code)]

pub mod canonicalize;
pub mod const_fold;
pub mod dce;
pub mod eqsat;
pub mod fold_bn;
pub mod fuse;
pub mod metrics;
pub mod pass;
pub mod pipeline;
pub mod remove_identity;

pub use pass::{EqsatReport, Pass, PassContext, PassError, RewriteEvent};
pub use pipeline::{Optimized, Options, optimize, passes};
