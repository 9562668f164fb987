//! The node-conformance manifest (`tests/conformance/node_manifest.txt`): one line per case,
//! `<case> pass` or `<case> unsupported: <reason>`, sorted by case name; `#` starts a comment.
//! The runner holds every case to its line; `EXCITE_BLESS=1` rewrites the file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A case's expected outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    Pass,
    /// The importer refuses the model with a typed error; the reason is the error's text,
    /// kept for the reader (only the outcome is compared).
    Unsupported(String),
}

/// Case name -> expected outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub cases: BTreeMap<String, Expected>,
}

/// A manifest line that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("node_manifest.txt:{line}: {msg}")]
pub struct ManifestError {
    pub line: usize,
    pub msg: String,
}

const HEADER: &str = "\
# ONNX node-conformance manifest: the expected outcome of every case under tests/data/node.
# Written by `EXCITE_BLESS=1 cargo test -p excite-tests --test node_conformance`;
# see docs/testing.md. `unsupported` reasons are the importer's error text.
";

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut cases = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |msg: String| ManifestError { line: i + 1, msg };
            let (name, rest) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| err(format!("expected `<case> <outcome>`, got `{line}`")))?;
            let rest = rest.trim();
            let expected = if rest == "pass" {
                Expected::Pass
            } else if let Some(reason) = rest.strip_prefix("unsupported:") {
                Expected::Unsupported(reason.trim().to_string())
            } else {
                return Err(err(format!(
                    "outcome must be `pass` or `unsupported: <reason>`, got `{rest}`"
                )));
            };
            if cases.insert(name.to_string(), expected).is_some() {
                return Err(err(format!("case `{name}` is listed twice")));
            }
        }
        Ok(Manifest { cases })
    }

    pub fn render(&self) -> String {
        let mut out = HEADER.to_string();
        for (name, expected) in &self.cases {
            // Writing to a String cannot fail.
            let _ = match expected {
                Expected::Pass => writeln!(out, "{name} pass"),
                Expected::Unsupported(reason) => {
                    writeln!(out, "{name} unsupported: {}", one_line(reason))
                }
            };
        }
        out
    }
}

/// Collapses whitespace runs (newlines included) so a reason fits on its line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let text = "# comment\n\ntest_b   unsupported:  node `n` (Conv): 1-D\ntest_a pass\n";
        let m = Manifest::parse(text);
        let Ok(mut m) = m else {
            panic!("parse failed: {m:?}");
        };
        let reason = Expected::Unsupported("node `m`:\n  int64\tinput".into());
        m.cases.insert("test_c".into(), reason);
        let rendered = m.render();
        expect![[r#"
            # ONNX node-conformance manifest: the expected outcome of every case under tests/data/node.
            # Written by `EXCITE_BLESS=1 cargo test -p excite-tests --test node_conformance`;
            # see docs/testing.md. `unsupported` reasons are the importer's error text.
            test_a pass
            test_b unsupported: node `n` (Conv): 1-D
            test_c unsupported: node `m`: int64 input
        "#]]
        .assert_eq(&rendered);
        let again = Manifest::parse(&rendered).map(|m| m.render());
        assert_eq!(again, Ok(rendered));
    }

    #[test]
    fn rejects_bad_lines() {
        let e = Manifest::parse("test_a pass\ntest_a pass\n").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("node_manifest.txt:2: case `test_a` is listed twice".into())
        );
        let e = Manifest::parse("test_a passes\n").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("node_manifest.txt:1: outcome must be `pass` or `unsupported: <reason>`, got `passes`".into())
        );
        let e = Manifest::parse("test_a\n").map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("node_manifest.txt:1: expected `<case> <outcome>`, got `test_a`".into())
        );
    }
}
