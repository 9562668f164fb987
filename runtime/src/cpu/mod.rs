//! The CPU backend's execution side: [`compile`] turns a graph into a [`CpuProgram`] for one batch
//! size — every node lowered to a step (`lower`), its kernels generated with Cranelift
//! (`excite_cpu`), weights laid out once, and a memory plan that reuses buffers by liveness
//! (`plan`). [`CpuProgram::run`] executes the steps on a thread pool of the requested size.

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
    /// Buffers of earlier runs, one set per run that was in flight at once, reused.
    arena: Mutex<Vec<Vec<Vec<f32>>>>,
    batch: usize,
    /// The per-image mode: the batch-1 program each image runs on one thread (this program's
    /// own steps are then empty; its inputs and outputs carry the batch's shapes).
    per_image: Option<Box<CpuProgram>>,
    placement: Placement,
}

/// Whether a multi-threaded run treats its threads as sharing a cache. With
/// [`Placement::Probe`] (the default) each run times a few round trips between two of its
/// threads first and decides from that; the others fix the answer (for comparisons and
/// tests; `EXCITE_CPU_PLACEMENT=probe|shared|far` at [`compile`]). Far apart, the GEMMs read
/// the data the other thread wrote in memory order before using it, and pooling splits its
/// channels as the conv before it did (ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    #[default]
    Probe,
    Shared,
    Far,
}

/// Whether every image of a batch can run through the graph on its own: each run-time value
/// has the batch only as its first dimension (every graph input and output has it there; no
/// weight has it), and no node mixes images (a softmax, concat or reduction over axis 0, a
/// flatten at axis 0, a transposed `A` of Gemm, a matmul contracting over the batch).
pub fn image_separable(g: &Graph) -> bool {
    use excite_ir::{Dim, Op, ValueDef};
    let batch_at = |v: excite_ir::ValueId| -> Option<bool> {
        let ty = g.value(v).ty.as_ref()?;
        let dims = ty.shape.dims();
        if dims.iter().skip(1).any(|d| *d == Dim::Batch) {
            return None; // the batch elsewhere: not separable
        }
        Some(dims.first() == Some(&Dim::Batch))
    };
    for v in g.value_ids() {
        match (batch_at(v), &g.value(v).def) {
            (None, ValueDef::Undefined) => {}
            (None, _) | (Some(true), ValueDef::Weight(_)) => return false,
            _ => {}
        }
    }
    if g.inputs()
        .iter()
        .chain(g.outputs())
        .any(|&v| batch_at(v) != Some(true))
    {
        return false;
    }
    for id in g.node_ids() {
        let node = g.node(id);
        let has = |i: usize| {
            node.inputs
                .get(i)
                .is_some_and(|&v| batch_at(v) == Some(true))
        };
        let any_in = (0..node.inputs.len()).any(has);
        let outs_batched = node.outputs.iter().all(|&v| batch_at(v) == Some(true));
        if any_in != outs_batched {
            return false; // images merged into, or made from, something else
        }
        if !any_in {
            continue;
        }
        let rank = |i: usize| {
            node.inputs
                .get(i)
                .and_then(|&v| g.value(v).ty.as_ref())
                .map_or(0, |t| t.shape.rank())
        };
        let ok = match &node.op {
            Op::Softmax { axis } | Op::Concat { axis } | Op::Flatten { axis } => *axis != 0,
            Op::ReduceMean { axes, .. } => !axes.contains(&0),
            Op::Gemm(gm) => !(has(1) || has(0) && gm.trans_a),
            Op::MatMul => {
                (!has(0) || rank(0) >= 2)
                    && (!has(1) || (rank(1) >= 3 && (!has(0) || rank(0) >= 3)))
            }
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Compiles `g` (typically after `excite_passes::optimize`) for `batch` images on `threads`
/// threads (0: all cores).
///
/// A batch that the threads divide evenly, of a graph whose images run independently
/// ([`image_separable`]), runs in the per-image mode: the graph compiled once for one image
/// and one thread, each image on one thread of the pool. Each image's activations then stay
/// in its core's caches through the network instead of every op sweeping the whole batch
/// (BENCHMARKS.md); `EXCITE_CPU_PER_IMAGE=0` turns the mode off, for comparisons.
/// `EXCITE_CPU_PLACEMENT` sets the [`Placement`].
pub fn compile(g: &Graph, batch: usize, threads: usize) -> Result<CpuProgram, CpuError> {
    let per_image = std::env::var("EXCITE_CPU_PER_IMAGE").as_deref() != Ok("0");
    let mut prog = compile_with(g, batch, threads, per_image)?;
    match std::env::var("EXCITE_CPU_PLACEMENT").as_deref() {
        Ok("shared") => prog.set_placement(Placement::Shared),
        Ok("far") => prog.set_placement(Placement::Far),
        _ => {}
    }
    Ok(prog)
}

/// [`compile`], with the per-image mode allowed or not.
pub fn compile_with(
    g: &Graph,
    batch: usize,
    threads: usize,
    per_image: bool,
) -> Result<CpuProgram, CpuError> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    if threads > crate::MAX_THREADS {
        return Err(CpuError::Threads(format!(
            "{threads} threads requested, at most {} supported",
            crate::MAX_THREADS
        )));
    }
    if per_image && batch > 1 && batch.is_multiple_of(threads) && image_separable(g) {
        let inner = compile_program(g, 1, 1)?;
        let with_batch =
            |list: &[(String, usize, Vec<usize>)]| -> Vec<(String, usize, Vec<usize>)> {
                list.iter()
                    .map(|(n, r, s)| {
                        let mut s = s.clone();
                        if let Some(d) = s.first_mut() {
                            *d = batch;
                        }
                        (n.clone(), *r, s)
                    })
                    .collect()
            };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CpuError::Threads(e.to_string()))?;
        return Ok(CpuProgram {
            steps: Vec::new(),
            kernels: Vec::new(),
            plan: Plan::default(),
            inputs: with_batch(&inner.inputs),
            outputs: with_batch(&inner.outputs),
            const_outputs: Vec::new(),
            scratch_len: 0,
            means_len: 0,
            pool,
            threads,
            arena: Mutex::new(Vec::new()),
            batch,
            per_image: Some(Box::new(inner)),
            placement: Placement::default(),
        });
    }
    compile_program(g, batch, threads)
}

/// [`compile`] without the per-image mode (`threads` resolved).
fn compile_program(g: &Graph, batch: usize, threads: usize) -> Result<CpuProgram, CpuError> {
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
        per_image: None,
        placement: Placement::default(),
    })
}

impl CpuProgram {
    /// Runs on named inputs (exact shapes of the compiled batch); returns the graph outputs in
    /// order, by name.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, CpuError> {
        self.execute(inputs, None, true)
    }

    /// Like [`CpuProgram::run`], also timing every step.
    pub fn run_profiled(
        &self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<(NamedTensors, Vec<StepTime>), CpuError> {
        let mut times = Vec::with_capacity(self.steps.len());
        let out = self.execute(inputs, Some(&mut times), true)?;
        Ok((out, times))
    }

    /// Every generated kernel's Cranelift IR, by kernel name.
    pub fn clif(&self) -> Vec<(String, String)> {
        if let Some(inner) = &self.per_image {
            return inner.clif();
        }
        self.kernels
            .iter()
            .map(|k| (k.name().to_string(), k.clif().to_string()))
            .collect()
    }

    /// Bytes of the planned activation buffers (all slots plus conv scratch; weights excluded).
    /// In the per-image mode: one image's plan per thread.
    pub fn planned_peak_bytes(&self) -> usize {
        if let Some(inner) = &self.per_image {
            return inner.planned_peak_bytes() * self.threads.min(self.batch);
        }
        self.plan.peak_bytes() + (self.scratch_len + self.means_len) * 4
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Fixes whether runs treat their threads as sharing a cache (default: measured per run).
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether the batch runs in the per-image mode (see [`compile`]).
    pub fn per_image(&self) -> bool {
        self.per_image.is_some()
    }

    /// `(node, op, kernel)` of each step, in execution order (of one image's program in the
    /// per-image mode).
    pub fn steps(&self) -> Vec<(String, &'static str, String)> {
        if let Some(inner) = &self.per_image {
            return inner.steps();
        }
        self.steps
            .iter()
            .map(|s| (s.node.clone(), s.op, s.kernel.clone()))
            .collect()
    }
}
