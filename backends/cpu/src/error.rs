//! Errors of building and calling kernels.

/// A kernel could not be compiled or a call was refused before it touched memory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    #[error("cranelift: {0}")]
    Jit(String),
    #[error("kernel `{kernel}`: {msg}")]
    Call { kernel: String, msg: String },
}
