//! Runs every filetest under `tests/filetests/<command>/*.seir` (see `excite_tests::filetest`
//! and docs/testing.md). A file's header must name the command of its directory. With
//! `EXCITE_BLESS=1` expected sections are rewritten; numeric and `se_blocks` checks still fail.

use std::path::{Path, PathBuf};

use excite_tests::filetest::{FileTestError, blessed, check_text, run_fuse, split};
use excite_tests::tests_dir;

fn seir_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seir"))
        .collect();
    files.sort();
    files
}

/// Checks one file; returns its table row.
fn check_file(path: &Path, bless: bool) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let test = split(&text).map_err(|e| e.to_string())?;
    let dir = path.parent().and_then(Path::file_name);
    if dir.is_none_or(|d| d.to_string_lossy() != test.command) {
        return Err(format!("`test {}` in the wrong directory", test.command));
    }
    let run = run_fuse(&test).map_err(|e| e.to_string())?;
    match check_text(&test, &run.actual) {
        Ok(()) => {}
        Err(e @ (FileTestError::Mismatch(_) | FileTestError::NoExpected)) if bless => {
            std::fs::write(path, blessed(&test, &run.actual)).map_err(|e| e.to_string())?;
            println!("blessed {}: {e}", path.display());
        }
        Err(e) => return Err(e.to_string()),
    }
    Ok(format!(
        "{:>9} {:>5} -> {:<5} {:>8}",
        run.se_blocks, run.nodes_before, run.nodes_after, run.compared
    ))
}

#[test]
fn filetests() {
    let bless = std::env::var_os("EXCITE_BLESS").is_some_and(|v| v == "1");
    let root = tests_dir().join("filetests");
    let mut checked = 0;
    let mut failures = Vec::new();
    println!(
        "{:<40} {:>9} {:>14} {:>8}",
        "file", "se_blocks", "nodes", "compared"
    );
    for command in ["fuse"] {
        for path in seir_files(&root.join(command)) {
            let name = format!(
                "{command}/{}",
                path.file_name().unwrap_or_default().display()
            );
            match check_file(&path, bless) {
                Ok(row) => println!("{name:<40} {row}"),
                Err(e) => {
                    println!("{name:<40} FAILED");
                    failures.push(format!("{name}: {e}"));
                }
            }
            checked += 1;
        }
    }
    println!("{checked} filetests checked, {} failed", failures.len());
    assert!(checked > 0, "no filetests found under {}", root.display());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
