//! excite's network-graph IR.
//!
//! A [`Graph`] is a dataflow graph of [`Node`]s (each one [`Op`]) over named [`Value`]s.
//! Values are graph inputs, weights (shared `Arc<Tensor>`s, never copied per use) or node
//! outputs. The graph is backed by a petgraph `StableDiGraph` whose edges are the data
//! dependencies; users address nodes and values through the [`NodeId`] / [`ValueId`] newtypes.
//!
//! Around the graph live:
//! - [`infer`]: shape inference (with an optional symbolic batch dimension),
//! - [`verify`]: structural checks plus shape inference, collecting every error,
//! - [`text`]: the `.seir` text form (printer and parser that round-trip) and the
//!   safetensors weight files that sit beside it,
//! - [`interp`]: the reference interpreter, the oracle every pass and backend is checked against.
//!
//! Architecture invariant: this crate does no file or network I/O and knows nothing of egg,
//! Cranelift or wgpu.

pub mod dtype;
pub mod error;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod op;
pub mod shape;
pub mod stats;
pub mod tensor;
pub mod text;
pub mod verify;

pub use dtype::DType;
pub use error::{IrError, IrErrors};
pub use graph::{Graph, Node, NodeId, Value, ValueDef, ValueId};
pub use op::{Act, FusedConv, Op, SeBlock};
pub use shape::{Dim, Shape, TensorType};
pub use tensor::Tensor;
