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
