//! excite's runtime: a [`Session`] owns a checked graph and executes it on a backend.
//!
//! Today the only backend is the reference interpreter ([`Backend::Interp`]); the Cranelift CPU
//! backend and the wgpu GPU backend plug in behind the same `Session::run` (issues 4 and 5).
//!
//! Architecture invariant: the runtime is the only crate that will create a GPU device; it
//! never parses model files (the `excite` façade does that).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;

use excite_ir::{Graph, IrError, IrErrors, Tensor, interp, verify};

/// Where a session's kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The reference interpreter: slow, obviously correct, always available.
    Interp,
}

impl Backend {
    /// Parses a backend name as the CLI spells it.
    pub fn from_name(s: &str) -> Result<Backend, RuntimeError> {
        match s {
            "interp" => Ok(Backend::Interp),
            "cpu" | "gpu" => Err(RuntimeError::BackendUnavailable {
                backend: s.to_string(),
                reason: "not built yet; use `interp`".into(),
            }),
            _ => Err(RuntimeError::BackendUnavailable {
                backend: s.to_string(),
                reason: "unknown backend (known: interp)".into(),
            }),
        }
    }

    /// The best backend this build can run here.
    pub fn best_available() -> Backend {
        Backend::Interp
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Errors of compiling or running a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("backend `{backend}` is not available: {reason}")]
    BackendUnavailable { backend: String, reason: String },
    #[error("the graph does not verify: {0}")]
    Verify(#[from] IrErrors),
    #[error(transparent)]
    Optimize(#[from] excite_passes::PassError),
    #[error(transparent)]
    Exec(#[from] IrError),
}

/// A graph made ready to run on one backend.
#[derive(Debug)]
pub struct Session {
    graph: Graph,
    backend: Backend,
}

impl Session {
    /// Optimises the graph (the full pass pipeline: folding, canonical forms, SE and epilogue
    /// fusion) and prepares it for `backend`.
    pub fn new(graph: Graph, backend: Backend) -> Result<Session, RuntimeError> {
        let optimized = excite_passes::optimize(graph, &excite_passes::Options::default())?;
        Ok(Session {
            graph: optimized.graph,
            backend,
        })
    }

    /// Prepares the graph as it is, without optimisation passes (to run the reference
    /// interpreter on exactly what was imported).
    pub fn unoptimized(mut graph: Graph, backend: Backend) -> Result<Session, RuntimeError> {
        verify::verify(&mut graph)?;
        Ok(Session { graph, backend })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs the network on named inputs; returns every graph output, in order, by name.
    pub fn run(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        match self.backend {
            Backend::Interp => Ok(interp::run(&self.graph, inputs)?),
        }
    }
}
