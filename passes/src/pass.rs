//! The `Pass` trait and what passes report: rewrite events (for `--explain`) and equality
//! saturation reports (iterations, e-graph size, the `StopReason`).

use std::time::Duration;

use excite_ir::{Graph, IrError, IrErrors};

/// One graph-to-graph transformation.
pub trait Pass {
    /// The name used by `--after NAME` and in reports (`fold-bn`, `fuse`, ...).
    fn name(&self) -> &'static str;
    /// Rewrites `g` in place. Must leave a graph that verifies and computes the same outputs.
    fn run(&self, g: &mut Graph, cx: &mut PassContext) -> Result<(), PassError>;
}

/// A rule that fired, where: the node named as the user named it.
#[derive(Clone, Debug, PartialEq)]
pub struct RewriteEvent {
    pub pass: &'static str,
    pub rule: String,
    /// The user's name of the node the rule rewrote (for fusion: the node the fused kernel
    /// replaces at the root, e.g. the SE block's Mul or the residual's Relu).
    pub node: String,
    /// Free text, e.g. the names of the nodes absorbed.
    pub detail: String,
}

/// What one equality-saturation run did.
#[derive(Clone, Debug, PartialEq)]
pub struct EqsatReport {
    pub rule_set: String,
    /// egg's `StopReason`, rendered (`Saturated`, `IterationLimit(30)`, ...).
    pub stop_reason: String,
    pub iterations: usize,
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub time: Duration,
}

/// Limits for every egg `Runner`.
#[derive(Clone, Debug, PartialEq)]
pub struct EqsatLimits {
    pub iter_limit: usize,
    pub node_limit: usize,
    pub time_limit: Duration,
}

impl Default for EqsatLimits {
    fn default() -> Self {
        EqsatLimits {
            iter_limit: 30,
            node_limit: 500_000,
            time_limit: Duration::from_secs(10),
        }
    }
}

/// State shared by the passes of one pipeline run.
#[derive(Clone, Debug, Default)]
pub struct PassContext {
    pub limits: EqsatLimits,
    pub events: Vec<RewriteEvent>,
    pub eqsat: Vec<EqsatReport>,
}

impl PassContext {
    pub fn record(
        &mut self,
        pass: &'static str,
        rule: impl Into<String>,
        node: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.events.push(RewriteEvent {
            pass,
            rule: rule.into(),
            node: node.into(),
            detail: detail.into(),
        });
    }
}

/// Errors of the pass pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// A pass left a graph that does not verify: a bug in the pass, reported with its name.
    #[error("after pass `{pass}` the graph does not verify: {errors}")]
    Verify {
        pass: &'static str,
        errors: IrErrors,
    },
    #[error("pass `{pass}`: {source}")]
    Ir { pass: &'static str, source: IrError },
    #[error("pass `{pass}`: {msg}")]
    Failed { pass: &'static str, msg: String },
    #[error("no pass is called `{name}` (passes: {known})")]
    UnknownPass { name: String, known: String },
    #[error("the input graph does not verify: {0}")]
    Input(IrErrors),
}
