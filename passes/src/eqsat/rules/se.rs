//! Rules that turn a squeeze-and-excitation block into one `SeBlock` e-node.
//!
//! The canonical block (see `canonicalize`) is
//! `y = x * gate(fc2(act(fc1(GlobalAveragePool(x)))))`, the FCs being biased or unbiased 1x1
//! convolutions on the `[N,C,1,1]` map, optionally followed by `Add(y, r)` and an activation.
//! The block is composed in steps so each rule stays small: the gate chain becomes a partial
//! `se-gate` e-node (never extracted), the channel scale by it becomes an `se` e-node, and the
//! residual add and its activation are absorbed one at a time. Every absorbed intermediate
//! must be unshared; every shape the fused kernel relies on is checked.

use egg::Id;
use excite_ir::{Act, Dim};

use super::{Ctx, RuleError, RuleSet, cond, rule};

/// Activations allowed inside the block (between the FCs).
fn is_inner_act(a: Act) -> bool {
    matches!(a, Act::Relu | Act::Silu | Act::HardSwish)
}

/// Activations allowed as the gate.
fn is_gate(a: Act) -> bool {
    matches!(a, Act::Sigmoid | Act::HardSigmoid { .. })
}

/// The FC chain's shapes: `x: [N,C,H,W]`; both convs pointwise (1x1 kernel, stride 1, no
/// padding, one group) with constant weights `w1: [Cr,C,1,1]` (`Cr, C > 0`), `b1: [Cr]` or none,
/// `w2: [C,Cr,1,1]`, `b2: [C]` or none.
fn fc_chain_fits(cx: &Ctx<'_>, [a1, a2, x, w1, b1, w2, b2]: [Id; 7]) -> bool {
    let Some((_, c, _, _)) = cx.info(x).nchw() else {
        return false;
    };
    let pointwise = |a: Id| cx.conv(a).is_some_and(|a| a.is_pointwise());
    let Some(cr) = cx.info(w1).constant_dims().and_then(|d| match d[..] {
        // An SeBlock needs a hidden unit (and a channel); a zero-size chain stays unfused.
        [cr, ci, 1, 1] if ci == c && cr > 0 && c > 0 => Some(cr),
        _ => None,
    }) else {
        return false;
    };
    let bias_fits =
        |b: Id, len: usize| cx.is_none(b) || cx.info(b).constant_dims() == Some(vec![len]);
    pointwise(a1)
        && pointwise(a2)
        && cx.info(w2).constant_dims() == Some(vec![c, cr, 1, 1])
        && bias_fits(b1, cr)
        && bias_fits(b2, c)
}

/// The scale: the gate `g` is `[N,C,1,1]` and `x` is `[N,C,H,W]` with the same `N` and `C`,
/// and the product `m` has the shape of `x` (the gate broadcasts over pixels only).
fn scale_fits(cx: &Ctx<'_>, [m, g, x]: [Id; 3]) -> bool {
    let Some((n, c, _, _)) = cx.info(x).nchw() else {
        return false;
    };
    let gate = cx.node(g).and_then(|i| i.nchw());
    gate == Some((n, c, Dim::Fixed(1), Dim::Fixed(1)))
        && cx.node(m).and_then(|i| i.shape.as_ref()) == cx.info(x).shape.as_ref()
        && cx.unshared(&[g])
}

/// The residual: the SE output `s` is unshared, and `r` and the sum `n` both have exactly
/// its shape (no broadcasting).
fn residual_fits(cx: &Ctx<'_>, [n, s, r]: [Id; 3]) -> bool {
    let se = cx.node(s).and_then(|i| i.shape.as_ref());
    se.is_some()
        && cx.info(r).shape.as_ref() == se
        && cx.node(n).and_then(|i| i.shape.as_ref()) == se
        && cx.unshared(&[s])
}

pub fn rules() -> Result<RuleSet, RuleError> {
    const SE: &str = "(se ?m ?ak ?gk none ?x ?w1 ?b1 ?w2 ?b2 none)";
    let rules = vec![
        // gate(fc2(act(fc1(GlobalAveragePool(x))))) = se-gate(x)   (partial, composes the block)
        rule(
            "se-gate",
            "(act ?g ?gk (conv ?c2 ?a2 (act ?a ?ak (conv ?c1 ?a1 (gap ?p ?x) ?w1 ?b1)) ?w2 ?b2))",
            "(se-gate ?g ?ak ?gk ?x ?w1 ?b1 ?w2 ?b2)",
            cond(
                [
                    "?p", "?c1", "?a", "?c2", "?ak", "?gk", "?a1", "?a2", "?x", "?w1", "?b1",
                    "?w2", "?b2",
                ],
                |cx, [p, c1, a, c2, ak, gk, a1, a2, x, w1, b1, w2, b2]| {
                    cx.unshared(&[p, c1, a, c2])
                        && cx.act(ak).is_some_and(is_inner_act)
                        && cx.act(gk).is_some_and(is_gate)
                        && fc_chain_fits(cx, [a1, a2, x, w1, b1, w2, b2])
                },
            ),
        )?,
        // x * se-gate(x) = SeBlock(x)
        rule(
            "se-scale",
            "(mul ?m ?x (se-gate ?g ?ak ?gk ?x ?w1 ?b1 ?w2 ?b2))",
            SE,
            cond(["?m", "?g", "?x"], scale_fits),
        )?,
        // se-gate(x) * x = SeBlock(x)
        rule(
            "se-scale-rev",
            "(mul ?m (se-gate ?g ?ak ?gk ?x ?w1 ?b1 ?w2 ?b2) ?x)",
            SE,
            cond(["?m", "?g", "?x"], scale_fits),
        )?,
        // SeBlock(x) + r = SeBlock(x, residual r)
        rule(
            "se-residual",
            &format!("(add ?n {SE} ?r)"),
            "(se ?n ?ak ?gk none ?x ?w1 ?b1 ?w2 ?b2 ?r)",
            cond(["?n", "?m", "?r"], residual_fits),
        )?,
        // r + SeBlock(x) = SeBlock(x, residual r)
        rule(
            "se-residual-rev",
            &format!("(add ?n ?r {SE})"),
            "(se ?n ?ak ?gk none ?x ?w1 ?b1 ?w2 ?b2 ?r)",
            cond(["?n", "?m", "?r"], residual_fits),
        )?,
        // act(SeBlock(x, residual r)) = SeBlock(x, residual r, post_act act)
        rule(
            "se-residual-act",
            "(act ?n ?pk (se ?s ?ak ?gk none ?x ?w1 ?b1 ?w2 ?b2 ?r))",
            "(se ?n ?ak ?gk ?pk ?x ?w1 ?b1 ?w2 ?b2 ?r)",
            cond(["?s", "?r"], |cx, [s, r]| {
                cx.unshared(&[s]) && !cx.is_none(r)
            }),
        )?,
    ];
    Ok(RuleSet { name: "se", rules })
}
