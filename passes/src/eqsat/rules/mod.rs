//! The rewrite rules, as named data grouped by topic: [`se`] (the squeeze-and-excitation block)
//! and [`epilogue`] (a convolution's bias, activation and residual add).
//!
//! Every rule adds one fused e-node, named after the node it replaces at the root, to that
//! root's e-class; it never removes anything, so the e-graph only grows by one node per match
//! and the original graph always stays extractable. Conditions read the [`GraphAnalysis`]:
//! shapes and whether an intermediate is shared. There are no general commutativity or
//! associativity rules: where operand order varies (`Mul(x, g)` and `Mul(g, x)`), each order is
//! its own rule.
//!
//! [`GraphAnalysis`]: super::analysis::GraphAnalysis

pub mod epilogue;
pub mod se;

use egg::{Applier, ENodeOrVar, Id, Language, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};
use excite_ir::Act;

use super::analysis::{GraphAnalysis, SeGraph, ValueInfo, is_none, node_info};
use super::lang::{ConvAttr, SeLang};

/// One rewrite rule.
pub type Rule = Rewrite<SeLang, GraphAnalysis>;

/// A named group of rules, run by one `Runner`.
#[derive(Debug)]
pub struct RuleSet {
    pub name: &'static str,
    pub rules: Vec<Rule>,
}

/// A rule that does not build: a bug in the rule tables, caught by the tests.
#[derive(Debug, thiserror::Error)]
#[error("rule `{rule}`: {msg}")]
pub struct RuleError {
    pub rule: String,
    pub msg: String,
}

/// Every rule set, in the order the `fuse` pass runs them.
pub fn rule_sets() -> Result<Vec<RuleSet>, RuleError> {
    Ok(vec![se::rules()?, epilogue::rules()?])
}

/// What a condition can ask about the e-classes its variables matched.
#[derive(Debug)]
pub struct Ctx<'a> {
    eg: &'a SeGraph,
}

impl Ctx<'_> {
    /// Facts about a value e-class.
    pub fn info(&self, id: Id) -> &ValueInfo {
        &self.eg[id].data
    }

    /// Facts about the output of the node whose name leaf is `name`.
    pub fn node(&self, name: Id) -> Option<&ValueInfo> {
        node_info(self.eg, name)
    }

    /// True when the output of every named node is read by one node only and is not a graph
    /// output, so a fused kernel may absorb it.
    pub fn unshared(&self, names: &[Id]) -> bool {
        names
            .iter()
            .all(|&n| self.node(n).is_some_and(|i| !i.shared))
    }

    pub fn is_none(&self, id: Id) -> bool {
        is_none(self.eg, id)
    }

    /// The activation of an activation leaf.
    pub fn act(&self, id: Id) -> Option<Act> {
        self.eg[id].nodes.iter().find_map(|n| match n {
            SeLang::Kind(k) => Some(k.0),
            _ => None,
        })
    }

    /// The attributes of a Conv attribute leaf.
    pub fn conv(&self, id: Id) -> Option<ConvAttr> {
        self.eg[id].nodes.iter().find_map(|n| match n {
            SeLang::Attrs(a) => Some(*a),
            _ => None,
        })
    }
}

type Test = Box<dyn Fn(&Ctx<'_>, &[Id]) -> bool + Send + Sync>;

/// A rule's condition over some of its pattern variables.
pub struct Cond {
    vars: Vec<Var>,
    test: Test,
}

impl std::fmt::Debug for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cond").field("vars", &self.vars).finish()
    }
}

/// A condition on the e-classes bound to `names`, passed to `test` in that order.
pub fn cond<const N: usize>(
    names: [&str; N],
    test: impl Fn(&Ctx<'_>, [Id; N]) -> bool + Send + Sync + 'static,
) -> Cond {
    Cond {
        vars: names.iter().map(|n| Var::from(Symbol::from(*n))).collect(),
        test: Box::new(move |cx, ids| <[Id; N]>::try_from(ids).is_ok_and(|ids| test(cx, ids))),
    }
}

/// Adds the fused e-node `rhs` to the matched class when the condition holds, and records
/// which rule made it.
#[derive(Debug)]
struct FuseApplier {
    rhs: Pattern<SeLang>,
    cond: Cond,
}

impl Applier<SeLang, GraphAnalysis> for FuseApplier {
    fn apply_one(
        &self,
        egraph: &mut SeGraph,
        eclass: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<SeLang>>,
        rule_name: Symbol,
    ) -> Vec<Id> {
        let Some(ids) = self
            .cond
            .vars
            .iter()
            .map(|v| subst.get(*v).copied())
            .collect::<Option<Vec<Id>>>()
        else {
            return vec![];
        };
        if !(self.cond.test)(&Ctx { eg: egraph }, &ids) {
            return vec![];
        }
        let mut made: Vec<Id> = Vec::with_capacity(self.rhs.ast.len());
        let mut root = None;
        for item in self.rhs.ast.as_ref() {
            let id = match item {
                ENodeOrVar::Var(v) => match subst.get(*v) {
                    Some(&id) => id,
                    None => return vec![],
                },
                ENodeOrVar::ENode(n) => {
                    let n = n.clone().map_children(|c| made[usize::from(c)]);
                    root = Some(n.clone());
                    egraph.add(n)
                }
            };
            made.push(id);
        }
        let (Some(&new), Some(root)) = (made.last(), root) else {
            return vec![];
        };
        egraph.analysis.created.push((root, rule_name));
        if egraph.union(eclass, new) {
            vec![eclass]
        } else {
            vec![]
        }
    }

    fn vars(&self) -> Vec<Var> {
        let mut vars = self.rhs.vars();
        vars.extend(self.cond.vars.iter().copied());
        vars
    }
}

/// A rule `name`: `lhs` becomes, where `cond` holds, also `rhs`.
pub fn rule(name: &str, lhs: &str, rhs: &str, cond: Cond) -> Result<Rule, RuleError> {
    let err = |msg: String| RuleError {
        rule: name.to_string(),
        msg,
    };
    let lhs: Pattern<SeLang> = lhs.parse().map_err(|e| err(format!("lhs: {e}")))?;
    let rhs: Pattern<SeLang> = rhs.parse().map_err(|e| err(format!("rhs: {e}")))?;
    Rewrite::new(name, lhs, FuseApplier { rhs, cond }).map_err(err)
}

/// A rule without a condition.
pub fn always() -> Cond {
    cond([], |_, []| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_builds_and_names_are_unique() {
        let sets = rule_sets().expect("rule tables build");
        let mut names: Vec<String> = sets
            .iter()
            .flat_map(|s| s.rules.iter().map(|r| format!("{}/{}", s.name, r.name)))
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        expect_test::expect![[r#"
            [
                "epilogue/conv-act",
                "epilogue/conv-as-fused",
                "epilogue/conv-residual",
                "epilogue/conv-residual-act",
                "epilogue/conv-residual-rev",
                "se/se-gate",
                "se/se-residual",
                "se/se-residual-act",
                "se/se-residual-rev",
                "se/se-scale",
                "se/se-scale-rev",
            ]
        "#]]
        .assert_debug_eq(&names);
    }

    #[test]
    fn a_condition_naming_an_unbound_variable_is_refused() {
        let bad = cond(["?nope"], |_, [_]| true);
        let e = rule("bad", "(gap ?p ?x)", "(op ?p ?x)", bad).map(|_| ());
        assert!(e.is_err_and(|e| e.to_string().contains("?nope")));
    }
}
