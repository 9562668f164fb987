//! The scanner under the `.seir` parser: a byte position in the source plus the small readers
//! (names, keywords, integers, floats, punctuation) that the statement parser is built from.
//!
//! Whitespace (newlines included) separates tokens and `#` starts a comment that runs to the end
//! of the line. Every reader skips both first. Errors carry the 1-based line and column (counted
//! in characters) of the offending token; no reader panics on any input.

use crate::error::IrError;

pub(super) type PResult<T> = Result<T, IrError>;

/// Characters a name may use without quotes. A `:` belongs to a name only when a name
/// character follows it, so `x: f32[1]` reads as the name `x` and a type, while `a:b` is one
/// name; `->` always ends a name.
pub(super) fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Characters a number token may use (`-1`, `1e-5`, `inf`, `nan`).
fn is_number_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-')
}

/// The 1-based line and column (in characters) of byte offset `pos` of `src`.
pub(super) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

/// A `Parse` error at byte offset `pos` of `src`.
pub(super) fn error_at(src: &str, pos: usize, msg: impl Into<String>) -> IrError {
    let (line, col) = line_col(src, pos);
    IrError::Parse {
        line,
        col,
        msg: msg.into(),
    }
}

/// A position in the source text. `pos` always sits on a character boundary.
#[derive(Debug)]
pub(super) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, pos: 0 }
    }

    pub(super) fn src(&self) -> &'a str {
        self.src
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    pub(super) fn error(&self, pos: usize, msg: impl Into<String>) -> IrError {
        error_at(self.src, pos, msg)
    }

    /// Skips whitespace and comments.
    pub(super) fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// The position of the next token.
    pub(super) fn here(&mut self) -> usize {
        self.skip_ws();
        self.pos
    }

    pub(super) fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.src.len()
    }

    /// A short description of the next token, for error messages.
    pub(super) fn found(&mut self) -> String {
        self.skip_ws();
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return "end of input".into();
        };
        let word: String = rest
            .chars()
            .take_while(|&c| is_plain_char(c))
            .take(24)
            .collect();
        if word.is_empty() {
            format!("`{c}`")
        } else {
            format!("`{word}`")
        }
    }

    /// Consumes `tok` if the next token starts with it.
    pub(super) fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    /// Consumes `tok` or reports what was found instead; `ctx` completes "expected `tok` ...".
    pub(super) fn expect(&mut self, tok: &str, ctx: &str) -> PResult<()> {
        if self.eat(tok) {
            return Ok(());
        }
        let pos = self.here();
        let found = self.found();
        Err(self.error(pos, format!("expected `{tok}` {ctx}, found {found}")))
    }

    /// Reads a run of plain-name characters (possibly empty) and its position.
    pub(super) fn word(&mut self) -> (usize, &'a str) {
        let start = self.here();
        while self.peek().is_some_and(is_plain_char) {
            let mut ahead = self.rest().chars().skip(1);
            let stop = match self.peek() {
                Some('-') => ahead.next() == Some('>'),
                Some(':') => !ahead.next().is_some_and(is_plain_char),
                _ => false,
            };
            if stop {
                break;
            }
            self.bump();
        }
        (start, self.src.get(start..self.pos).unwrap_or(""))
    }

    /// Reads a name: plain characters, or a double-quoted string with `\"`, `\\`, `\n`, `\r`,
    /// `\t` and `\u{..}` escapes. `what` names the expected thing in errors.
    pub(super) fn name(&mut self, what: &str) -> PResult<(usize, String)> {
        let start = self.here();
        if self.eat("\"") {
            return self.quoted(start).map(|s| (start, s));
        }
        let (pos, w) = self.word();
        if w.is_empty() {
            let found = self.found();
            return Err(self.error(pos, format!("expected {what}, found {found}")));
        }
        Ok((pos, w.to_string()))
    }

    fn quoted(&mut self, start: usize) -> PResult<String> {
        let mut s = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(self.error(start, "unterminated quoted name")),
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('u') => s.push(self.unicode_escape(at)?),
                    _ => return Err(self.error(at, "unknown escape in quoted name")),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// The rest of `\u{XXXX}` after the `u`; `at` is the backslash.
    fn unicode_escape(&mut self, at: usize) -> PResult<char> {
        let bad = |c: &Self| c.error(at, "bad `\\u{..}` escape in quoted name");
        if self.bump() != Some('{') {
            return Err(bad(self));
        }
        let digits_start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.bump();
        }
        let digits = self.src.get(digits_start..self.pos).unwrap_or("");
        if self.bump() != Some('}') || digits.is_empty() || digits.len() > 6 {
            return Err(bad(self));
        }
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| bad(self))
    }

    /// Reads a number-like token (`12`, `-1`, `1e-5`, `-inf`) and its position.
    pub(super) fn number_token(&mut self, what: &str) -> PResult<(usize, &'a str)> {
        let start = self.here();
        while self.peek().is_some_and(is_number_char) {
            self.bump();
        }
        let tok = self.src.get(start..self.pos).unwrap_or("");
        if tok.is_empty() {
            let found = self.found();
            return Err(self.error(start, format!("expected {what}, found {found}")));
        }
        Ok((start, tok))
    }

    /// Reads a 32-bit float.
    pub(super) fn f32(&mut self, what: &str) -> PResult<f32> {
        let (pos, tok) = self.number_token(what)?;
        to_f32(self.src, pos, tok, what)
    }
}

/// Converts an integer token at `pos`, telling overflow apart from garbage.
pub(super) fn to_usize(src: &str, pos: usize, tok: &str, what: &str) -> PResult<usize> {
    tok.parse::<usize>().map_err(|_| {
        if tok.bytes().all(|b| b.is_ascii_digit()) {
            error_at(src, pos, format!("{what} `{tok}` is too large"))
        } else {
            error_at(src, pos, format!("expected {what}, found `{tok}`"))
        }
    })
}

/// Converts a signed integer token at `pos`.
pub(super) fn to_i64(src: &str, pos: usize, tok: &str, what: &str) -> PResult<i64> {
    tok.parse::<i64>().map_err(|_| {
        let digits = tok.strip_prefix('-').unwrap_or(tok);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            error_at(src, pos, format!("{what} `{tok}` does not fit in 64 bits"))
        } else {
            error_at(src, pos, format!("expected {what}, found `{tok}`"))
        }
    })
}

/// Converts a float token at `pos`. `inf`, `-inf` and `nan` are accepted; a finite literal too
/// large for `f32` is an error rather than a silent infinity.
pub(super) fn to_f32(src: &str, pos: usize, tok: &str, what: &str) -> PResult<f32> {
    let v = tok
        .parse::<f32>()
        .map_err(|_| error_at(src, pos, format!("expected {what}, found `{tok}`")))?;
    if v.is_infinite() && !tok.to_ascii_lowercase().contains("inf") {
        return Err(error_at(
            src,
            pos,
            format!("{what} `{tok}` is out of f32 range"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check_name(src: &str, expect: Expect) {
        let got = match Cursor::new(src).name("a name") {
            Ok((pos, s)) => format!("{pos}: {s:?}"),
            Err(e) => e.to_string(),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn names() {
        check_name(
            "  /layer1/0/conv1/Conv rest",
            expect![[r#"2: "/layer1/0/conv1/Conv""#]],
        );
        check_name(
            r#""a b\"c\\d\n\u{1F600}""#,
            expect![[r#"0: "a b\"c\\d\n😀""#]],
        );
        check_name("# comment\n  x.w", expect![[r#"12: "x.w""#]]);
        check_name("x->y", expect![[r#"0: "x""#]]);
        check_name("a:b::c: f32", expect![[r#"0: "a:b::c""#]]);
        check_name("a:", expect![[r#"0: "a""#]]);
        check_name("\"open", expect!["1:1: unterminated quoted name"]);
        check_name("\"\\q\"", expect!["1:2: unknown escape in quoted name"]);
        check_name(
            "\"\\u{110000}\"",
            expect!["1:2: bad `\\u{..}` escape in quoted name"],
        );
        check_name("\n  =", expect!["2:3: expected a name, found `=`"]);
        check_name("", expect!["1:1: expected a name, found end of input"]);
    }

    fn check_num(src: &str, expect: Expect) {
        let int = Cursor::new(src)
            .number_token("an integer")
            .and_then(|(p, t)| to_usize(src, p, t, "an integer"));
        let got = match (int, Cursor::new(src).f32("a float")) {
            (Ok(u), Ok(f)) => format!("{u} {f:?}"),
            (Err(e), Ok(f)) => format!("[{e}] {f:?}"),
            (Ok(u), Err(e)) => format!("{u} [{e}]"),
            (Err(a), Err(b)) => format!("[{a}] [{b}]"),
        };
        expect.assert_eq(&got);
    }

    #[test]
    fn numbers() {
        check_num("42", expect!["42 42.0"]);
        check_num(
            "1e-5",
            expect!["[1:1: expected an integer, found `1e-5`] 1e-5"],
        );
        check_num(
            "99999999999999999999999",
            expect!["[1:1: an integer `99999999999999999999999` is too large] 1e23"],
        );
        check_num(
            "1e39",
            expect![
                "[1:1: expected an integer, found `1e39`] [1:1: a float `1e39` is out of f32 range]"
            ],
        );
        check_num(
            "-inf",
            expect!["[1:1: expected an integer, found `-inf`] -inf"],
        );
        check_num(
            "\u{e9}",
            expect!["[1:1: expected an integer, found `é`] [1:1: expected a float, found `é`]"],
        );
    }
}
