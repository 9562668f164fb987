//! The compiled program (modules, buffers, dispatches) and the liveness-based buffer planner.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::WgslError;

/// Every module's compute entry point.
pub const ENTRY_POINT: &str = "main";

/// The device limits the plan must respect (wgpu's defaults unless the runtime passes the
/// adapter's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroups a GEMM convolution should have to keep the device busy (wgpu does not report
    /// the compute-unit count; the default suits GPUs of ~100 units running several workgroups
    /// each). A conv with fewer splits its K dimension across workgroups and adds the parts in
    /// a second dispatch. 0 never splits.
    pub min_workgroups: u32,
    /// Fold SE blocks into the linear 1x1 conv feeding them (`se::folds`); a tuning knob (the
    /// unfolded kernels stay for A/B measurements).
    pub fold_se: bool,
    /// Pointwise conv tiles of 128 output channels where a conv has that many and K >= 128
    /// (else 64); a tuning knob.
    pub wide_tiles: bool,
    /// The gathering conv kernel's threads own columns 16 apart instead of four consecutive
    /// ones, so that each gathered load and each store of a warp is contiguous; a tuning knob.
    pub strided_cols: bool,
    /// The pointwise GEMM kernel stores each thread's four consecutive outputs of a row as one
    /// vec4 (partial products of split-K convs included); a tuning knob.
    pub vec4_stores: bool,
    /// Split-K reductions over planes of whole quads add, apply the epilogue and store by
    /// vec4s (one thread per quad of outputs); a tuning knob.
    pub vec4_splitk: bool,
    /// Pixels of one plane that a `splitk_squeeze` workgroup reduces (planes are split into
    /// chunks of this many, so that a large plane still spreads over many workgroups at
    /// batch 1); a tuning knob, at least 32.
    pub squeeze_span: u32,
    /// 3x3 stride-1 convs with enough tiles by Winograd F(MxM, 3x3) (`winograd.rs`) with this
    /// M: 2 or 4 (0, or any other value: off). Default 4: ResNet-50 at batch 32 on an H100
    /// 12.14 -> 10.10 ms (F(2x2): 10.37); a tuning knob.
    pub winograd: u32,
    /// The radix of the workgroup-memory sums (`lower::tree_sum`): 2 halves the lanes once per
    /// barrier; 16 (the default: SE-ResNet-50 at batch 1 on an H100 1.119 -> 1.101 ms) adds 16
    /// slots per lane and level, so 256 lanes take 2 barriers instead of 8; a tuning knob.
    pub tree_radix: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_storage_buffer_binding_size: 128 << 20,
            max_buffer_size: 256 << 20,
            max_compute_workgroups_per_dimension: 65535,
            max_compute_workgroup_storage_size: 16384,
            max_storage_buffers_per_shader_stage: 8,
            min_workgroups: 512,
            fold_se: true,
            wide_tiles: true,
            strided_cols: true,
            vec4_stores: true,
            vec4_splitk: true,
            squeeze_span: 512,
            winograd: 4,
            tree_radix: 16,
        }
    }
}

impl Limits {
    /// These limits with the tuning knobs set from the environment, as `excite bench`,
    /// `excite compile --target wgsl` and `scripts/bench_gpu.sh`'s `VARIANTS` use them:
    /// `EXCITE_GPU_MIN_WORKGROUPS`, `EXCITE_GPU_SQUEEZE_SPAN`, `EXCITE_GPU_WINOGRAD` and
    /// `EXCITE_GPU_TREE_RADIX` (numbers), `EXCITE_GPU_FOLD_SE`, `EXCITE_GPU_WIDE_TILES`,
    /// `EXCITE_GPU_STRIDED_COLS`, `EXCITE_GPU_VEC4_STORES` and `EXCITE_GPU_VEC4_SPLITK`
    /// (`0` off, `1` on). A variable that
    /// is unset or does not parse leaves its knob as it was.
    pub fn with_env_knobs(mut self) -> Limits {
        let var = |name: &str| std::env::var(name).ok();
        let num = |name: &str, v: &mut u32| {
            if let Some(n) = var(name).and_then(|s| s.parse().ok()) {
                *v = n;
            }
        };
        let flag = |name: &str, v: &mut bool| match var(name).as_deref() {
            Some("1") => *v = true,
            Some("0") => *v = false,
            _ => {}
        };
        num("EXCITE_GPU_MIN_WORKGROUPS", &mut self.min_workgroups);
        num("EXCITE_GPU_SQUEEZE_SPAN", &mut self.squeeze_span);
        num("EXCITE_GPU_WINOGRAD", &mut self.winograd);
        num("EXCITE_GPU_TREE_RADIX", &mut self.tree_radix);
        flag("EXCITE_GPU_FOLD_SE", &mut self.fold_se);
        flag("EXCITE_GPU_WIDE_TILES", &mut self.wide_tiles);
        flag("EXCITE_GPU_STRIDED_COLS", &mut self.strided_cols);
        flag("EXCITE_GPU_VEC4_STORES", &mut self.vec4_stores);
        flag("EXCITE_GPU_VEC4_SPLITK", &mut self.vec4_splitk);
        self
    }
}

/// One WGSL module (entry point [`ENTRY_POINT`]).
#[derive(Clone, Debug)]
pub struct Module {
    pub name: String,
    pub source: String,
}

/// What a buffer holds before the first dispatch.
#[derive(Clone, Debug)]
pub enum BufferKind {
    /// The graph input of this name, written before every inference.
    Input(String),
    /// Constant data uploaded once (a weight, possibly repacked for its kernel).
    Weight(Arc<[f32]>),
    /// Intermediate tensors; reused by tensors whose lifetimes do not overlap.
    Scratch,
}

/// A storage buffer of `bytes` bytes (a multiple of 4, at least 4).
#[derive(Clone, Debug)]
pub struct Buffer {
    pub label: String,
    pub bytes: u64,
    pub kind: BufferKind,
}

/// One compute dispatch: binding `i` of group 0 is buffer `bindings[i]`.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub node: String,
    pub module: usize,
    pub bindings: Vec<usize>,
    pub workgroups: [u32; 3],
}

/// A graph input or output: the buffer holding it and its shape (batch resolved).
#[derive(Clone, Debug)]
pub struct Io {
    pub name: String,
    pub buffer: usize,
    pub shape: Vec<usize>,
}

/// A graph compiled for one batch size.
#[derive(Clone, Debug, Default)]
pub struct WgslProgram {
    pub batch: usize,
    pub modules: Vec<Module>,
    pub buffers: Vec<Buffer>,
    pub dispatches: Vec<Dispatch>,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    /// SE blocks folded into the 1x1 conv that feeds them (no dispatch of their own over the
    /// tensor: the conv's epilogue applies gate, residual and act).
    pub folded_se: Vec<String>,
}

impl WgslProgram {
    /// The program as files for a person to read: one `.wgsl` per module and `plan.txt`.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<_> = self
            .modules
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("{i:03}_{}.wgsl", m.name), m.source.clone()))
            .collect();
        files.push(("plan.txt".into(), self.plan_text()));
        files
    }

    /// Writes [`WgslProgram::files`] into `dir` (created if missing).
    pub fn write_to(&self, dir: &Path) -> Result<(), WgslError> {
        let io = |path: &Path, source| WgslError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for (name, text) in self.files() {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// The dispatch plan in text: buffers, inputs, outputs, then one line per dispatch.
    pub fn plan_text(&self) -> String {
        let mut s = format!("batch {}\n", self.batch);
        for (i, b) in self.buffers.iter().enumerate() {
            let kind = match &b.kind {
                BufferKind::Input(n) => format!("input {n}"),
                BufferKind::Weight(_) => "weight".into(),
                BufferKind::Scratch => "scratch".into(),
            };
            let _ = writeln!(s, "buffer {i} {} bytes {kind} ({})", b.bytes, b.label);
        }
        for io in &self.inputs {
            let _ = writeln!(
                s,
                "input {} {:?} in buffer {}",
                io.name, io.shape, io.buffer
            );
        }
        for io in &self.outputs {
            let _ = writeln!(
                s,
                "output {} {:?} in buffer {}",
                io.name, io.shape, io.buffer
            );
        }
        for se in &self.folded_se {
            let _ = writeln!(s, "folded SE block {se} into the conv feeding it");
        }
        for d in &self.dispatches {
            let m = self.modules.get(d.module).map_or("?", |m| m.name.as_str());
            let _ = writeln!(
                s,
                "dispatch {} module {} {m} bindings {:?} workgroups {:?}",
                d.node, d.module, d.bindings, d.workgroups
            );
        }
        s
    }

    /// Bytes of all scratch buffers together (what liveness planning keeps small).
    pub fn scratch_bytes(&self) -> u64 {
        self.buffers
            .iter()
            .filter(|b| matches!(b.kind, BufferKind::Scratch))
            .map(|b| b.bytes)
            .sum()
    }
}

/// Hands out scratch buffers, best fit first, growing a free one before making a new one.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    free: Vec<usize>,
}

impl Allocator {
    pub(crate) fn alloc(&mut self, p: &mut WgslProgram, bytes: u64) -> usize {
        let bytes = bytes.max(4);
        let fit = self
            .free
            .iter()
            .enumerate()
            .filter(|&(_, &b)| p.buffers[b].bytes >= bytes)
            .min_by_key(|&(_, &b)| p.buffers[b].bytes)
            .or_else(|| {
                self.free
                    .iter()
                    .enumerate()
                    .max_by_key(|&(_, &b)| p.buffers[b].bytes)
            })
            .map(|(i, _)| i);
        if let Some(i) = fit {
            let b = self.free.swap_remove(i);
            p.buffers[b].bytes = p.buffers[b].bytes.max(bytes);
            return b;
        }
        p.buffers.push(Buffer {
            label: format!("scratch{}", p.buffers.len()),
            bytes,
            kind: BufferKind::Scratch,
        });
        p.buffers.len() - 1
    }

    pub(crate) fn release(&mut self, b: usize) {
        if !self.free.contains(&b) {
            self.free.push(b);
        }
    }
}
