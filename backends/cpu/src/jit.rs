//! Every `unsafe` of the crate, behind safe wrappers that check buffer lengths first:
//! compiling CLIF to machine code with cranelift-jit, calling the generated kernels, calling
//! the `gemm` crate's micro-kernels, and excite's own AVX-512 and AVX2 ones ([`packed_gemm`]).
//!
//! Kernel ABI: every generated function is `extern "C" fn(args: *const *mut f32, n: i64)`.
//! `args` holds one pointer per [`Arg`] of the kernel's [`ArgSpec`] list, in order; `n` is the
//! kernel's count (elements, channel planes or images, depending on the family). Each buffer's
//! required length is affine in `n` (`base + per * n`), and [`Kernel::call`] refuses any call
//! whose slices are shorter, so generated code never reads or writes outside a Rust slice.
#![allow(unsafe_code)]

use std::sync::Arc;

use cranelift_codegen::ir::{AbiParam, Function, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

use crate::error::KernelError;

/// Whether a kernel reads a buffer or also writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    In,
    Out,
}

/// One buffer argument of a kernel: its role and required length `base + per * n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    pub role: Role,
    pub base: usize,
    pub per: usize,
}

impl ArgSpec {
    pub fn input(base: usize, per: usize) -> ArgSpec {
        ArgSpec {
            role: Role::In,
            base,
            per,
        }
    }
    pub fn output(base: usize, per: usize) -> ArgSpec {
        ArgSpec {
            role: Role::Out,
            base,
            per,
        }
    }
    fn need(&self, n: usize) -> Option<usize> {
        self.per.checked_mul(n)?.checked_add(self.base)
    }
}

/// A buffer passed to [`Kernel::call`].
#[derive(Debug)]
pub enum Arg<'a> {
    In(&'a [f32]),
    Out(&'a mut [f32]),
}

type KernelFn = unsafe extern "C" fn(*const *mut f32, i64);

/// Owns the executable memory of one batch of compiled kernels.
struct Code(Option<JITModule>);

// SAFETY: after `finalize_definitions` the module is never used again except to free its memory
// on drop; the code pages are immutable and shared read-only between threads. The `RefCell`
// inside `JITModule` (the symbol cache) is not touched after finalization.
unsafe impl Send for Code {}
// SAFETY: see `Send`: no method of the module is called through `&Code`.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            // SAFETY: `Code` is dropped only when the last `Arc<Code>` goes, i.e. when no
            // `Kernel` referring to these pages is left, so no pointer into them is used again.
            unsafe { m.free_memory() };
        }
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(..)")
    }
}

/// A compiled kernel; cheap to clone, callable from any thread.
#[derive(Clone, Debug)]
pub struct Kernel {
    name: String,
    clif: String,
    args: Vec<ArgSpec>,
    max_n: usize,
    func: KernelFn,
    _code: Arc<Code>,
}

impl Kernel {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's Cranelift IR, as generated (before optimisation).
    pub fn clif(&self) -> &str {
        &self.clif
    }

    /// Runs the kernel on `args` with count `n` after checking every slice length and role.
    pub fn call(&self, n: usize, args: &mut [Arg<'_>]) -> Result<(), KernelError> {
        if args.len() != self.args.len() {
            return Err(KernelError::Call {
                kernel: self.name.clone(),
                msg: format!("takes {} buffers, got {}", self.args.len(), args.len()),
            });
        }
        if n > self.max_n {
            return Err(KernelError::Call {
                kernel: self.name.clone(),
                msg: format!("count {n} exceeds the kernel's limit {}", self.max_n),
            });
        }
        let mut ptrs: Vec<*mut f32> = Vec::with_capacity(args.len());
        for (i, (spec, arg)) in self.args.iter().zip(args.iter_mut()).enumerate() {
            let need = spec.need(n).ok_or_else(|| KernelError::Call {
                kernel: self.name.clone(),
                msg: format!("buffer {i} size overflows"),
            })?;
            let (len, ptr) = match (spec.role, arg) {
                (Role::In, Arg::In(s)) => (s.len(), s.as_ptr().cast_mut()),
                (_, Arg::Out(s)) => (s.len(), s.as_mut_ptr()),
                (Role::Out, Arg::In(_)) => {
                    return Err(KernelError::Call {
                        kernel: self.name.clone(),
                        msg: format!("buffer {i} is written but was passed read-only"),
                    });
                }
            };
            if len < need {
                return Err(KernelError::Call {
                    kernel: self.name.clone(),
                    msg: format!("buffer {i} has {len} elements, needs {need} for count {n}"),
                });
            }
            ptrs.push(ptr);
        }
        let n = i64::try_from(n).map_err(|_| KernelError::Call {
            kernel: self.name.clone(),
            msg: "count overflows i64".into(),
        })?;
        // SAFETY: `func` was compiled by `Jit::finish` from CLIF that only accesses argument `i`
        // within `spec.need(n)` elements (each builder's contract, covered by the differential
        // tests); every slice was just checked to be that long, `Out` buffers come from `&mut`
        // slices so they alias nothing else, and `_code` keeps the code pages alive.
        unsafe { (self.func)(ptrs.as_ptr(), n) };
        Ok(())
    }
}

/// A function under construction, before it is handed to [`Jit::add`].
#[derive(Debug)]
pub struct Pending {
    pub name: String,
    pub args: Vec<ArgSpec>,
    pub max_n: usize,
    pub func: Function,
}

/// Starts a kernel function with the uniform ABI and lets `body` fill it through a
/// [`FunctionBuilder`]; `body` receives `(args pointer, n)` and must end with a `return`.
pub fn build_function(
    jit: &Jit,
    name: &str,
    args: Vec<ArgSpec>,
    max_n: usize,
    body: impl FnOnce(&mut FunctionBuilder, cranelift_codegen::ir::Value, cranelift_codegen::ir::Value),
) -> Pending {
    let mut func = Function::with_name_signature(UserFuncName::testcase(name), {
        let mut sig =
            cranelift_codegen::ir::Signature::new(cranelift_codegen::isa::CallConv::SystemV);
        sig.params.push(AbiParam::new(types::I64));
        sig.params.push(AbiParam::new(types::I64));
        sig
    });
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let p = b.block_params(entry)[0];
        let n = b.block_params(entry)[1];
        body(&mut b, p, n);
        b.seal_all_blocks();
        b.finalize(jit.module.isa().frontend_config());
    }
    Pending {
        name: name.to_string(),
        args,
        max_n,
        func,
    }
}

/// Compiles a batch of [`Pending`] functions into one code region.
pub struct Jit {
    module: JITModule,
    pending: Vec<(cranelift_module::FuncId, Pending, String)>,
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jit({} functions)", self.pending.len())
    }
}

impl Jit {
    /// A JIT for the host CPU (its SIMD features detected), optimising for speed.
    pub fn new() -> Result<Jit, KernelError> {
        let mut flags = settings::builder();
        for (k, v) in [("opt_level", "speed"), ("is_pic", "false")] {
            flags
                .set(k, v)
                .map_err(|e| KernelError::Jit(format!("setting {k}: {e}")))?;
        }
        let isa = cranelift_native::builder()
            .map_err(|e| KernelError::Jit(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| KernelError::Jit(e.to_string()))?;
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Jit {
            module,
            pending: Vec::new(),
        })
    }

    /// Declares and compiles one function; returns its index for [`Jit::finish`]'s result.
    pub fn add(&mut self, p: Pending) -> Result<usize, KernelError> {
        let clif = p.func.display().to_string();
        let sym = format!("k{}_{}", self.pending.len(), p.name);
        let id = self
            .module
            .declare_function(&sym, Linkage::Local, &p.func.signature)
            .map_err(|e| KernelError::Jit(format!("{}: {e}", p.name)))?;
        let mut ctx = self.module.make_context();
        ctx.func = p.func.clone();
        self.module
            .define_function(id, &mut ctx)
            .map_err(|e| KernelError::Jit(format!("{}: {e:?}", p.name)))?;
        self.pending.push((id, p, clif));
        Ok(self.pending.len() - 1)
    }

    /// Finalises the code and returns the kernels in the order they were added.
    pub fn finish(mut self) -> Result<Vec<Kernel>, KernelError> {
        self.module
            .finalize_definitions()
            .map_err(|e| KernelError::Jit(e.to_string()))?;
        let ptrs: Vec<*const u8> = self
            .pending
            .iter()
            .map(|(id, _, _)| self.module.get_finalized_function(*id))
            .collect();
        let code = Arc::new(Code(Some(self.module)));
        let mut out = Vec::with_capacity(ptrs.len());
        for ((_, p, clif), ptr) in self.pending.into_iter().zip(ptrs) {
            // SAFETY: `ptr` is the finalized entry of a function declared with the signature
            // `(i64, i64)` under the SystemV call convention, which is `KernelFn`'s ABI.
            let func = unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) };
            out.push(Kernel {
                name: p.name,
                clif,
                args: p.args,
                max_n: p.max_n,
                func,
                _code: Arc::clone(&code),
            });
        }
        Ok(out)
    }
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, all row-major with the given row strides, through the
/// `gemm` crate (AVX-512 with the `x86-v4` feature). `accumulate` adds to `dst`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    accumulate: bool,
    threads: usize,
) -> Result<(), KernelError> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    let fits = |len: usize, rows: usize, rs: usize, cols: usize| {
        rs >= cols
            && (rows - 1)
                .checked_mul(rs)
                .and_then(|v| v.checked_add(cols))
                .is_some_and(|need| need <= len)
    };
    if !fits(dst.len(), m, dst_rs, n)
        || (k > 0 && (!fits(lhs.len(), m, lhs_rs, k) || !fits(rhs.len(), k, rhs_rs, n)))
        || isize::try_from(dst_rs.max(lhs_rs).max(rhs_rs)).is_err()
    {
        return Err(KernelError::Call {
            kernel: "sgemm".into(),
            msg: format!(
                "buffers ({}, {}, {}) too short for {m}x{n}x{k} with strides ({dst_rs}, {lhs_rs}, {rhs_rs})",
                dst.len(),
                lhs.len(),
                rhs.len()
            ),
        });
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product touches, `(i, j)` with `i < rows` and `j < cols` at
    // `i * rs + j`, was checked above to lie inside its slice; `dst` is a unique borrow, so it
    // aliases neither operand. Strides fit `isize`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// Rows of one [`PackedWeight`] panel: two AVX-512 vectors of output channels.
const PANEL: usize = 32;
/// Output columns (pixels) of one register tile of [`packed_gemm`]: 7 x 2 accumulators.
const TILE_N: usize = 7;
/// K per block of [`packed_gemm`] (the block of `rhs`, KC x N, stays in cache across panels)
/// when the whole right-hand side is larger than [`WHOLE_K_BYTES`].
const KC: usize = 512;
/// Right-hand sides up to this many bytes (this CPU's L2 per core) run over the whole K in one
/// block: ResNet-50 batch 1, 0.8% faster on 1 thread (per-kernel minimums 35.09 -> 34.79 ms).
const WHOLE_K_BYTES: usize = 1 << 20;

/// The micro-kernel a [`PackedWeight`] is packed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 32 output channels x 7 pixels in `__m512` registers (AVX-512F).
    Avx512,
    /// 6 output channels x 16 pixels in `__m256` registers (AVX2 + FMA), the right-hand side
    /// copied into L1/L2-sized blocks per call.
    Avx2,
}

impl Isa {
    /// The best micro-kernel this CPU runs: AVX-512F, else AVX2 + FMA, else none.
    pub fn detect() -> Option<Isa> {
        if has_avx512() {
            Some(Isa::Avx512)
        } else if avx2::available() {
            Some(Isa::Avx2)
        } else {
            None
        }
    }

    /// Whether this CPU runs this micro-kernel.
    pub fn available(self) -> bool {
        match self {
            Isa::Avx512 => has_avx512(),
            Isa::Avx2 => avx2::available(),
        }
    }

    /// Output channels (weight rows) per packed panel.
    pub fn panel(self) -> usize {
        match self {
            Isa::Avx512 => PANEL,
            Isa::Avx2 => avx2::MR,
        }
    }
}

/// A convolution weight (`m x k`, row-major) packed once for [`packed_gemm`]: panels of
/// [`Isa::panel`] rows (32 for AVX-512, 6 for AVX2) stored `[m / panel][k][panel]` (AVX2: in
/// K blocks of up to 256, `[k / 256][m / 6][256][6]`), the last panel zero-padded, so each
/// k-step of the micro-kernel loads its weights in order.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    m: usize,
    k: usize,
    isa: Isa,
    data: Vec<f32>,
}

impl PackedWeight {
    /// Packs `w` (`m x k`, row stride `k`) for the best micro-kernel of this CPU
    /// ([`Isa::detect`]); `None` where it has neither AVX-512F nor AVX2 (then the `gemm` crate
    /// runs the product) or `w` is shorter than `m * k`.
    pub fn new(w: &[f32], m: usize, k: usize) -> Option<PackedWeight> {
        PackedWeight::for_isa(w, m, k, Isa::detect()?)
    }

    /// Packs `w` for the micro-kernel `isa`; `None` where this CPU lacks it or `w` is shorter
    /// than `m * k`.
    pub fn for_isa(w: &[f32], m: usize, k: usize, isa: Isa) -> Option<PackedWeight> {
        if !isa.available() || w.len() < m * k || m == 0 || k == 0 {
            return None;
        }
        let pr = isa.panel();
        let panels = m.div_ceil(pr);
        let mut data = vec![0f32; panels * k * pr];
        // AVX-512: `[panel][k][32]`. AVX2: K blocks outermost, `[block][panel][kc][6]`, the
        // order its loops read them in, so the weights stream from memory in one run.
        let kb = match isa {
            Isa::Avx512 => k,
            Isa::Avx2 => avx2::k_block(k),
        };
        for k0 in (0..k).step_by(kb) {
            let kc = kb.min(k - k0);
            let block = &mut data[k0 * panels * pr..(k0 + kc) * panels * pr];
            for (p, panel) in block.chunks_exact_mut(kc * pr).enumerate() {
                for r in 0..pr.min(m - p * pr) {
                    let row = &w[(p * pr + r) * k + k0..(p * pr + r) * k + k0 + kc];
                    for (kk, &v) in row.iter().enumerate() {
                        panel[kk * pr + r] = v;
                    }
                }
            }
        }
        Some(PackedWeight { m, k, isa, data })
    }

    /// Rows (output channels) and depth.
    pub fn dims(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    /// The micro-kernel this weight is packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Rows per panel: the unit of [`packed_gemm`]'s `panels`.
    pub fn panel(&self) -> usize {
        self.isa.panel()
    }
}

/// The right-hand side of [`packed_gemm`]: `k x n`, row `kk` and column `j`.
#[derive(Clone, Copy, Debug)]
pub enum Rhs<'a> {
    /// A row-major matrix: element `(kk, j)` at `data[kk * rs + j]`.
    Rows { data: &'a [f32], rs: usize },
    /// An im2col matrix never written out (an implicit GEMM): column `j` is output pixel
    /// `(j / width, j % width)`, and element `(kk, j)` lies at
    /// `data[offs[kk] + (j / width) * step + j % width]` — `data` the phase-split padded input
    /// ([`crate::kernels::tap_split`]), `offs` each tap's offset in it.
    Taps {
        data: &'a [f32],
        offs: &'a [usize],
        width: usize,
        step: usize,
    },
}

impl Rhs<'_> {
    /// Whether every element of a `k x n` product lies inside `data`.
    fn fits(&self, k: usize, n: usize) -> bool {
        match *self {
            Rhs::Rows { data, rs } => {
                rs >= n
                    && (k - 1)
                        .checked_mul(rs)
                        .and_then(|v| v.checked_add(n))
                        .is_some_and(|need| need <= data.len())
            }
            Rhs::Taps {
                data,
                offs,
                width,
                step,
            } => {
                let max_off = offs.get(..k).and_then(|o| o.iter().max().copied());
                width > 0
                    && n.is_multiple_of(width)
                    && max_off.is_some_and(|off| {
                        (n / width - 1)
                            .checked_mul(step)
                            .and_then(|v| v.checked_add(off))
                            .and_then(|v| v.checked_add(width))
                            .is_some_and(|need| need <= data.len())
                    })
            }
        }
    }
}

/// Whether this CPU has AVX-512F, which [`packed_gemm`] needs.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `dst[i][j] (+)= sum_k w[i][k] rhs[k][j]` for the output rows of weight `w` (packed once at
/// compile time) in `panels` (rows `w.panel() * panels.start..`, which `dst` starts at) and
/// `rhs` (`k x n`, a matrix or the implicit im2col matrix of [`Rhs::Taps`]), `dst` with row
/// stride `dst_rs`. With [`Isa::Avx512`]: a micro-kernel of 32 output channels x 7 pixels in
/// registers over the whole K, so no operand is packed per call and any N runs at full width
/// (the `gemm` crate's speed drops by a quarter when N is not a multiple of 16, see
/// BENCHMARKS.md); with [`Rhs::Taps`] a tile never spans two output rows. With [`Isa::Avx2`]:
/// 6 output channels x 16 pixels, the right-hand side copied per call into cache-sized blocks
/// (which gathers the taps too). Panels are split across `threads` (rayon) when more than one.
/// `far`: the right-hand side may sit in another core's cache that this core does not share
/// ([`Par::far`]), so each AVX-512 task first reads it once in memory order ([`pre_read`]).
#[allow(clippy::too_many_arguments)]
pub fn packed_gemm(
    w: &PackedWeight,
    panels: std::ops::Range<usize>,
    n: usize,
    dst: &mut [f32],
    dst_rs: usize,
    rhs: Rhs<'_>,
    accumulate: bool,
    Par { threads, far }: Par,
) -> Result<(), KernelError> {
    use rayon::prelude::*;
    let k = w.k;
    let pr = w.panel();
    let (p0, p1) = (panels.start, panels.end.min(w.m.div_ceil(pr)));
    if n == 0 || p0 >= p1 {
        return Ok(());
    }
    // Rows of this call: from panel p0's first row to panel p1's last.
    let m = (p1 * pr).min(w.m) - p0 * pr;
    let dst_short = dst_rs < n
        || (m - 1)
            .checked_mul(dst_rs)
            .and_then(|v| v.checked_add(n))
            .is_none_or(|need| need > dst.len());
    if dst_short || !rhs.fits(k, n) || !w.isa.available() {
        return Err(KernelError::Call {
            kernel: "packed_gemm".into(),
            msg: format!(
                "output ({} floats, row stride {dst_rs}) or right-hand side too short for \
                 {m}x{n}x{k}, or no {:?} on this CPU",
                dst.len(),
                w.isa
            ),
        });
    }
    if w.isa == Isa::Avx2 {
        // One task per thread over a run of panels, each copying the right-hand side into
        // its own blocks (which also reads it in memory order: nothing for `far` to add).
        let per = (p1 - p0).div_ceil(threads.max(1)).max(1);
        let used = &mut dst[..(m - 1) * dst_rs + n];
        let run = |(t, out): (usize, &mut [f32])| {
            let q0 = p0 + t * per;
            let (mk, q) = ((w.m, k), (q0, p1.min(q0 + per)));
            avx2::gemm(&w.data, mk, q, n, out, dst_rs, rhs, accumulate)
        };
        return if threads > 1 {
            used.par_chunks_mut(per * pr * dst_rs)
                .enumerate()
                .try_for_each(run)
        } else {
            run((0, used))
        };
    }
    // The tiles of one output row of pixels: (first column, width); a matrix is one row.
    let (b, width, step) = match rhs {
        Rhs::Rows { data, .. } => (data, n, 0),
        Rhs::Taps {
            data, width, step, ..
        } => (data, width, step),
    };
    let row_tiles = width.div_ceil(TILE_N);
    let tiles = n / width * row_tiles;
    let footprint = match rhs {
        Rhs::Rows { .. } => k * n * 4,
        Rhs::Taps { data, .. } => data.len() * 4,
    };
    // The whole K in one block where the right-hand side fits in L2 anyway: each extra block
    // costs every tile a read-add-write of its 224 outputs (layer 4's K = 4608: 9 of them).
    let kc_max = if footprint <= WHOLE_K_BYTES { k } else { KC };
    // One task per thread, each over a run of panels; K in blocks of KC, outermost within a
    // task, so the block of `rhs` stays in cache across the task's panels.
    let per = (p1 - p0).div_ceil(threads.max(1)).max(1);
    let task = |(t, out): (usize, &mut [f32])| {
        let mut k0 = 0;
        while k0 < k {
            let kc = kc_max.min(k - k0);
            if far {
                match rhs {
                    Rhs::Rows { data, rs } => pre_read(&data[k0 * rs..(k0 + kc - 1) * rs + n]),
                    Rhs::Taps { data, .. } if k0 == 0 => pre_read(data),
                    Rhs::Taps { .. } => {}
                }
            }
            let chunk = |p: usize| &w.data[(p * k + k0) * PANEL..(p * k + k0 + kc) * PANEL];
            for (q, pout) in out.chunks_mut(PANEL * dst_rs).enumerate() {
                let p = p0 + t * per + q;
                let a = chunk(p);
                // The weights come from memory once per call: the tiles of this panel fetch
                // the next panel's block into L2 while they compute, a share each, one cache
                // line per k-step (the hardware prefetcher alone left layer 4's products slower
                // than the `gemm` crate, which packs them in a tight copy).
                let next = if p + 1 < p1 { chunk(p + 1) } else { &[] };
                let share = (next.len() / 16).div_ceil(tiles);
                let rows = PANEL.min(w.m - p * PANEL);
                for ti in 0..tiles {
                    let (y, x0) = (ti / row_tiles, ti % row_tiles * TILE_N);
                    let (j, nr) = (y * width + x0, TILE_N.min(width - x0));
                    let lines = next.get(ti * share * 16..).unwrap_or_default();
                    let lines = &lines[..lines.len().min(share * 16)];
                    let at = match rhs {
                        Rhs::Rows { rs, .. } => RowAt::Stride(k0 * rs, rs),
                        Rhs::Taps { offs, .. } => RowAt::Table(&offs[k0..k0 + kc]),
                    };
                    // SAFETY: AVX-512F was detected above. The tile reads `a` (`kc * PANEL`
                    // floats) and, for kk < kc and c < nr, `b[base + row(k0 + kk) + c]` with
                    // `base` column j's offset (`Rhs::fits` checked every such index against
                    // `b.len()` above: j + nr <= n, and with taps x0 + nr <= width), and writes
                    // `pout[r * dst_rs + j + c]` for r < rows, c < nr: `pout` is this panel's
                    // rows of the checked `dst`, (rows - 1) * dst_rs + n long at least.
                    unsafe {
                        tile(
                            a.as_ptr(),
                            b.as_ptr().add(y * step + x0),
                            at,
                            kc,
                            pout.as_mut_ptr().add(j),
                            dst_rs,
                            rows,
                            nr,
                            accumulate || k0 > 0,
                            lines,
                        );
                    }
                }
            }
            k0 += kc;
        }
    };
    let used = &mut dst[..(m - 1) * dst_rs + n];
    if threads > 1 {
        used.par_chunks_mut(per * PANEL * dst_rs)
            .enumerate()
            .for_each(task);
    } else {
        task((0, used));
    }
    Ok(())
}

/// How a call spreads over the pool: its thread count, and whether those threads were just
/// measured not to share a cache (`far`: on this VM the two vCPUs sometimes sit on cores
/// without a shared L3, and a cache line another core wrote then takes ~400 ns to arrive
/// instead of ~40; the runtime measures it at the start of each run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Par {
    pub threads: usize,
    pub far: bool,
}

impl From<usize> for Par {
    /// `threads` threads sharing a cache.
    fn from(threads: usize) -> Par {
        Par {
            threads,
            far: false,
        }
    }
}

/// Reads one float per cache line of `data`, in memory order. A GEMM tile reads its
/// right-hand side down the rows, 7 floats of each: where those rows sit in another core's
/// cache, every line is a separate ~400 ns miss, and only as many overlap as the out-of-order
/// window holds (~5 GB/s). Read in order first, the lines stream in at the hardware
/// prefetcher's rate (~36 GB/s measured) and the tiles then find them in L2. Software prefetch
/// instructions instead of loads did not help (BENCHMARKS.md).
pub fn pre_read(data: &[f32]) {
    let mut acc = 0u32;
    for line in data.chunks(16) {
        acc ^= line[0].to_bits();
    }
    std::hint::black_box(acc);
}

/// Where row `kk` of one K block of a [`packed_gemm`] right-hand side starts, from the tile's
/// first column: `base + kk * stride`, or the block's entry of a tap offset table.
#[derive(Clone, Copy)]
enum RowAt<'a> {
    Stride(usize, usize),
    Table(&'a [usize]),
}

/// One register tile: `rows <= 32` output channels x `nr <= 7` pixels over the whole K.
///
/// # Safety
/// AVX-512F must be available; `a` must hold `k * PANEL` floats, `b` be readable at
/// `row(kk) + c` (`row` given by `at`; a table at least `k` long) and `c` writable at `r * c_rs + col` for `kk < k`, `c, col < nr`, `r < rows`.
/// `pf` (whole cache lines of it, one per k-step while they last) is only prefetched.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    a: *const f32,
    b: *const f32,
    at: RowAt<'_>,
    k: usize,
    c: *mut f32,
    c_rs: usize,
    rows: usize,
    nr: usize,
    accumulate: bool,
    pf: &[f32],
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; TILE_N];
    // SAFETY: the caller's contract (above) bounds every pointer offset in this block.
    unsafe {
        // The full tile with a constant width, so the inlined loop is unrolled over all 7
        // columns; the last tile of a row with its own width.
        match (at, nr == TILE_N) {
            (RowAt::Stride(base, rs), true) => {
                k_loop(&mut acc, (a, b, k), |kk| base + kk * rs, TILE_N, pf)
            }
            (RowAt::Stride(base, rs), false) => {
                k_loop(&mut acc, (a, b, k), |kk| base + kk * rs, nr, pf)
            }
            (RowAt::Table(offs), true) => k_loop(&mut acc, (a, b, k), |kk| offs[kk], TILE_N, pf),
            (RowAt::Table(offs), false) => k_loop(&mut acc, (a, b, k), |kk| offs[kk], nr, pf),
        }
        let mut t = [0f32; PANEL * TILE_N];
        for (col, acc) in acc.iter().enumerate().take(nr) {
            _mm512_storeu_ps(t.as_mut_ptr().add(col * PANEL), acc[0]);
            _mm512_storeu_ps(t.as_mut_ptr().add(col * PANEL + 16), acc[1]);
        }
        for r in 0..rows {
            let row = c.add(r * c_rs);
            for col in 0..nr {
                let v = t[col * PANEL + r];
                if accumulate {
                    *row.add(col) += v;
                } else {
                    *row.add(col) = v;
                }
            }
        }
    }
}

/// The k-loop of [`tile`]: `acc[col] += a[kk] * b[row(kk) + col]` for `col < nr`, prefetching one
/// line of `pf` per k-step while they last.
///
/// # Safety
/// As for [`tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn k_loop(
    acc: &mut [[std::arch::x86_64::__m512; 2]; TILE_N],
    (a, b, k): (*const f32, *const f32, usize),
    row: impl Fn(usize) -> usize,
    nr: usize,
    pf: &[f32],
) {
    use std::arch::x86_64::*;
    let pf_lines = pf.len() / 16;
    // SAFETY: the caller's contract (`tile`'s) bounds every pointer offset in this block.
    unsafe {
        for kk in 0..k {
            if kk < pf_lines {
                _mm_prefetch::<_MM_HINT_T1>(pf.as_ptr().add(kk * 16).cast());
            }
            let a0 = _mm512_loadu_ps(a.add(kk * PANEL));
            let a1 = _mm512_loadu_ps(a.add(kk * PANEL + 16));
            let br = b.add(row(kk));
            for (col, acc) in acc.iter_mut().enumerate().take(nr) {
                let bv = _mm512_set1_ps(*br.add(col));
                acc[0] = _mm512_fmadd_ps(a0, bv, acc[0]);
                acc[1] = _mm512_fmadd_ps(a1, bv, acc[1]);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    _: *const f32,
    _: *const f32,
    _: RowAt<'_>,
    _: usize,
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
    _: bool,
    _: &[f32],
) {
}

mod avx2 {
    //! The AVX2 + FMA path of [`super::packed_gemm`], for CPUs without AVX-512F: a register tile of
    //! 6 output channels x 16 pixels (12 `__m256` accumulators) in the layout of BLIS's Haswell
    //! kernel. The weights arrive packed `[k / KC][m / 6][KC][6]` (once, at compile time, in the
    //! order the loops below read them, so they stream from memory in one run); per call the
    //! right-hand side is copied into blocks of `KC x NC` floats stored as micro-panels of 16
    //! columns (`[NC / 16][KC][16]`, one cache line per k-step), so the micro-panel a tile reads
    //! stays in L1 while the panels of weights stream past it from L2. The copy also gathers the
    //! implicit im2col matrix of [`Rhs::Taps`], so no im2col matrix is written out.
    //!
    //! Session 13's AVX2 tile in the AVX-512 kernel's orientation (16 output channels x 6 pixels,
    //! the right-hand side read in place) lost to the `gemm` crate on every shape: each k-step
    //! loaded a new right-hand-side row and 32 KiB of weights per tile did not fit next to it in
    //! L1. Here the vector operand is the packed pixels, the broadcast one the weights. (A module
    //! of `jit.rs`, not a file of its own: every `unsafe` of the crate lives in this file.)

    use std::cell::RefCell;

    use super::Rhs;
    use crate::error::KernelError;

    /// Output channels of one register tile (and rows of one packed weight panel).
    pub(super) const MR: usize = 6;
    /// Pixels of one register tile: two `__m256` of 8.
    const NR: usize = 16;
    /// Largest K per block: a micro-panel of `KC x 16` floats is 16 KiB, half of a 32 KiB L1.
    const KC: usize = 256;
    /// Pixels per packed block: `KC x NC` floats (256 KiB) stay in a 512 KiB L2.
    const NC: usize = 256;
    /// Weight panels per block that the micro-panels of one pixel block reuse from L2 (120 rows x
    /// 256 x 4 bytes = 120 KiB).
    const MC: usize = 20;

    /// One k-step of a micro-panel: 16 floats on one cache line.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Line([f32; NR]);

    thread_local! {
        /// Each thread's packed block of the right-hand side, reused across calls.
        static PACK: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    }

    /// Whether this CPU has AVX2 and FMA.
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// K per block: equal blocks of at most `KC`, so no block is a sliver. The packed weight
    /// is laid out in these blocks.
    pub(super) fn k_block(k: usize) -> usize {
        k.div_ceil(k.div_ceil(KC).max(1)).max(1)
    }

    /// Copies columns `j0..j0 + nc` of rows `k0..k0 + kc` of `rhs` into `buf` as micro-panels of
    /// 16 columns, zero-padded past `nc`. `rhs` was checked to hold every `(kk, j)` with `kk < k`,
    /// `j < n`; the copy indexes safely anyway.
    fn pack(
        buf: &mut [Line],
        rhs: Rhs<'_>,
        (k0, kc): (usize, usize),
        (j0, nc): (usize, usize),
    ) -> Option<()> {
        let (data, width, step) = match rhs {
            Rhs::Rows { data, .. } => (data, usize::MAX, 0),
            Rhs::Taps {
                data, width, step, ..
            } => (data, width, step),
        };
        let row = |kk: usize| match rhs {
            Rhs::Rows { rs, .. } => Some((k0 + kk) * rs),
            Rhs::Taps { offs, .. } => offs.get(k0 + kk).copied(),
        };
        // Column j's offset from its row's start.
        let col = |j: usize| match rhs {
            Rhs::Rows { .. } => j,
            Rhs::Taps { .. } => j / width * step + j % width,
        };
        // Row by row, so the source streams in memory order; each row feeds every micro-panel.
        let panels = nc.div_ceil(NR);
        let mut cols = [[0usize; NR]; NC / NR];
        let mut runs = [false; NC / NR];
        for jr in 0..panels {
            let j = j0 + jr * NR;
            let w = NR.min(j0 + nc - j);
            let x = if width == usize::MAX { j } else { j % width };
            // Whether the panel's columns are consecutive in memory.
            runs[jr] = x + w <= width;
            for (c, o) in cols[jr].iter_mut().enumerate().take(w) {
                *o = col(j + c);
            }
        }
        for kk in 0..kc {
            let r = row(kk)?;
            for jr in 0..panels {
                let w = NR.min(j0 + nc - (j0 + jr * NR));
                let line = &mut buf.get_mut(jr * kc + kk)?.0;
                if runs[jr] && w == NR {
                    // A whole line: a fixed-size copy (two vector moves, not a `memcpy` call
                    // per line, which cost the stem's copy about as much as its products).
                    let o = r + cols[jr][0];
                    let src: &[f32; NR] = data.get(o..o + NR)?.try_into().ok()?;
                    *line = *src;
                    continue;
                } else if runs[jr] {
                    let o = r + cols[jr][0];
                    line[..w].copy_from_slice(data.get(o..o + w)?);
                } else {
                    for (v, &o) in line.iter_mut().zip(&cols[jr][..w]) {
                        *v = *data.get(r + o)?;
                    }
                }
                line[w..].fill(0.0);
            }
        }
        Some(())
    }

    /// `dst (+)= w · rhs` for weight panels `p0..p1` (6 rows each, packed `[panels][k][6]` in `a`)
    /// on one thread; `dst` starts at panel `p0`'s first row and holds `(rows - 1) * dst_rs + n`
    /// floats at least, `rows` the rows of these panels (`m_total` caps the last one).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm(
        a: &[f32],
        (m_total, k): (usize, usize),
        (p0, p1): (usize, usize),
        n: usize,
        dst: &mut [f32],
        dst_rs: usize,
        rhs: Rhs<'_>,
        accumulate: bool,
    ) -> Result<(), KernelError> {
        let err = |msg: String| KernelError::Call {
            kernel: "packed_gemm".into(),
            msg,
        };
        if !available() {
            return Err(err("the AVX2 kernel needs AVX2 and FMA".into()));
        }
        let panels = m_total.div_ceil(MR);
        if p1 > panels || a.len() < panels * k * MR {
            return Err(err(format!(
                "packed weight too short for {p1} panels of K {k}"
            )));
        }
        let rows = (p1 * MR).min(m_total) - p0 * MR;
        let kb = k_block(k);
        PACK.with_borrow_mut(|buf| {
            let need = NC.div_ceil(NR) * kb;
            if buf.len() < need {
                buf.resize(need, Line([0.0; NR]));
            }
            // Pixel blocks outermost, so the block's outputs (all rows x NC) stay in L2 across
            // the K blocks that add into them.
            for j0 in (0..n).step_by(NC) {
                let nc = NC.min(n - j0);
                let mut k0 = 0;
                while k0 < k {
                    let kc = kb.min(k - k0);
                    let add = accumulate || k0 > 0;
                    pack(buf, rhs, (k0, kc), (j0, nc))
                        .ok_or_else(|| err("right-hand side too short".into()))?;
                    for q0 in (p0..p1).step_by(MC) {
                        for jr in 0..nc.div_ceil(NR) {
                            let cols = NR.min(nc - jr * NR);
                            let b = &buf[jr * kc..(jr + 1) * kc];
                            for p in q0..p1.min(q0 + MC) {
                                let r0 = (p - p0) * MR;
                                let tr = MR.min(rows - r0);
                                let at_w = (k0 * panels + p * kc) * MR;
                                let wa = &a[at_w..at_w + kc * MR];
                                let at = r0 * dst_rs + j0 + jr * NR;
                                // The tile writes `dst[at + r * dst_rs + c]`, r < tr, c < cols.
                                let last = at + (tr - 1) * dst_rs + cols;
                                if last > dst.len() {
                                    return Err(err(format!(
                                        "output ({} floats, row stride {dst_rs}) too short for \
                                         {rows}x{n}",
                                        dst.len()
                                    )));
                                }
                                let tile = if cols > NR / 2 { tile::<2> } else { tile::<1> };
                                // SAFETY: AVX2 and FMA were detected above; `wa` holds `kc * 6`
                                // floats and `b` `kc` lines, the lengths the tile reads; every
                                // element it writes lies below `last`, checked against `dst`.
                                unsafe {
                                    let c = dst.as_mut_ptr().add(at);
                                    tile(wa.as_ptr(), b.as_ptr(), kc, c, dst_rs, tr, cols, add);
                                }
                            }
                        }
                    }
                    k0 += kc;
                }
            }
            Ok(())
        })
    }

    /// One register tile: 6 output channels x `8 * V` pixels over `k` steps, the first `rows`
    /// rows and `cols` columns written (added when `accumulate`) at `c`, rows `c_rs` apart.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `a` must hold `6 * k` floats, `b` `k` lines, and `c` be
    /// writable at `r * c_rs + j` for `r < rows <= 6`, `j < cols <= 8 * V`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const V: usize>(
        a: *const f32,
        b: *const Line,
        k: usize,
        c: *mut f32,
        c_rs: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm256_setzero_ps(); V]; MR];
        // SAFETY: the caller's contract (above) bounds every pointer offset in this block; lines
        // are 64-byte aligned, so the aligned loads hold.
        unsafe {
            for kk in 0..k {
                let bl = b.add(kk).cast::<f32>();
                let mut bv = [_mm256_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm256_load_ps(bl.add(8 * v));
                }
                let ak = a.add(kk * MR);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ak.add(r));
                    for (x, &bx) in acc.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(av, bx, *x);
                    }
                }
            }
            if cols == 8 * V {
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    let row = c.add(r * c_rs);
                    for (v, &x) in acc.iter().enumerate() {
                        let p = row.add(8 * v);
                        let y = if accumulate {
                            _mm256_add_ps(_mm256_loadu_ps(p), x)
                        } else {
                            x
                        };
                        _mm256_storeu_ps(p, y);
                    }
                }
            } else {
                let mut t = [0f32; NR];
                for (r, acc) in acc.iter().enumerate().take(rows) {
                    for (v, &x) in acc.iter().enumerate() {
                        _mm256_storeu_ps(t.as_mut_ptr().add(8 * v), x);
                    }
                    let row = c.add(r * c_rs);
                    for (j, &v) in t.iter().enumerate().take(cols) {
                        if accumulate {
                            *row.add(j) += v;
                        } else {
                            *row.add(j) = v;
                        }
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const V: usize>(
        _: *const f32,
        _: *const Line,
        _: usize,
        _: *mut f32,
        _: usize,
        _: usize,
        _: usize,
        _: bool,
    ) {
    }
}
