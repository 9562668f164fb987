//! excite's CPU backend: kernels generated with Cranelift (f32x4 SIMD, FMA) around GEMM
//! micro-kernels (the `gemm` crate's, and excite's own AVX-512 and AVX2 ones).
//!
//! - [`jit`]: the only `unsafe` of the crate — compiling CLIF, calling kernels through a
//!   length-checked safe wrapper, the `sgemm` wrapper and the packed micro-kernels.
//! - [`emit`]: loops, loads, dot products and the one emitter per activation.
//! - [`kernels`]: builders per family — unary/binary elementwise, conv epilogue, plane means,
//!   the fused SE block as one function and its gate when folded into a conv, strided
//!   whole-tensor kernels (broadcasting, Expand, BatchNorm), softmax, reductions, and
//!   max/average pooling with every ONNX attribute.
//! - [`conv`]: convolutions as GEMM (an implicit GEMM or im2col where needed, none for 1x1
//!   stride 1), a direct
//!   depthwise kernel, each followed by a generated epilogue.
//! - [`winograd`]: F(2x2, 3x3) for the 3x3 stride-1 convolutions with enough tiles.
//!
//! The runtime (`excite_runtime::cpu`) plans memory and schedules these kernels.

pub mod conv;
pub mod emit;
mod error;
pub mod jit;
pub mod kernels;
pub mod winograd;

pub use error::KernelError;
pub use jit::{Arg, ArgSpec, Jit, Kernel, Pending};
