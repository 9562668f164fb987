//! Tidy checks over the workspace's manifests (rust-analyzer's `tidy.rs` habit): crate
//! dependencies run one way, ir ← passes ← backends ← runtime ← cli.

use std::path::Path;

/// Which excite crates each crate may depend on (normal dependencies only).
const ALLOWED: &[(&str, &[&str])] = &[
    ("ir", &[]),
    ("onnx", &["excite-ir"]),
    ("passes", &["excite-ir"]),
    ("zoo", &["excite-ir"]),
    ("backends/cpu", &["excite-ir", "excite-passes"]),
    ("backends/wgsl", &["excite-ir", "excite-passes"]),
    (
        "runtime",
        &["excite-ir", "excite-passes", "excite-cpu", "excite-wgsl"],
    ),
];

/// Names of `excite-*` crates listed under `[dependencies]` of a manifest.
fn excite_deps(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps
            && let Some(name) = line.split(['=', '.', ' ']).next()
            && name.starts_with("excite")
        {
            deps.push(name.to_string());
        }
    }
    deps
}

#[test]
fn dependencies_run_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for (dir, allowed) in ALLOWED {
        let path = root.join(dir).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for dep in excite_deps(&manifest) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{dir} depends on {dep}, which the layering forbids (allowed: {allowed:?})"
            );
            checked += 1;
        }
    }
    // onnx, passes, zoo, both backends and the runtime each depend on ir at least.
    assert!(
        checked >= 6,
        "only {checked} dependencies found: is the parser broken?"
    );
}

#[test]
fn ir_has_no_io_or_device_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(root.join("ir/Cargo.toml")).expect("ir/Cargo.toml");
    for banned in ["wgpu", "cranelift", "egg", "naga", "prost"] {
        assert!(!manifest.contains(banned), "ir must not depend on {banned}");
    }
}

/// All `.rs` files under `dir`, recursively, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && name != ".git" && name != "data" {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn unsafe_lives_only_in_the_cpu_jit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "only {} Rust files found", files.len());
    let allowed = root.join("backends/cpu/src/jit.rs");
    for f in &files {
        if *f == allowed || f.ends_with("tests/tests/tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !(code.contains("unsafe {")
                    || code.contains("unsafe fn")
                    || code.contains("unsafe impl")),
                "{}:{}: `unsafe` outside backends/cpu/src/jit.rs",
                f.display(),
                i + 1
            );
        }
    }
}
