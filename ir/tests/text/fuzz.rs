//! The parser never panics: on arbitrary bytes, and on valid texts with random edits (cuts,
//! insertions of awkward tokens, duplicated lines). Whatever parses prints back to a text that
//! parses to the same print, and goes through the verifier without panicking.

use proptest::prelude::*;

use excite_ir::text::{self, WeightStore};

use super::fixtures::ALL;
use super::parse_ph;

/// Tokens that stress the scanner: brackets, quotes, escapes, numbers at and past the limits.
const TOKENS: [&str; 24] = [
    "}",
    "{",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "\\",
    "#",
    "->",
    ",",
    ":",
    "=",
    "N",
    "-1",
    "0",
    "99999999999999999999",
    "18446744073709551615",
    "1e999",
    "nan",
    "-inf",
    "node",
    "\n",
    "\u{e9}",
];

#[derive(Clone, Debug)]
enum Edit {
    Cut(usize, usize),
    Insert(usize, usize),
    DupLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..12usize).prop_map(|(a, n)| Edit::Cut(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        any::<usize>().prop_map(Edit::DupLine),
    ]
}

/// The largest char boundary of `s` at or before `i % (len + 1)`.
fn boundary(s: &str, i: usize) -> usize {
    let mut i = i % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &str, edits: &[Edit]) -> String {
    let mut s = src.to_string();
    for e in edits {
        match *e {
            Edit::Cut(at, n) => {
                let a = boundary(&s, at);
                let b = boundary(&s, a + n);
                if b >= a {
                    s.replace_range(a..b, "");
                }
            }
            Edit::Insert(at, t) => {
                let a = boundary(&s, at);
                s.insert_str(a, TOKENS[t]);
            }
            Edit::DupLine(i) => {
                let lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let k = i % lines.len();
                    let mut out: Vec<&str> = lines.clone();
                    out.insert(k, lines[k]);
                    s = out.join("\n");
                }
            }
        }
    }
    s
}

/// Parses `src`; when it parses, checks that the print is a fixed point and that the verifier
/// copes. Returns whether it parsed.
fn exercise(src: &str, store: &WeightStore) -> bool {
    let Ok(g) = text::parse(src, store) else {
        return false;
    };
    let printed = text::print(&g);
    let again = text::parse(&printed, store).expect("a printed graph parses");
    assert_eq!(text::print(&again), printed);
    let mut v = g.clone();
    let _ = text::verify_declared(&mut v);
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let src = String::from_utf8_lossy(&bytes);
        let _ = exercise(&src, &WeightStore::new());
        let _ = text::parse_with_placeholder_weights(&src, &WeightStore::new());
    }

    #[test]
    fn arbitrary_strings_never_panic(src in "[ -~\n\u{e9}\u{2713}]{0,300}") {
        let _ = exercise(&src, &WeightStore::new());
    }

    #[test]
    fn edited_valid_texts_never_panic(
        which in 0..ALL.len(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let (_, src) = ALL[which];
        let store = WeightStore::from_graph(&parse_ph(src));
        let edited = apply(src, &edits);
        let _ = exercise(&edited, &store);
    }
}

/// The edits above do produce texts that still parse (so the fixed-point check runs) and
/// texts that fail; count both over a fixed sample.
#[test]
fn edits_hit_both_outcomes() {
    let (mut ok, mut failed) = (0, 0);
    for (i, (_, src)) in ALL.iter().enumerate() {
        let store = WeightStore::from_graph(&parse_ph(src));
        for k in 0..200usize {
            let e = match k % 3 {
                0 => Edit::Cut(k * 7919 + i, k % 5),
                1 => Edit::Insert(k * 104_729 + i, k % TOKENS.len()),
                _ => Edit::DupLine(k),
            };
            if exercise(&apply(src, &[e]), &store) {
                ok += 1;
            } else {
                failed += 1;
            }
        }
    }
    eprintln!("{ok} parsed, {failed} failed");
    assert!(ok > 50 && failed > 50, "{ok} parsed, {failed} failed");
}
