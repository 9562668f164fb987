//! The filetest runner (Cranelift style) and the differential check the fusion suites share.
//!
//! A filetest is a `.seir` file whose first line names the command (`# test fuse`), followed by
//! an input graph and, after a marker line, the expected output as comment lines:
//!
//! ```text
//! # test fuse
//! # se_blocks: 1
//! graph se { ... }
//! # ---- expected ----
//! # graph se {
//! #   ...
//! # }
//! ```
//!
//! The whole file is the parser's input (`#` starts a comment), so parse errors point at real
//! lines. `fuse` parses the graph with placeholder weights, runs [`excite_passes::optimize`],
//! prints the result and compares it with the expected text; an optional `# se_blocks: N` line
//! states how many `SeBlock` nodes the result must hold, so blessing cannot record a lost
//! fusion. Every run also compares the outputs of the input and optimised graphs in the
//! reference interpreter ([`compare_graphs`]), so blessing cannot record a wrong rewrite either.
//! With `EXCITE_BLESS=1` the expected section is rewritten from the actual output.

use std::collections::HashMap;

use excite_ir::text::{WeightStore, parse_with_placeholder_weights, print};
use excite_ir::{Graph, Op, Tensor};
use excite_passes::{Options, optimize};

use crate::compare::{Tolerance, check_close};

/// The line that separates the input from the expected output.
pub const EXPECTED_MARKER: &str = "# ---- expected ----";

/// Tolerance of the fusion suites: `|fused - unfused| <= 1e-5 + 1e-5 * |unfused|`.
pub const FUSE_TOLERANCE: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-5,
};

/// Why a filetest could not run or did not match.
#[derive(Debug, thiserror::Error)]
pub enum FileTestError {
    #[error("the first line must be `# test <command>`, found `{0}`")]
    Header(String),
    #[error("unknown command `{0}` (known: fuse)")]
    Command(String),
    #[error("bad directive `{0}` (expected `# se_blocks: <count>`)")]
    Directive(String),
    #[error("line {line} of the expected section does not start with `#`")]
    Expected { line: usize },
    #[error("the input does not parse: {0}")]
    Parse(String),
    #[error("the pipeline failed: {0}")]
    Pipeline(String),
    #[error("the optimised graph computes something else: {0}")]
    Numeric(String),
    #[error(
        "{actual} SeBlock nodes after fusion, the file expects {expected}; the result:\n{graph}"
    )]
    SeBlocks {
        expected: usize,
        actual: usize,
        graph: String,
    },
    #[error("no expected section (run with EXCITE_BLESS=1 to write it)")]
    NoExpected,
    #[error("the output differs from the expected section:\n{0}")]
    Mismatch(String),
}

/// A filetest split into its parts.
#[derive(Clone, Debug, PartialEq)]
pub struct FileTest {
    pub command: String,
    /// From a `# se_blocks: N` line, if any.
    pub se_blocks: Option<usize>,
    /// Everything before the marker line: header, directives and the input graph.
    pub body: String,
    /// The expected output with the comment prefix removed, if the file has the marker.
    pub expected: Option<String>,
}

/// Splits a filetest's text.
pub fn split(text: &str) -> Result<FileTest, FileTestError> {
    let first = text.lines().next().unwrap_or("").trim();
    let command = first
        .strip_prefix('#')
        .map(str::trim)
        .and_then(|rest| rest.strip_prefix("test "))
        .map(str::trim)
        .ok_or_else(|| FileTestError::Header(first.to_string()))?;
    if command != "fuse" {
        return Err(FileTestError::Command(command.to_string()));
    }
    let (body, expected) = match text.find(&format!("\n{EXPECTED_MARKER}")) {
        Some(at) => (&text[..=at], Some(&text[at + 1 + EXPECTED_MARKER.len()..])),
        None => (text, None),
    };
    let mut se_blocks = None;
    for line in body.lines() {
        if let Some(rest) = line.trim().strip_prefix("# se_blocks:") {
            let n = rest
                .trim()
                .parse()
                .map_err(|_| FileTestError::Directive(line.into()))?;
            se_blocks = Some(n);
        }
    }
    let expected = expected.map(uncomment).transpose()?;
    Ok(FileTest {
        command: command.to_string(),
        se_blocks,
        body: body.to_string(),
        expected,
    })
}

/// Strips `# ` (or a lone `#`) from every line after the marker.
fn uncomment(section: &str) -> Result<String, FileTestError> {
    let mut out = String::new();
    for (i, line) in section.lines().enumerate() {
        if line.trim().is_empty() && i == 0 {
            continue; // the rest of the marker line
        }
        let text = line
            .strip_prefix("# ")
            .or_else(|| line.strip_prefix('#'))
            .ok_or(FileTestError::Expected { line: i })?;
        out.push_str(text);
        out.push('\n');
    }
    Ok(out)
}

/// The expected section for `actual`, marker included.
pub fn expected_section(actual: &str) -> String {
    let mut out = format!("{EXPECTED_MARKER}\n");
    for line in actual.lines() {
        out.push_str(if line.is_empty() { "#" } else { "# " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What one `fuse` filetest did.
#[derive(Clone, Debug, PartialEq)]
pub struct FuseRun {
    /// The optimised graph as printed.
    pub actual: String,
    pub se_blocks: usize,
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Output elements compared between the input and optimised graphs.
    pub compared: usize,
}

/// Parses, optimises, prints and checks numerics and the `se_blocks` directive; the printed
/// text is compared by [`check_text`] so that blessing can rewrite it.
pub fn run_fuse(test: &FileTest) -> Result<FuseRun, FileTestError> {
    let mut g = parse_with_placeholder_weights(&test.body, &WeightStore::default())
        .map_err(|e| FileTestError::Parse(e.to_string()))?;
    excite_ir::verify::verify(&mut g).map_err(|e| FileTestError::Parse(e.to_string()))?;
    let nodes_before = g.node_count();
    let opt = optimize(g.clone(), &Options::default())
        .map_err(|e| FileTestError::Pipeline(e.to_string()))?;
    let compared = compare_graphs(&g, &opt.graph, 2, 0x5e_b10c).map_err(FileTestError::Numeric)?;
    let se_blocks = count_se_nodes(&opt.graph);
    let actual = print(&opt.graph);
    if let Some(expected) = test.se_blocks
        && expected != se_blocks
    {
        return Err(FileTestError::SeBlocks {
            expected,
            actual: se_blocks,
            graph: actual,
        });
    }
    Ok(FuseRun {
        actual,
        se_blocks,
        nodes_before,
        nodes_after: opt.graph.node_count(),
        compared,
    })
}

/// Compares the printed output with the expected section.
pub fn check_text(test: &FileTest, actual: &str) -> Result<(), FileTestError> {
    let expected = test.expected.as_deref().ok_or(FileTestError::NoExpected)?;
    if expected == actual {
        return Ok(());
    }
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let at = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let mut msg = format!("first difference at line {} of the graph\n", at + 1);
    msg.push_str(&format!("  expected: {}\n", e.get(at).unwrap_or(&"<end>")));
    msg.push_str(&format!("  actual:   {}\n", a.get(at).unwrap_or(&"<end>")));
    msg.push_str("actual output:\n");
    msg.push_str(actual);
    Err(FileTestError::Mismatch(msg))
}

/// The file with its expected section replaced by `actual`.
pub fn blessed(test: &FileTest, actual: &str) -> String {
    let mut body = test.body.trim_end().to_string();
    body.push('\n');
    body + &expected_section(actual)
}

/// Number of `SeBlock` nodes in `g`.
pub fn count_se_nodes(g: &Graph) -> usize {
    g.node_ids()
        .filter(|&n| matches!(g.node(n).op, Op::SeBlock(_)))
        .count()
}

/// A SplitMix64 stream: deterministic random inputs without a dependency.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// Random inputs for every graph input, the batch dim set to `batch`, values uniform in
/// `[-2, 2)`. Errs if an input is untyped or (by bad luck) all zeros.
pub fn random_inputs(
    g: &Graph,
    batch: usize,
    seed: u64,
) -> Result<HashMap<String, Tensor>, String> {
    let mut rng = SplitMix(seed);
    let mut inputs = HashMap::new();
    for &v in g.inputs() {
        let name = g.value(v).name.clone();
        let ty = g.ty_of(v).ok_or(format!("input `{name}` has no type"))?;
        let shape = ty.shape.resolve(batch);
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect();
        if data.iter().all(|&x| x == 0.0) {
            return Err(format!("input `{name}` came out all zeros"));
        }
        let t = Tensor::new(shape, data).map_err(|e| e.to_string())?;
        inputs.insert(name, t);
    }
    Ok(inputs)
}

/// Runs `reference` and `candidate` on the same random inputs and checks every output (same
/// names, same order) within [`FUSE_TOLERANCE`]. Returns the number of elements compared.
pub fn compare_graphs(
    reference: &Graph,
    candidate: &Graph,
    batch: usize,
    seed: u64,
) -> Result<usize, String> {
    let inputs = random_inputs(reference, batch, seed)?;
    let want = excite_ir::interp::run(reference, &inputs).map_err(|e| format!("input: {e}"))?;
    let got = excite_ir::interp::run(candidate, &inputs).map_err(|e| format!("optimised: {e}"))?;
    if want.len() != got.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    let mut compared = 0;
    for ((wn, w), (gn, t)) in want.iter().zip(&got) {
        if wn != gn {
            return Err(format!("output `{gn}` where `{wn}` was expected"));
        }
        check_close(t, w, FUSE_TOLERANCE).map_err(|e| format!("output `{wn}`: {e}"))?;
        compared += w.numel();
    }
    if compared == 0 {
        return Err("no output elements to compare".into());
    }
    Ok(compared)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    const FILE: &str =
        "# test fuse\n# se_blocks: 2\ngraph g {\n}\n# ---- expected ----\n# graph g {\n#\n# }\n";

    #[test]
    fn splits_header_directive_body_and_expected() {
        let t = split(FILE).expect("splits");
        assert_eq!(t.command, "fuse");
        assert_eq!(t.se_blocks, Some(2));
        assert_eq!(t.body, "# test fuse\n# se_blocks: 2\ngraph g {\n}\n");
        assert_eq!(t.expected.as_deref(), Some("graph g {\n\n}\n"));
        assert_eq!(blessed(&t, "graph g {\n\n}\n"), FILE);
    }

    fn check_split(text: &str, expect: expect_test::Expect) {
        let got = match split(text) {
            Ok(t) => format!("{t:?}"),
            Err(e) => format!("error: {e}"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn rejects_bad_headers_and_sections() {
        check_split(
            "graph g {}\n",
            expect![[r#"error: the first line must be `# test <command>`, found `graph g {}`"#]],
        );
        check_split(
            "# test clif\n",
            expect![[r#"error: unknown command `clif` (known: fuse)"#]],
        );
        check_split(
            "# test fuse\n# se_blocks: many\ngraph g {}\n",
            expect![[
                r#"error: bad directive `# se_blocks: many` (expected `# se_blocks: <count>`)"#
            ]],
        );
        check_split(
            "# test fuse\ngraph g {}\n# ---- expected ----\nnode\n",
            expect![[r#"error: line 1 of the expected section does not start with `#`"#]],
        );
        check_split(
            "# test fuse\ngraph g {}\n",
            expect![[
                r##"FileTest { command: "fuse", se_blocks: None, body: "# test fuse\ngraph g {}\n", expected: None }"##
            ]],
        );
    }

    #[test]
    fn mismatch_names_the_first_differing_line() {
        let t = split(FILE).expect("splits");
        let e = match check_text(&t, "graph g {\n  x\n}\n") {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        expect![[r#"
            the output differs from the expected section:
            first difference at line 2 of the graph
              expected: 
              actual:     x
            actual output:
            graph g {
              x
            }
        "#]]
        .assert_eq(&e);
        assert!(check_text(&t, "graph g {\n\n}\n").is_ok());
    }
}
