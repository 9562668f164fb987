//! ONNX node conformance: every case under `tests/data/node` (ONNX's own node tests for the ops
//! excite implements, plus excite's conv/pool cases, written by `scripts/gen_node_tests.py`)
//! is imported, run by the reference interpreter and compared with the reference outputs. Each
//! outcome must match `tests/conformance/node_manifest.txt`; `EXCITE_BLESS=1` rewrites it.

use excite_tests::manifest::Manifest;
use excite_tests::node::{
    Outcome, blessed, check_manifest, describe, list_cases, op_table, run_all,
};
use excite_tests::tests_dir;

#[test]
fn onnx_node_conformance() {
    let root = tests_dir().join("data").join("node");
    assert!(
        root.is_dir(),
        "{} is missing: run `python3 scripts/gen_node_tests.py` first (see docs/testing.md)",
        root.display()
    );
    let dirs = list_cases(&root).unwrap_or_else(|e| panic!("reading {}: {e}", root.display()));
    assert!(
        !dirs.is_empty(),
        "{} holds no cases: rerun `python3 scripts/gen_node_tests.py`",
        root.display()
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results = run_all(&dirs, threads);
    assert_eq!(
        results.len(),
        dirs.len(),
        "every case directory produced a result"
    );

    println!("{}", op_table(&results));
    let outputs: usize = results
        .iter()
        .map(|r| match r.outcome {
            Outcome::Pass { outputs } => outputs,
            _ => 0,
        })
        .sum();
    println!(
        "{} cases, {outputs} output tensors compared within |a-b| <= 1e-4 + 1e-4*|b|",
        results.len()
    );
    let refused_f32: Vec<_> = results
        .iter()
        .filter(|r| r.all_f32 && matches!(r.outcome, Outcome::Unsupported(_)))
        .map(|r| format!("  {}: {}", r.name, describe(&r.outcome)))
        .collect();
    if !refused_f32.is_empty() {
        println!(
            "all-f32 cases the importer refuses (each should be a genuine feature gap):\n{}",
            refused_f32.join("\n")
        );
    }

    let path = tests_dir().join("conformance").join("node_manifest.txt");
    let failures: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .map(|r| format!("  {}: {}", r.name, describe(&r.outcome)))
        .collect();
    if std::env::var_os("EXCITE_BLESS").is_some() {
        let text = blessed(&results).render();
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("blessed {}", path.display());
        assert!(
            failures.is_empty(),
            "failing cases are recorded as `pass`; fix them:\n{}",
            failures.join("\n")
        );
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (bless with EXCITE_BLESS=1)",
            path.display()
        )
    });
    let manifest = Manifest::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let problems = check_manifest(&manifest, &results);
    assert!(
        problems.is_empty(),
        "{} case(s) disagree with {} (rerun with EXCITE_BLESS=1 after checking them):\n  {}",
        problems.len(),
        path.display(),
        problems.join("\n  ")
    );
}
