//! Rules that fuse a convolution's epilogue into one `FusedConv` e-node:
//! `post_act(act(conv(x, w) + b) + r)`.
//!
//! A Conv is first seen as a FusedConv with an empty epilogue (a partial e-node, never
//! extracted); the activation, the residual add and the activation after it are then absorbed
//! one at a time, each only if the value it absorbs is unshared. The residual must have
//! exactly the convolution's output shape: a broadcasting Add is not a residual.

use egg::Id;

use super::{Ctx, RuleError, RuleSet, always, cond, rule};

/// The residual: the conv output `f` is unshared, and `r` and the sum `n` both have exactly
/// its shape.
fn residual_fits(cx: &Ctx<'_>, [n, f, r]: [Id; 3]) -> bool {
    let y = cx.node(f).and_then(|i| i.shape.as_ref());
    y.is_some()
        && cx.info(r).shape.as_ref() == y
        && cx.node(n).and_then(|i| i.shape.as_ref()) == y
        && cx.unshared(&[f])
}

pub fn rules() -> Result<RuleSet, RuleError> {
    const CONV_ACT: &str = "(fconv ?f ?a ?k none ?x ?w ?b none)";
    let rules = vec![
        // conv(x, w, b) = FusedConv(x, w, b) with no epilogue   (partial, composes the rest)
        rule(
            "conv-as-fused",
            "(conv ?c ?a ?x ?w ?b)",
            "(fconv ?c ?a none none ?x ?w ?b none)",
            always(),
        )?,
        // act(FusedConv(x)) = FusedConv(x, act)
        rule(
            "conv-act",
            "(act ?n ?k (fconv ?c ?a none none ?x ?w ?b none))",
            "(fconv ?n ?a ?k none ?x ?w ?b none)",
            cond(["?c"], |cx, [c]| cx.unshared(&[c])),
        )?,
        // FusedConv(x, act?) + r = FusedConv(x, act?, residual r)
        rule(
            "conv-residual",
            &format!("(add ?n {CONV_ACT} ?r)"),
            "(fconv ?n ?a ?k none ?x ?w ?b ?r)",
            cond(["?n", "?f", "?r"], residual_fits),
        )?,
        // r + FusedConv(x, act?) = FusedConv(x, act?, residual r)
        rule(
            "conv-residual-rev",
            &format!("(add ?n ?r {CONV_ACT})"),
            "(fconv ?n ?a ?k none ?x ?w ?b ?r)",
            cond(["?n", "?f", "?r"], residual_fits),
        )?,
        // post(FusedConv(x, act?, residual r)) = FusedConv(x, act?, residual r, post_act post)
        rule(
            "conv-residual-act",
            "(act ?n ?p (fconv ?f ?a ?k none ?x ?w ?b ?r))",
            "(fconv ?n ?a ?k ?p ?x ?w ?b ?r)",
            cond(["?f", "?r"], |cx, [f, r]| {
                cx.unshared(&[f]) && !cx.is_none(r)
            }),
        )?,
    ];
    Ok(RuleSet {
        name: "epilogue",
        rules,
    })
}
