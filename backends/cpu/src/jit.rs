//! Every `unsafe` of the crate, behind safe wrappers that check buffer lengths first:
//! compiling CLIF to machine code with cranelift-jit, calling the generated kernels, and calling
//! the `gemm` crate's AVX-512 micro-kernels.
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
