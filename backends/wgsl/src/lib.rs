//! GPU backend: lowers a fused excite graph to WGSL compute shaders and a dispatch plan.
//!
//! [`compile`] walks the graph in topological order and turns every node into one or two
//! dispatches of a kernel from `src/kernels/*.wgsl` (holes filled by [`render`], pointwise
//! epilogues from [`expr`]); every module is parsed and validated by naga before it is returned.
//! The result, a [`WgslProgram`], lists the modules, the buffers (graph inputs, packed weights and
//! liveness-planned scratch buffers that are reused once their tensors die) and the dispatches,
//! all with the batch size resolved. Kernel shape constants are baked into each module (no
//! uniforms), so identical layers share one module. Nothing here touches a device: the runtime
//! runs the plan.
//!
//! Kernels (`src/kernels/`): `conv` (tiled implicit GEMM, 64x64 tiles, 4x4 register blocks,
//! vec4 weight loads from host-packed weights), `conv1x1` (the same with vec4 input loads;
//! optional SE-scale prologue and SE-squeeze epilogue), `conv1x1_squeeze` (a 1x1 conv feeding
//! an SE block, per-image tiles), `splitk` / `splitk_squeeze` (the reduction of a split-K
//! conv), `grouped` (depthwise and narrow grouped convs, direct and register-blocked),
//! `se_fc` + `se_scale` (or `se_gates` when a conv applies the gates): the SE block in two
//! dispatches, and one-thread-per-output kernels for the rest. An SE block fed by a linear 1x1
//! conv is folded into it (`se.rs`): its gates come from the squeeze of the conv's input and
//! the conv's epilogue applies them, so the block makes no pass over its tensor; where that conv
//! splits K, extra workgroups of its GEMM dispatch compute the hidden layer and its reduction
//! the gates (`splitk_gate`), and where it is small, each tile computes its own gates
//! (`se_tile`): no SE dispatch at all.
//!
//! Architecture invariant: this crate never depends on wgpu or on the CPU backend.
#![forbid(unsafe_code)]

mod conv;
pub mod expr;
mod lower;
mod plan;
pub mod render;
mod se;
mod simple;
mod validate;
mod winograd;

pub use lower::compile;
pub use plan::{Buffer, BufferKind, Dispatch, ENTRY_POINT, Io, Limits, Module, WgslProgram};
pub use validate::validate;

/// Why a graph could not be compiled to WGSL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WgslError {
    #[error("kernel `{kernel}`: template: {msg}")]
    Template { kernel: String, msg: String },
    #[error("node `{node}` ({op}): not supported by the WGSL backend: {msg}")]
    Unsupported {
        node: String,
        op: &'static str,
        msg: String,
    },
    #[error(
        "tensor `{tensor}` needs {bytes} bytes, over the device's max_storage_buffer_binding_size of {limit} bytes"
    )]
    TooLarge {
        tensor: String,
        bytes: u64,
        limit: u64,
    },
    #[error("module `{module}` does not validate: {msg}\n{source_text}")]
    Invalid {
        module: String,
        msg: String,
        source_text: String,
    },
    #[error("the graph does not verify at batch {batch}: {source}")]
    Graph {
        batch: usize,
        #[source]
        source: excite_ir::IrErrors,
    },
    #[error(transparent)]
    Ir(#[from] excite_ir::IrError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
