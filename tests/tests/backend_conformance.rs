//! Backend conformance: every ONNX node case that `tests/conformance/node_manifest.txt` marks
//! `pass` and every ONNX Runtime model fixture under `tests/fixtures/models` runs on
//! [`Backend::Cpu`] and on [`Backend::Gpu`] through an optimising [`Session`]. Node cases are compared with the reference interpreter,
//! fixtures with ONNX Runtime's outputs (batches 1 and 3); each output must be within relative
//! L2 1e-4 and have no NaN or infinity where the reference has none. The rule is the lead's:
//! every case that passes on the interpreter passes on each backend, so a case a backend
//! refuses (a typed `Unsupported` error) fails the test too, listed apart from wrong numbers.
//!
//! Without a GPU adapter the GPU test prints a notice and passes, unless `EXCITE_REQUIRE_GPU=1`.
//! On Mesa's lavapipe the whole file takes seconds: the cases are tiny.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use excite_ir::{Graph, Tensor};
use excite_onnx::ImportOptions;
use excite_runtime::cpu::CpuError;
use excite_runtime::gpu::GpuError;
use excite_runtime::{Backend, RuntimeError, Session, SessionOptions};
use excite_tests::compare::{MODEL_REL_L2, rel_l2};
use excite_tests::data::{ModelInfo, read_npy, read_tensor_pb};
use excite_tests::manifest::{Expected, Manifest};
use excite_tests::node::list_cases;
use excite_tests::tests_dir;
use excite_wgsl::WgslError;

/// Why one case did not pass on the backend.
enum Problem {
    /// No adapter here: the whole test is skipped.
    NoAdapter,
    /// The GPU backend refused the graph with a typed error.
    Refused(String),
    /// Anything else: a wrong number, an unwritten element, a runtime error.
    Fail(String),
}

fn session(g: Graph, backend: Backend) -> Result<Session, Problem> {
    let opts = SessionOptions {
        backend,
        optimize: true,
        threads: 2,
        ..SessionOptions::default()
    };
    Session::with_options(g, &opts).map_err(|e| Problem::Fail(format!("session: {e}")))
}

fn run_on(s: &Session, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, Problem> {
    s.run(inputs).map_err(|e| match e {
        RuntimeError::Gpu(GpuError::NoAdapter) => Problem::NoAdapter,
        RuntimeError::Gpu(GpuError::Compile(w @ WgslError::Unsupported { .. })) => {
            Problem::Refused(w.to_string())
        }
        RuntimeError::Cpu(c @ CpuError::Unsupported { .. }) => Problem::Refused(c.to_string()),
        e => Problem::Fail(format!("{} run: {e}", s.backend())),
    })
}

/// Compares one output: shape, non-finite elements where the reference is finite, rel L2.
fn compare(name: &str, got: &Tensor, want: &Tensor) -> Result<f64, Problem> {
    let err = rel_l2(got, want).map_err(|e| Problem::Fail(format!("output `{name}`: {e}")))?;
    let unwritten = got
        .data()
        .iter()
        .zip(want.data())
        .filter(|(g, w)| w.is_finite() && !g.is_finite())
        .count();
    if unwritten > 0 {
        return Err(Problem::Fail(format!(
            "output `{name}`: {unwritten} non-finite elements where the reference is finite"
        )));
    }
    if err > MODEL_REL_L2 || err.is_nan() {
        return Err(Problem::Fail(format!(
            "output `{name}`: relative L2 {err:.3e} > {MODEL_REL_L2:e}"
        )));
    }
    Ok(err)
}

/// One node case: import, interpret, run on the GPU, compare. Returns the outputs compared.
fn node_case(dir: &Path, backend: Backend) -> Result<usize, Problem> {
    let fail = |m: String| Problem::Fail(m);
    let bytes = std::fs::read(dir.join("model.onnx")).map_err(|e| fail(format!("{e}")))?;
    let info = ModelInfo::decode(&bytes).map_err(|e| fail(format!("model.onnx: {e}")))?;
    let g = excite_onnx::import(&bytes, &ImportOptions::default())
        .map_err(|e| fail(format!("import: {e}")))?;
    let data = dir.join("test_data_set_0");
    let mut inputs = HashMap::new();
    for (k, io) in info.inputs.iter().enumerate() {
        let (_, t) =
            read_tensor_pb(&data.join(format!("input_{k}.pb"))).map_err(|e| fail(e.to_string()))?;
        inputs.insert(io.name.clone(), t);
    }
    let want = excite_ir::interp::run(&g, &inputs).map_err(|e| fail(format!("interp: {e}")))?;
    let s = session(g, backend)?;
    let got = run_on(&s, &inputs)?;
    if got.len() != want.len() {
        return Err(fail(format!(
            "{} outputs, expected {}",
            got.len(),
            want.len()
        )));
    }
    for (name, w) in &want {
        let Some((_, t)) = got.iter().find(|(n, _)| n == name) else {
            return Err(fail(format!("no output named `{name}`")));
        };
        compare(name, t, w)?;
    }
    Ok(want.len())
}

/// One fixture model at batches 1 and 3 against ONNX Runtime. Returns the outputs compared.
fn model_case(dir: &Path, backend: Backend) -> Result<usize, Problem> {
    let fail = |m: String| Problem::Fail(m);
    let bytes = std::fs::read(dir.join("model.onnx")).map_err(|e| fail(format!("{e}")))?;
    let g = excite_onnx::import(&bytes, &ImportOptions::default())
        .map_err(|e| fail(format!("import: {e}")))?;
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&v| g.value(v).name.clone())
        .collect();
    let s = session(g, backend)?;
    let mut compared = 0;
    for batch in [1usize, 3] {
        let mut inputs = HashMap::new();
        for name in &names {
            let t = read_npy(&dir.join(format!("input.{name}.b{batch}.npy")))
                .map_err(|e| fail(e.to_string()))?;
            inputs.insert(name.clone(), t);
        }
        let got = run_on(&s, &inputs)?;
        let suffix = format!(".b{batch}.npy");
        let expected = std::fs::read_dir(dir)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("output.") && n.ends_with(&suffix))
            .count();
        if expected != got.len() {
            return Err(fail(format!(
                "batch {batch}: {} outputs, ONNX Runtime has {expected}",
                got.len()
            )));
        }
        for (name, t) in &got {
            let want = read_npy(&dir.join(format!("output.{name}{suffix}")))
                .map_err(|e| fail(format!("batch {batch}: {e}")))?;
            let err = compare(name, t, &want).map_err(|p| match p {
                Problem::Fail(m) => Problem::Fail(format!("batch {batch}: {m}")),
                p => p,
            })?;
            println!(
                "  {:<22} batch {batch}  {name:<18} rel L2 {err:.2e}",
                dir_name(dir)
            );
            compared += 1;
        }
    }
    Ok(compared)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Prints the notice and returns true when the test should stop for want of an adapter.
fn skip_without_adapter() -> bool {
    assert!(
        std::env::var("EXCITE_REQUIRE_GPU").as_deref() != Ok("1"),
        "EXCITE_REQUIRE_GPU=1 but no GPU adapter was found"
    );
    eprintln!("notice: no GPU adapter; skipping (set EXCITE_REQUIRE_GPU=1 to fail instead)");
    true
}

#[test]
fn cpu_matches_interpreter_and_onnx_runtime() {
    conformance(Backend::Cpu);
}

#[test]
fn gpu_matches_interpreter_and_onnx_runtime() {
    conformance(Backend::Gpu);
}

fn conformance(backend: Backend) {
    let manifest_path = tests_dir().join("conformance").join("node_manifest.txt");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest_path.display()));
    let manifest = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let root = tests_dir().join("data").join("node");
    let dirs = list_cases(&root).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (run `python3 scripts/gen_node_tests.py`)",
            root.display()
        )
    });
    let passing: Vec<_> = dirs
        .iter()
        .filter(|d| manifest.cases.get(&dir_name(d)) == Some(&Expected::Pass))
        .collect();
    let listed = manifest
        .cases
        .values()
        .filter(|e| **e == Expected::Pass)
        .count();
    assert_eq!(
        passing.len(),
        listed,
        "every `pass` case of the manifest is on disk (rerun scripts/gen_node_tests.py)"
    );

    // op -> [cases, passed, refused, failed]
    let mut per_op: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let (mut refused, mut failed) = (Vec::new(), Vec::new());
    let mut outputs = 0;
    for dir in &passing {
        let ops: Vec<String> = std::fs::read(dir.join("model.onnx"))
            .ok()
            .and_then(|b| ModelInfo::decode(&b).ok())
            .map(|i| i.ops.into_iter().collect())
            .unwrap_or_default();
        let col = match node_case(dir, backend) {
            Ok(n) => {
                outputs += n;
                1
            }
            Err(Problem::NoAdapter) => {
                if skip_without_adapter() {
                    return;
                }
                continue;
            }
            Err(Problem::Refused(m)) => {
                refused.push(format!("{} [{}]: {m}", dir_name(dir), ops.join(",")));
                2
            }
            Err(Problem::Fail(m)) => {
                failed.push(format!("{} [{}]: {m}", dir_name(dir), ops.join(",")));
                3
            }
        };
        for op in ops {
            let row = per_op.entry(op).or_default();
            row[0] += 1;
            row[col] += 1;
        }
    }
    println!(
        "{:<20} {:>5} {:>6} {:>7} {:>6}",
        "op", "cases", "passed", "refused", "failed"
    );
    for (op, [n, p, r, f]) in &per_op {
        println!("{op:<20} {n:>5} {p:>6} {r:>7} {f:>6}");
    }
    println!(
        "{backend}: {} node cases, {outputs} output tensors compared with the interpreter",
        passing.len()
    );

    let models_root = tests_dir().join("fixtures").join("models");
    let mut models: Vec<_> = std::fs::read_dir(&models_root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", models_root.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    models.sort();
    let (mut models_ok, mut model_outputs) = (0, 0);
    for dir in &models {
        match model_case(dir, backend) {
            Ok(n) => {
                models_ok += 1;
                model_outputs += n;
            }
            Err(Problem::NoAdapter) => {
                if skip_without_adapter() {
                    return;
                }
            }
            Err(Problem::Refused(m)) => refused.push(format!("model {}: {m}", dir_name(dir))),
            Err(Problem::Fail(m)) => failed.push(format!("model {}: {m}", dir_name(dir))),
        }
    }
    println!(
        "{models_ok} of {} fixture models match ONNX Runtime on {backend}; {model_outputs} outputs",
        models.len()
    );

    assert!(
        refused.is_empty() && failed.is_empty(),
        "cases that pass on the interpreter but not on {backend}\nrefused by the backend:\n  {}\nwrong or failed:\n  {}",
        refused.join("\n  "),
        failed.join("\n  ")
    );
    // Proves the comparisons happened: the manifest's pass cases are well over a hundred, and
    // the six fixtures each give at least one output per batch.
    assert!(passing.len() >= 100 && outputs >= passing.len());
    assert!(models_ok >= 6 && model_outputs >= 2 * models_ok);
}
