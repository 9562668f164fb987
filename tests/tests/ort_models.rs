//! Whole-model agreement with ONNX Runtime: every fixture under `tests/fixtures/models` (small
//! SE networks written by `scripts/gen_model_fixtures.py`, with ONNX Runtime's outputs) is
//! imported once and run by the reference interpreter at batch 1 and batch 3; each output must
//! be within relative L2 error 1e-4 of ONNX Runtime's.

use std::collections::HashMap;
use std::path::Path;

use excite_ir::{Dim, Graph};
use excite_onnx::ImportOptions;
use excite_tests::compare::{MODEL_REL_L2, rel_l2};
use excite_tests::data::read_npy;
use excite_tests::tests_dir;

const BATCHES: [usize; 2] = [1, 3];

/// Checks one model at every batch; returns the number of output tensors compared.
fn check_model(dir: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(dir.join("model.onnx")).map_err(|e| format!("model.onnx: {e}"))?;
    let g = excite_onnx::import(&bytes, &ImportOptions::default())
        .map_err(|e| format!("import: {e}"))?;
    for &v in g.inputs() {
        let first = g.ty_of(v).and_then(|t| t.shape.dims().first().copied());
        if first != Some(Dim::Batch) {
            let name = &g.value(v).name;
            return Err(format!("input `{name}` should have the symbolic batch dim"));
        }
    }
    let mut compared = 0;
    for batch in BATCHES {
        compared += check_batch(dir, &g, batch)?;
    }
    Ok(compared)
}

fn check_batch(dir: &Path, g: &Graph, batch: usize) -> Result<usize, String> {
    let mut inputs = HashMap::new();
    for &v in g.inputs() {
        let name = &g.value(v).name;
        let t =
            read_npy(&dir.join(format!("input.{name}.b{batch}.npy"))).map_err(|e| e.to_string())?;
        inputs.insert(name.clone(), t);
    }
    let outputs = excite_ir::interp::run(g, &inputs)
        .map_err(|e| format!("batch {batch}: interpreter: {e}"))?;
    let suffix = format!(".b{batch}.npy");
    let expected_files = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("output.") && n.ends_with(&suffix))
        .count();
    if expected_files != outputs.len() {
        return Err(format!(
            "batch {batch}: {} outputs, but ONNX Runtime produced {expected_files}",
            outputs.len()
        ));
    }
    for (name, actual) in &outputs {
        let expected =
            read_npy(&dir.join(format!("output.{name}{suffix}"))).map_err(|e| e.to_string())?;
        let err = rel_l2(actual, &expected).map_err(|e| format!("batch {batch}: `{name}`: {e}"))?;
        println!(
            "  {:<22} batch {batch}  {name:<18} rel L2 {err:.2e}",
            dir_name(dir)
        );
        if err > MODEL_REL_L2 {
            return Err(format!(
                "batch {batch}: output `{name}` has relative L2 error {err:.3e} > {MODEL_REL_L2:e}"
            ));
        }
    }
    Ok(outputs.len())
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn models_match_onnx_runtime() {
    let root = tests_dir().join("fixtures").join("models");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    let (mut models, mut outputs, mut failures) = (0, 0, Vec::new());
    for dir in &dirs {
        match check_model(dir) {
            Ok(n) => {
                models += 1;
                outputs += n;
            }
            Err(e) => failures.push(format!("{}: {e}", dir_name(dir))),
        }
    }
    println!(
        "{models} of {} models match ONNX Runtime; {outputs} output tensors compared",
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "mismatches:\n  {}",
        failures.join("\n  ")
    );
    // The six fixtures of scripts/gen_model_fixtures.py, each with at least one output per batch.
    assert!(
        models >= 6,
        "expected at least 6 fixture models, found {models}"
    );
    assert!(outputs >= models * BATCHES.len());
}
