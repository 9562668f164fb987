//! The template renderer: fills the `{{name}}` holes of a `.wgsl` kernel file.
//!
//! Templates hold no control flow: every hole is replaced by a string computed in Rust. Rendering
//! fails on a hole the caller did not fill and on a value whose hole the template lacks, so a
//! renamed hole can never silently leave a kernel half-written.

use crate::WgslError;

/// Fills every `{{name}}` hole of `template` (called `kernel` in errors) from `values`.
pub fn render(
    kernel: &str,
    template: &str,
    values: &[(&str, String)],
) -> Result<String, WgslError> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| WgslError::Template {
            kernel: kernel.to_string(),
            msg: "unterminated `{{`".into(),
        })?;
        let name = after[..end].trim();
        let idx =
            values
                .iter()
                .position(|(k, _)| *k == name)
                .ok_or_else(|| WgslError::Template {
                    kernel: kernel.to_string(),
                    msg: format!("hole `{name}` is not filled"),
                })?;
        used[idx] = true;
        out.push_str(&values[idx].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(WgslError::Template {
            kernel: kernel.to_string(),
            msg: format!("value for unknown hole `{}`", values[i].0),
        });
    }
    Ok(out)
}

/// A `u32` as a WGSL literal.
pub fn u(v: usize) -> String {
    format!("{v}u")
}

/// An `i32` as a WGSL literal.
pub fn i(v: usize) -> String {
    format!("{v}i")
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(template: &str, values: &[(&str, &str)], want: Expect) {
        let values: Vec<_> = values.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let got = match render("t", template, &values) {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        };
        want.assert_eq(&got);
    }

    #[test]
    fn fills_every_hole() {
        check(
            "const N: u32 = {{n}}; fn f() { {{body}} } // {{n}}",
            &[("n", "4u"), ("body", "return;")],
            expect!["const N: u32 = 4u; fn f() { return; } // 4u"],
        );
    }

    #[test]
    fn unfilled_hole_fails() {
        check(
            "a {{x}} b {{y}}",
            &[("x", "1")],
            expect!["error: kernel `t`: template: hole `y` is not filled"],
        );
    }

    #[test]
    fn unknown_hole_fails() {
        check(
            "a {{x}}",
            &[("x", "1"), ("z", "2")],
            expect!["error: kernel `t`: template: value for unknown hole `z`"],
        );
    }

    #[test]
    fn unterminated_hole_fails() {
        check(
            "a {{x",
            &[],
            expect!["error: kernel `t`: template: unterminated `{{`"],
        );
    }
}
