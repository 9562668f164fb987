//! Shared helpers of the GPU tests: adapter-or-skip, a tiny graph builder with random tensors,
//! and the differential check against the reference interpreter (outputs poisoned first).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use excite_ir::{Dim, Graph, Op, Shape, Tensor, TensorType, ValueId, interp, verify};
use excite_runtime::gpu::{GpuError, GpuSession};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Compiles `g` for `batch` on the GPU; `None` (after a notice) when there is no adapter,
/// unless `EXCITE_REQUIRE_GPU=1`, where a missing adapter fails the test.
pub fn gpu_or_skip(g: &Graph, batch: usize) -> Option<GpuSession> {
    gpu_or_skip_tuned(g, batch, |_| {})
}

/// [`gpu_or_skip`] with the compiler's knobs changed by `tune` ([`GpuSession::new_tuned`]).
pub fn gpu_or_skip_tuned(g: &Graph, batch: usize, tune: Tune) -> Option<GpuSession> {
    match GpuSession::new_tuned(g, batch, tune) {
        Ok(s) => Some(s),
        Err(GpuError::NoAdapter) if std::env::var("EXCITE_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!(
                "notice: no GPU adapter; skipping (set EXCITE_REQUIRE_GPU=1 to fail instead)"
            );
            None
        }
        Err(e) => panic!("GPU session for `{}`: {e}", g.name),
    }
}

/// A change to the compiler's knobs for one test ([`GpuSession::new_tuned`]).
pub type Tune = fn(&mut excite_wgsl::Limits);

/// Relative L2 error of `got` against `want`.
pub fn rel_l2(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&a, &b) in got.iter().zip(want) {
        num += (f64::from(a) - f64::from(b)).powi(2);
        den += f64::from(b).powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

/// Runs `g` on the interpreter and the GPU (scratch poisoned with NaN first) and compares
/// every output within relative L2 `tol`. Returns false when the GPU test was skipped.
pub fn check(g: &Graph, inputs: &HashMap<String, Tensor>, batch: usize, tol: f64) -> bool {
    check_tuned(g, inputs, batch, tol, |_| {})
}

/// [`check`] with the compiler's knobs changed by `tune`.
pub fn check_tuned(
    g: &Graph,
    inputs: &HashMap<String, Tensor>,
    batch: usize,
    tol: f64,
    tune: Tune,
) -> bool {
    let want = interp::run(g, inputs).unwrap_or_else(|e| panic!("interp on `{}`: {e}", g.name));
    let Some(s) = gpu_or_skip_tuned(g, batch, tune) else {
        return false;
    };
    s.poison();
    let got = s
        .run(inputs)
        .unwrap_or_else(|e| panic!("GPU run of `{}`: {e}", g.name));
    assert_eq!(got.len(), want.len());
    for ((gn, gt), (wn, wt)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_eq!(gt.shape(), wt.shape(), "output `{gn}` of `{}`", g.name);
        let bad = gt.data().iter().filter(|v| !v.is_finite()).count();
        assert_eq!(
            bad, 0,
            "output `{gn}` of `{}` has {bad} unwritten/non-finite elements",
            g.name
        );
        let err = rel_l2(gt.data(), wt.data());
        assert!(
            err <= tol,
            "output `{gn}` of `{}`: relative L2 {err:e} > {tol:e}",
            g.name
        );
    }
    true
}

/// Builds one-node-at-a-time graphs whose inputs have a symbolic batch.
pub struct Builder {
    pub g: Graph,
    pub rng: ChaCha8Rng,
    pub inputs: HashMap<String, Tensor>,
    pub batch: usize,
    /// Knob changes for the compile the kernel assertions check and for the GPU session.
    pub tune: Tune,
    count: usize,
}

impl Builder {
    pub fn new(name: &str, seed: u64, batch: usize) -> Builder {
        Builder {
            g: Graph::new(name),
            rng: ChaCha8Rng::seed_from_u64(seed),
            inputs: HashMap::new(),
            batch,
            tune: |_| {},
            count: 0,
        }
    }

    pub fn tensor(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        let data = (0..n).map(|_| self.rng.random_range(lo..hi)).collect();
        Tensor::new(shape.to_vec(), data).expect("shape and data agree")
    }

    /// An input `[N, rest...]` fed with uniform values in [-1, 1].
    pub fn input(&mut self, name: &str, rest: &[usize]) -> ValueId {
        let dims = std::iter::once(Dim::Batch).chain(rest.iter().map(|&d| Dim::Fixed(d)));
        let v = self
            .g
            .add_input(name, TensorType::f32(Shape(dims.collect())))
            .expect("fresh input");
        let mut full = vec![self.batch];
        full.extend_from_slice(rest);
        let t = self.tensor(&full, -1.0, 1.0);
        self.inputs.insert(name.to_string(), t);
        v
    }

    pub fn weight_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> ValueId {
        self.count += 1;
        let t = self.tensor(shape, lo, hi);
        self.g
            .add_weight(&format!("w{}", self.count), Arc::new(t))
            .expect("fresh weight")
    }

    pub fn weight(&mut self, shape: &[usize]) -> ValueId {
        self.weight_in(shape, -1.0, 1.0)
    }

    pub fn node(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        self.count += 1;
        let name = format!("n{}", self.count);
        let out = format!("v{}", self.count);
        self.g.add_node(&name, op, ins, &[&out]).expect("node");
        self.g.find_value(&out).expect("just defined")
    }

    /// [`Builder::check`], after asserting that the program for the default limits uses
    /// every kernel in `kernels` and none named `!kernel` (so the check covers the path it is
    /// meant to).
    pub fn check_kernels(self, out: ValueId, tol: f64, kernels: &[&str]) -> bool {
        self.check_program(out, tol, kernels, 0, false)
    }

    /// [`Builder::check_kernels`], also asserting that `folded` SE blocks were folded into
    /// the conv feeding them and, if `wide`, that every conv runs on 128-row tiles.
    pub fn check_program(
        mut self,
        out: ValueId,
        tol: f64,
        kernels: &[&str],
        folded: usize,
        wide: bool,
    ) -> bool {
        self.g.add_output(out).expect("output");
        if let Err(e) = verify::verify(&mut self.g) {
            panic!("test graph `{}` does not verify: {e}", self.g.name);
        }
        let mut limits = excite_wgsl::Limits::default();
        (self.tune)(&mut limits);
        let p = excite_wgsl::compile(&self.g, self.batch, &limits)
            .unwrap_or_else(|e| panic!("compiling `{}`: {e}", self.g.name));
        for k in kernels {
            let (want, name) = match k.strip_prefix('!') {
                Some(name) => (false, name),
                None => (true, *k),
            };
            assert_eq!(
                p.modules.iter().any(|m| m.name == name),
                want,
                "`{}` and kernel `{name}`",
                self.g.name
            );
        }
        assert_eq!(
            p.folded_se.len(),
            folded,
            "`{}`: folded SE blocks",
            self.g.name
        );
        if wide {
            let convs = p.modules.iter().filter(|m| m.name.starts_with("conv"));
            assert!(
                convs.clone().count() > 0
                    && convs.clone().all(|m| m.source.contains("MQ: u32 = 2u")),
                "`{}`: convs on 128-row tiles",
                self.g.name
            );
        }
        check_tuned(&self.g, &self.inputs, self.batch, tol, self.tune)
    }

    /// Marks `out` as the output, verifies, and runs the differential check.
    pub fn check(mut self, out: ValueId, tol: f64) -> bool {
        self.g.add_output(out).expect("output");
        if let Err(e) = verify::verify(&mut self.g) {
            panic!("test graph `{}` does not verify: {e}", self.g.name);
        }
        check_tuned(&self.g, &self.inputs, self.batch, tol, self.tune)
    }
}
