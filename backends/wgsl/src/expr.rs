//! The pointwise parts of fused kernels as one small expression description.
//!
//! A fused epilogue is a list of [`Step`]s applied in order to a value `v` (bias, activation,
//! residual add, gate scale). Each step, and each [`Act`] variant, is one WGSL snippet here; the
//! conv, SE and elementwise kernels all splice the statements this module emits into their
//! `{{epilogue}}` hole, so a new activation is one match arm below.

use excite_ir::Act;

use crate::WgslError;

/// One pointwise step of an epilogue, applied to the running value `v`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `v += bias[c]` (per output channel `c`).
    Bias,
    /// `v = act(v)`.
    Act(Act),
    /// `v += res[o]` (same flat index `o` as the output).
    Residual,
    /// `v *= g` (the SE gate of the current channel, a local `g`).
    Scale,
    /// `v *= gates[o / HW]`: the gate of output `o`'s (image, channel) from a `gates` binding
    /// (an SE block folded into the conv that feeds it; every conv kernel has `o` and `HW`).
    Gate,
    /// `v *= se_gs[m - m0]`: the gate of output channel `m` from the tile's gates in workgroup
    /// memory (se_tile.wgsl; the 1x1 GEMM kernel has `m` and `m0`).
    TileGate,
}

/// The steps of `post_act(act(x + b) + r)`, the FusedConv epilogue.
pub fn conv_epilogue(bias: bool, act: Option<Act>, residual: bool, post: Option<Act>) -> Vec<Step> {
    let mut s = Vec::new();
    if bias {
        s.push(Step::Bias);
    }
    s.extend(act.map(Step::Act));
    if residual {
        s.push(Step::Residual);
        s.extend(post.map(Step::Act));
    }
    s
}

/// WGSL statements applying `steps` to `v`, one per line.
pub fn emit(steps: &[Step]) -> Result<String, WgslError> {
    emit_with(steps, "res[o]")
}

/// [`emit`] with the residual read from the WGSL expression `res` (e.g. a vector lane).
pub fn emit_with(steps: &[Step], res: &str) -> Result<String, WgslError> {
    let mut out = String::new();
    for s in steps {
        let line = match *s {
            Step::Bias => "v = v + bias[c];".to_string(),
            Step::Residual => format!("v = v + {res};"),
            Step::Scale => "v = v * g;".to_string(),
            Step::Gate => "v = v * gates[o / HW];".to_string(),
            Step::TileGate => "v = v * se_gs[m - m0];".to_string(),
            Step::Act(a) => format!("v = {};", act_expr(a, "v")?),
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// The WGSL expression computing `a` of the `f32` expression `v` (a plain identifier).
pub fn act_expr(a: Act, v: &str) -> Result<String, WgslError> {
    Ok(match a {
        Act::Relu => format!("max({v}, 0.0)"),
        Act::Sigmoid => format!("(1.0 / (1.0 + exp(-{v})))"),
        Act::HardSigmoid { alpha, beta } => {
            format!("clamp({} * {v} + {}, 0.0, 1.0)", lit(alpha)?, lit(beta)?)
        }
        Act::HardSwish => format!("({v} * clamp({v} / 6.0 + 0.5, 0.0, 1.0))"),
        Act::Silu => format!("({v} / (1.0 + exp(-{v})))"),
        Act::Clip { min, max } => {
            let mut e = v.to_string();
            if min.is_finite() {
                e = format!("max({e}, {})", lit(min)?);
            }
            if max.is_finite() {
                e = format!("min({e}, {})", lit(max)?);
            }
            e
        }
    })
}

/// A finite `f32` as a WGSL `f32` literal that reads back as the same value.
pub fn lit(x: f32) -> Result<String, WgslError> {
    if !x.is_finite() {
        return Err(WgslError::Unsupported {
            node: String::new(),
            op: "literal",
            msg: format!("{x} has no WGSL literal"),
        });
    }
    // `{:?}` prints the shortest representation that round-trips (`0.5`, `1e-5`).
    Ok(format!("{x:?}f"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(steps: &[Step], want: Expect) {
        want.assert_eq(&emit(steps).unwrap_or_else(|e| format!("error: {e}")));
    }

    #[test]
    fn conv_epilogue_with_residual() {
        check(
            &conv_epilogue(true, Some(Act::Relu), true, Some(Act::Relu)),
            expect![[r#"
                v = v + bias[c];
                v = max(v, 0.0);
                v = v + res[o];
                v = max(v, 0.0);
            "#]],
        );
    }

    #[test]
    fn every_act_has_a_snippet() {
        let acts = [
            Act::Sigmoid,
            Act::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            Act::HardSwish,
            Act::Silu,
            Act::Clip { min: 0.0, max: 6.0 },
            Act::Clip {
                min: f32::NEG_INFINITY,
                max: 1e-5,
            },
        ];
        let steps: Vec<_> = acts
            .into_iter()
            .map(Step::Act)
            .chain([Step::Scale])
            .collect();
        check(
            &steps,
            expect![[r#"
                v = (1.0 / (1.0 + exp(-v)));
                v = clamp(0.2f * v + 0.5f, 0.0, 1.0);
                v = (v * clamp(v / 6.0 + 0.5, 0.0, 1.0));
                v = (v / (1.0 + exp(-v)));
                v = min(max(v, 0.0f), 6.0f);
                v = min(v, 1e-5f);
                v = v * g;
            "#]],
        );
    }

    #[test]
    fn infinite_literal_is_refused() {
        assert!(lit(f32::INFINITY).is_err());
        assert_eq!(lit(1.0).ok().as_deref(), Some("1.0f"));
    }
}
