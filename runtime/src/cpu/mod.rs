//! The CPU backend's execution side: [`compile`] turns a graph into a [`CpuProgram`] for one batch
//! size — every node lowered to a step ([`lower`]), its kernels generated with Cranelift
//! (`excite_cpu`), weights laid out once, and a memory plan that reuses buffers by liveness
//! ([`plan`]). [`CpuProgram::run`] executes the steps on a thread pool of the requested size.

mod exec;
mod lower;
mod plan;
mod se_split;

use std::collections::HashMap;
use std::sync::Mutex;

use excite_cpu::{Jit, Kernel, KernelError};
use excite_ir::{Graph, IrError, IrErrors, Tensor, verify};

use lower::{Lowerer, Step};
use plan::{Plan, StepUse};

/// Errors of compiling or running a CPU program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpuError {
    #[error("the graph does not verify at this batch size: {0}")]
    Verify(#[from] IrErrors),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("node `{node}`: {msg}")]
    Unsupported { node: String, msg: String },
    #[error("input `{input}`: {msg}")]
    Input { input: String, msg: String },
    #[error("node `{node}`: {source}")]
    Exec {
        node: String,
        #[source]
        source: IrError,
    },
    #[error("thread pool: {0}")]
    Threads(String),
}

/// Named tensors, in graph order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Time spent in one step of [`CpuProgram::run_profiled`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    pub node: String,
    pub op: &'static str,
    pub kernel: String,
    pub seconds: f64,
}

/// A network compiled for the CPU at one batch size; run it any number of times, from any thread.
#[derive(Debug)]
pub struct CpuProgram {
    steps: Vec<Step>,
    kernels: Vec<Kernel>,
    plan: Plan,
    /// `(name, root value, shape)` of each graph input and output.
    inputs: Vec<(String, usize, Vec<usize>)>,
    outputs: Vec<(String, usize, Vec<usize>)>,
    /// Graph outputs that are constants: `(position among the outputs, name, value)`.
    const_outputs: Vec<(usize, String, Tensor)>,
    scratch_len: usize,
    /// Channel means passed from a conv epilogue to the SE block after it.
    means_len: usize,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Buffers of the previous run, reused by the next.
    arena: Mutex<Vec<Vec<f32>>>,
    batch: usize,
}

/// Compiles `g` (typically after `excite_passes::optimize`) for `batch` images on `threads`
/// threads (0: all cores).
pub fn compile(g: &Graph, batch: usize, threads: usize) -> Result<CpuProgram, CpuError> {
    let mut g = g.clone();
    verify::resolve_batch(&mut g, batch)?;
    let n_values = g.value_ids().count();
    let mut lw = Lowerer {
        g: &g,
        jit: Jit::new()?,
        cache: HashMap::new(),
        root: (0..n_values).collect(),
    };
    let order = g.topo_order().map_err(|e| CpuError::Exec {
        node: "(graph)".into(),
        source: e,
    })?;
    let mut steps = Vec::new();
    for id in order {
        if let Some(s) = lw.lower(g.node(id))? {
            steps.push(s);
        }
    }
    let named = |lw: &Lowerer<'_>, v: excite_ir::ValueId| -> Result<_, CpuError> {
        let name = g.value(v).name.clone();
        Ok((name.clone(), lw.root[v.index()], lw.shape(v, &name)?))
    };
    let inputs = g
        .inputs()
        .iter()
        .map(|&v| named(&lw, v))
        .collect::<Result<Vec<_>, _>>()?;
    // A graph output that is a weight is copied out of the graph at run time, not planned.
    let mut const_outputs = Vec::new();
    let mut outputs = Vec::new();
    for (pos, &v) in g.outputs().iter().enumerate() {
        match g.value(v).weight() {
            Some(t) => const_outputs.push((pos, g.value(v).name.clone(), Tensor::clone(t))),
            None => outputs.push(named(&lw, v)?),
        }
    }
    let pinned_roots: Vec<usize> = inputs.iter().chain(&outputs).map(|(_, r, _)| *r).collect();
    lw.fold_se_gates(&mut steps, &pinned_roots)?;
    let means_len = lw.fuse_squeeze(&mut steps, &pinned_roots)?;
    let means_len = lw.squeeze_gates(&mut steps, &pinned_roots, means_len)?;
    let uses: Vec<StepUse> = steps.iter().map(exec::step_use).collect();
    let in_sizes: Vec<(usize, usize)> = inputs
        .iter()
        .map(|(_, r, s)| (*r, s.iter().product()))
        .collect();
    let pinned: Vec<usize> = inputs.iter().chain(&outputs).map(|(_, r, _)| *r).collect();
    let plan = plan::plan(n_values, &in_sizes, &uses, &pinned);
    let kernels = lw.jit.finish()?;
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let scratch_len = steps
        .iter()
        .map(|s| exec::scratch_len(s, threads))
        .max()
        .unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CpuError::Threads(e.to_string()))?;
    Ok(CpuProgram {
        steps,
        kernels,
        plan,
        inputs,
        outputs,
        const_outputs,
        scratch_len,
        means_len,
        pool,
        threads,
        arena: Mutex::new(Vec::new()),
        batch,
    })
}

impl CpuProgram {
    /// Runs on named inputs (exact shapes of the compiled batch); returns the graph outputs in
    /// order, by name.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, CpuError> {
        self.execute(inputs, None)
    }

    /// Like [`CpuProgram::run`], also timing every step.
    pub fn run_profiled(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(NamedTensors, Vec<StepTime>), CpuError> {
        let mut times = Vec::with_capacity(self.steps.len());
        let out = self.execute(inputs, Some(&mut times))?;
        Ok((out, times))
    }

    /// Every generated kernel's Cranelift IR, by kernel name.
    pub fn clif(&self) -> Vec<(String, String)> {
        self.kernels
            .iter()
            .map(|k| (k.name().to_string(), k.clif().to_string()))
            .collect()
    }

    /// Bytes of the planned activation buffers (all slots plus conv scratch; weights excluded).
    pub fn planned_peak_bytes(&self) -> usize {
        self.plan.peak_bytes() + (self.scratch_len + self.means_len) * 4
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// `(node, op, kernel)` of each step, in execution order.
    pub fn steps(&self) -> Vec<(String, &'static str, String)> {
        self.steps
            .iter()
            .map(|s| (s.node.clone(), s.op, s.kernel.clone()))
            .collect()
    }
}
