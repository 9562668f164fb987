//! excite's runtime: a [`Session`] owns an optimised graph and executes it on a backend.
//!
//! Backends: the reference interpreter ([`Backend::Interp`]), native code generated with
//! Cranelift ([`Backend::Cpu`], module [`cpu`]) and WGSL compute shaders on a wgpu device
//! ([`Backend::Gpu`], module [`gpu`]). The compiled backends fix the batch size when they
//! compile, so a session compiles once per batch size it meets and keeps the result.
//!
//! Architecture invariant: the runtime is the only crate that creates a GPU device
//! (`gpu/`); it never parses model files (the `excite` façade does that).
#![forbid(unsafe_code)]

pub mod cpu;
pub mod gpu;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use excite_ir::{Graph, IrError, IrErrors, Tensor, interp, verify};

/// Where a session's kernels run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The reference interpreter: slow, obviously correct, always available.
    Interp,
    /// Native code generated with Cranelift, on a thread pool.
    Cpu,
    /// WGSL compute shaders on the best wgpu adapter.
    Gpu,
}

impl Backend {
    /// Parses a backend name as the CLI spells it.
    pub fn from_name(s: &str) -> Result<Backend, RuntimeError> {
        match s {
            "interp" => Ok(Backend::Interp),
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            _ => Err(RuntimeError::BackendUnavailable {
                backend: s.to_string(),
                reason: "unknown backend (known: interp, cpu, gpu)".into(),
            }),
        }
    }

    /// The fastest backend that is always available here: the CPU code generator.
    pub fn best_available() -> Backend {
        Backend::Cpu
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Interp => "interp",
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
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
    /// A session option out of its range.
    #[error("option `{option}`: {msg}")]
    InvalidOption { option: &'static str, msg: String },
    #[error("the graph does not verify: {0}")]
    Verify(#[from] IrErrors),
    #[error(transparent)]
    Optimize(#[from] excite_passes::PassError),
    #[error(transparent)]
    Exec(#[from] IrError),
    #[error("cpu backend: {0}")]
    Cpu(#[from] cpu::CpuError),
    #[error("gpu backend: {0}")]
    Gpu(#[from] gpu::GpuError),
}

/// How to build a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub backend: Backend,
    /// Run the optimisation pipeline first (folding, canonical forms, fusion).
    pub optimize: bool,
    /// CPU worker threads; 0 means one per core; at most [`MAX_THREADS`].
    pub threads: usize,
    /// The most bytes any one tensor may take at the batch size being run (inputs, weights and
    /// intermediates): a larger batch is refused with an error naming the tensor before
    /// anything is allocated.
    pub memory_budget: u64,
}

/// The default [`SessionOptions::memory_budget`]: 4 GiB per tensor (as the ONNX importer's).
pub const DEFAULT_MEMORY_BUDGET: u64 = 4 << 30;

/// The most CPU worker threads a session accepts.
pub const MAX_THREADS: usize = 1024;

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backend: Backend::best_available(),
            optimize: true,
            threads: 0,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// A graph compiled for one batch size.
#[derive(Debug)]
enum Compiled {
    Cpu(cpu::CpuProgram),
    Gpu(gpu::GpuSession),
}

/// A graph made ready to run on one backend.
#[derive(Debug)]
pub struct Session {
    graph: Graph,
    backend: Backend,
    threads: usize,
    memory_budget: u64,
    compiled: Mutex<HashMap<usize, Arc<Compiled>>>,
}

impl Session {
    /// Optimises the graph (the full pass pipeline) and prepares it for `backend`.
    pub fn new(graph: Graph, backend: Backend) -> Result<Session, RuntimeError> {
        Session::with_options(
            graph,
            &SessionOptions {
                backend,
                ..SessionOptions::default()
            },
        )
    }

    /// Prepares the graph as it is, without optimisation passes (to run the reference
    /// interpreter on exactly what was imported).
    pub fn unoptimized(graph: Graph, backend: Backend) -> Result<Session, RuntimeError> {
        Session::with_options(
            graph,
            &SessionOptions {
                backend,
                optimize: false,
                ..SessionOptions::default()
            },
        )
    }

    pub fn with_options(mut graph: Graph, opts: &SessionOptions) -> Result<Session, RuntimeError> {
        if opts.threads > MAX_THREADS {
            return Err(RuntimeError::InvalidOption {
                option: "threads",
                msg: format!(
                    "{} requested, at most {MAX_THREADS} supported",
                    opts.threads
                ),
            });
        }
        if opts.optimize {
            graph = excite_passes::optimize(graph, &excite_passes::Options::default())?.graph;
        } else {
            verify::verify(&mut graph)?;
        }
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        Ok(Session {
            graph,
            backend: opts.backend,
            threads,
            memory_budget: opts.memory_budget,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Compiles for `batch` now (the compiled backends otherwise compile on the first run at
    /// each batch size); for the interpreter only checks the memory budget at `batch`.
    pub fn prepare(&self, batch: usize) -> Result<(), RuntimeError> {
        self.compiled(batch).map(|_| ())
    }

    fn compiled(&self, batch: usize) -> Result<Option<Arc<Compiled>>, RuntimeError> {
        verify::check_sizes(&self.graph, batch, self.memory_budget)?;
        if self.backend == Backend::Interp {
            return Ok(None);
        }
        let mut cache = self
            .compiled
            .lock()
            .map_err(|_| RuntimeError::BackendUnavailable {
                backend: self.backend.to_string(),
                reason: "an earlier compile panicked".into(),
            })?;
        if let Some(c) = cache.get(&batch) {
            return Ok(Some(Arc::clone(c)));
        }
        let c = Arc::new(match self.backend {
            Backend::Cpu => Compiled::Cpu(cpu::compile(&self.graph, batch, self.threads)?),
            Backend::Gpu => Compiled::Gpu(gpu::GpuSession::new(&self.graph, batch)?),
            Backend::Interp => return Ok(None),
        });
        cache.insert(batch, Arc::clone(&c));
        Ok(Some(c))
    }

    /// Runs the network on named inputs; returns every graph output, in order, by name.
    pub fn run(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        let batch = verify::bind_inputs(&self.graph, inputs)?;
        match self.compiled(batch)?.as_deref() {
            None => Ok(interp::run(&self.graph, inputs)?),
            Some(Compiled::Cpu(p)) => Ok(p.run(inputs)?),
            Some(Compiled::Gpu(s)) => Ok(s.run(inputs)?),
        }
    }

    /// Runs once and returns the time of every kernel, in execution order (CPU: wall clock per
    /// step; GPU: timestamp queries around each dispatch).
    pub fn profile(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<cpu::StepTime>, RuntimeError> {
        let batch = verify::bind_inputs(&self.graph, inputs)?;
        match self.compiled(batch)?.as_deref() {
            Some(Compiled::Cpu(p)) => Ok(p.run_profiled(inputs)?.1),
            Some(Compiled::Gpu(s)) => {
                let ops: HashMap<&str, &'static str> = self
                    .graph
                    .node_ids()
                    .map(|id| {
                        let n = self.graph.node(id);
                        (n.name.as_str(), n.op.name())
                    })
                    .collect();
                Ok(s.profile(inputs)?
                    .into_iter()
                    .map(|(node, kernel, seconds)| cpu::StepTime {
                        op: ops.get(node.as_str()).copied().unwrap_or("(copy)"),
                        node,
                        kernel,
                        seconds,
                    })
                    .collect())
            }
            None => Err(RuntimeError::BackendUnavailable {
                backend: self.backend.to_string(),
                reason: "per-kernel profiles come from the cpu and gpu backends".into(),
            }),
        }
    }

    /// Times `iters` inferences after `warmup` on the GPU backend: GPU timestamps when the
    /// adapter has them, wall clock otherwise. `None` on other backends.
    pub fn gpu_timing(
        &self,
        inputs: &HashMap<String, Tensor>,
        warmup: usize,
        iters: usize,
    ) -> Result<Option<gpu::Timing>, RuntimeError> {
        let batch = verify::bind_inputs(&self.graph, inputs)?;
        match self.compiled(batch)?.as_deref() {
            Some(Compiled::Gpu(s)) => Ok(Some(s.time(inputs, warmup, iters)?)),
            _ => Ok(None),
        }
    }

    /// Bytes of activations the CPU memory plan holds at its peak, for `batch`.
    pub fn planned_peak_bytes(&self, batch: usize) -> Result<Option<usize>, RuntimeError> {
        Ok(match self.compiled(batch)?.as_deref() {
            Some(Compiled::Cpu(p)) => Some(p.planned_peak_bytes()),
            _ => None,
        })
    }
}
