//! The GPU target: runs an `excite_wgsl` program on a wgpu device.
//!
//! [`GpuSession::new`] requests an adapter and a device with the adapter's own limits, compiles
//! the graph for those limits and one batch size, uploads the weights once and creates every
//! pipeline and bind group once; [`GpuSession::run`] then records one command encoder per
//! inference. Validation errors, out-of-memory and device loss come back as [`GpuError`]s
//! (error scopes and the device-lost callback), never as panics.
//!
//! Architecture invariant: this module is the only place in excite that creates a GPU device.

mod session;

pub use session::{GpuSession, Timing, TimingSource};

/// Why the GPU target failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    #[error("no GPU adapter found (install a Vulkan/Metal/DX12 driver, e.g. Mesa's lavapipe)")]
    NoAdapter,
    #[error("the adapter refused a device: {0}")]
    RequestDevice(String),
    #[error(transparent)]
    Compile(#[from] excite_wgsl::WgslError),
    #[error("the GPU reported an error while {during}: {msg}")]
    Device { during: &'static str, msg: String },
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("input `{name}`: {msg}")]
    Input { name: String, msg: String },
}
