//! excite's conformance harness, shared by the integration tests in `tests/tests/`:
//!
//! - [`data`]: readers for ONNX `TensorProto` files, `.npy` files and model facts;
//! - [`compare`]: elementwise and relative-L2 comparison with the suites' tolerances;
//! - [`manifest`]: the node suite's expected-outcome manifest;
//! - [`node`]: the ONNX node-test runner (import, interpret, compare, tabulate);
//! - [`filetest`]: the `.seir` filetest runner and the fused-vs-unfused differential check.
//!
//! See docs/testing.md for how the suites are generated, run and blessed.

pub mod compare;
pub mod data;
pub mod filetest;
pub mod manifest;
pub mod node;

use std::path::PathBuf;

/// The `tests/` directory of the workspace (this crate's root).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
