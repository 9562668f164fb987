//! The node-conformance runner: one case directory (`model.onnx` + `test_data_set_0/`) in, one
//! [`Outcome`] out; all cases run on a few threads; a per-op table and the manifest check.
//!
//! A case passes when the importer accepts the model, the reference interpreter runs it and
//! every output has the reference's exact shape and is within [`NODE_TOLERANCE`]. It is
//! unsupported when the importer refuses it with a typed error. Anything else (an interpreter
//! error, a wrong number, a panic, an f32-only importer accepting non-f32 data) is a failure.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use excite_onnx::ImportOptions;

use crate::compare::{NODE_TOLERANCE, check_close};
use crate::data::{ModelInfo, read_tensor_pb};
use crate::manifest::{Expected, Manifest};

/// How one case went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every output matched; `outputs` counts the tensors compared.
    Pass {
        outputs: usize,
    },
    Unsupported(String),
    Fail(String),
}

/// One case's name, what it exercises and how it went.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    /// Op types of the model (empty if the model did not decode).
    pub ops: Vec<String>,
    /// Every graph input and output is an f32 tensor.
    pub all_f32: bool,
    pub outcome: Outcome,
}

/// The case directories under `root`, sorted by name.
pub fn list_cases(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.join("model.onnx").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Runs one case; never panics (a panic inside the importer or interpreter is a failure).
pub fn run_case(dir: &Path) -> CaseResult {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = std::fs::read(dir.join("model.onnx"))
        .map_err(|e| format!("model.onnx: {e}"))
        .and_then(|bytes| {
            let info = ModelInfo::decode(&bytes).map_err(|e| format!("model.onnx: {e}"))?;
            Ok((bytes, info))
        });
    let (bytes, info) = match info {
        Ok(x) => x,
        Err(msg) => {
            return CaseResult {
                name,
                ops: Vec::new(),
                all_f32: false,
                outcome: Outcome::Fail(msg),
            };
        }
    };
    let outcome =
        catch_unwind(AssertUnwindSafe(|| run_model(dir, &bytes, &info))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Outcome::Fail(format!("panicked: {msg}"))
        });
    CaseResult {
        name,
        ops: info.ops.iter().cloned().collect(),
        all_f32: info.all_f32(),
        outcome,
    }
}

fn run_model(dir: &Path, bytes: &[u8], info: &ModelInfo) -> Outcome {
    let graph = match excite_onnx::import(bytes, &ImportOptions::default()) {
        Ok(g) => g,
        Err(e) => return Outcome::Unsupported(e.to_string()),
    };
    let data = dir.join("test_data_set_0");
    let mut inputs = HashMap::new();
    for (k, io) in info.inputs.iter().enumerate() {
        match read_tensor_pb(&data.join(format!("input_{k}.pb"))) {
            Ok((_, t)) => inputs.insert(io.name.clone(), t),
            Err(e) => return Outcome::Fail(format!("the importer accepted the model, but {e}")),
        };
    }
    let results = match excite_ir::interp::run(&graph, &inputs) {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(format!("interpreter: {e}")),
    };
    if results.len() != info.outputs.len() {
        let msg = format!("{} outputs, expected {}", results.len(), info.outputs.len());
        return Outcome::Fail(msg);
    }
    for (k, io) in info.outputs.iter().enumerate() {
        let expected = match read_tensor_pb(&data.join(format!("output_{k}.pb"))) {
            Ok((_, t)) => t,
            Err(e) => return Outcome::Fail(format!("the importer accepted the model, but {e}")),
        };
        let Some((_, actual)) = results.iter().find(|(n, _)| *n == io.name) else {
            return Outcome::Fail(format!("no output named `{}`", io.name));
        };
        if let Err(msg) = check_close(actual, &expected, NODE_TOLERANCE) {
            return Outcome::Fail(format!("output `{}`: {msg}", io.name));
        }
    }
    Outcome::Pass {
        outputs: info.outputs.len(),
    }
}

/// Runs every case on up to `threads` threads; results come back in input order.
pub fn run_all(dirs: &[PathBuf], threads: usize) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; dirs.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(dir) = dirs.get(i) else { break };
                    let r = run_case(dir);
                    // A poisoned lock only means another worker panicked while holding it,
                    // which run_case rules out; keep going with the data either way.
                    slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    slots.into_iter().flatten().collect()
}

/// A table of cases / passed / unsupported / failed per op type (a case counts once for each
/// op it uses), then the totals.
pub fn op_table(results: &[CaseResult]) -> String {
    let mut per_op: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut total = [0usize; 4];
    for r in results {
        let col = match r.outcome {
            Outcome::Pass { .. } => 1,
            Outcome::Unsupported(_) => 2,
            Outcome::Fail(_) => 3,
        };
        for op in &r.ops {
            let row = per_op.entry(op).or_default();
            row[0] += 1;
            row[col] += 1;
        }
        total[0] += 1;
        total[col] += 1;
    }
    let mut out = format!(
        "{:<20} {:>5} {:>6} {:>11} {:>6}\n",
        "op", "cases", "passed", "unsupported", "failed"
    );
    let rows = per_op.into_iter().chain([("TOTAL (cases)", total)]);
    for (op, [n, p, u, f]) in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{op:<20} {n:>5} {p:>6} {u:>11} {f:>6}");
    }
    out
}

/// Every way the results disagree with the manifest, one line each: an outcome that differs,
/// a listed case missing on disk, a case on disk the manifest does not list.
pub fn check_manifest(manifest: &Manifest, results: &[CaseResult]) -> Vec<String> {
    let mut problems = Vec::new();
    for r in results {
        let expected = manifest.cases.get(&r.name);
        let problem = match (expected, &r.outcome) {
            (None, o) => Some(format!("not in the manifest (outcome: {})", describe(o))),
            (Some(Expected::Pass), Outcome::Pass { .. }) => None,
            (Some(Expected::Unsupported(_)), Outcome::Unsupported(_)) => None,
            (Some(Expected::Pass), o) => Some(format!("expected pass, got {}", describe(o))),
            (Some(Expected::Unsupported(_)), o) => {
                Some(format!("expected unsupported, got {}", describe(o)))
            }
        };
        if let Some(p) = problem {
            problems.push(format!("{}: {p}", r.name));
        }
    }
    for name in manifest.cases.keys() {
        if !results.iter().any(|r| &r.name == name) {
            problems.push(format!(
                "{name}: listed in the manifest but missing on disk"
            ));
        }
    }
    problems
}

/// The manifest that records these results. A failing case is recorded as `pass`: failures
/// are bugs to fix, never an expected outcome.
pub fn blessed(results: &[CaseResult]) -> Manifest {
    let cases = results
        .iter()
        .map(|r| {
            let e = match &r.outcome {
                Outcome::Unsupported(reason) => Expected::Unsupported(reason.clone()),
                Outcome::Pass { .. } | Outcome::Fail(_) => Expected::Pass,
            };
            (r.name.clone(), e)
        })
        .collect();
    Manifest { cases }
}

pub fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Pass { .. } => "pass".into(),
        Outcome::Unsupported(r) => format!("unsupported ({r})"),
        Outcome::Fail(r) => format!("FAIL ({r})"),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn case(name: &str, ops: &[&str], outcome: Outcome) -> CaseResult {
        CaseResult {
            name: name.into(),
            ops: ops.iter().map(|s| s.to_string()).collect(),
            all_f32: true,
            outcome,
        }
    }

    fn results() -> Vec<CaseResult> {
        vec![
            case("a", &["Conv"], Outcome::Pass { outputs: 1 }),
            case(
                "b",
                &["HardSigmoid", "Mul"],
                Outcome::Fail("off by one".into()),
            ),
            case("c", &["Conv"], Outcome::Unsupported("1-D".into())),
            case("new", &["Mul"], Outcome::Pass { outputs: 2 }),
        ]
    }

    #[test]
    fn manifest_check_reports_every_disagreement() {
        let text = "a pass\nb pass\nc pass\ngone unsupported: int64\n";
        let manifest = Manifest::parse(text).unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            b: expected pass, got FAIL (off by one)
            c: expected pass, got unsupported (1-D)
            new: not in the manifest (outcome: pass)
            gone: listed in the manifest but missing on disk"#]]
        .assert_eq(&check_manifest(&manifest, &results()).join("\n"));
    }

    #[test]
    fn bless_records_failures_as_pass_and_table_counts_per_op() {
        let blessed = blessed(&results());
        assert!(
            check_manifest(&blessed, &results()) == ["b: expected pass, got FAIL (off by one)"]
        );
        expect![[r#"
            op                   cases passed unsupported failed
            Conv                     2      1           1      0
            HardSigmoid              1      0           0      1
            Mul                      2      1           0      1
            TOTAL (cases)            4      2           1      1
        "#]]
        .assert_eq(&op_table(&results()));
    }
}
