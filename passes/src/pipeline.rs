//! The pass pipeline: one explicit, ordered list.

use std::time::{Duration, Instant};

use excite_ir::{Graph, verify::verify};

use crate::pass::{EqsatLimits, Pass, PassContext, PassError};
use crate::{canonicalize, const_fold, dce, fold_bn, fuse, remove_identity};

/// Every pass, in the order `optimize` runs them.
pub fn passes() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(remove_identity::RemoveIdentity),
        Box::new(const_fold::ConstFold),
        Box::new(fold_bn::FoldBatchNorm),
        Box::new(canonicalize::Canonicalize),
        Box::new(dce::Dce),
        Box::new(fuse::Fuse),
        Box::new(dce::Dce),
    ]
}

/// How to run the pipeline.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop after the first pass with this name (`--after NAME`).
    pub after: Option<String>,
    /// Verify after every pass (default: in debug builds and tests).
    pub verify_each: bool,
    pub limits: EqsatLimits,
}

// Not derivable in debug builds (`verify_each` follows `debug_assertions`); clippy in release
// builds sees a derivable impl.
#[allow(clippy::derivable_impls)]
impl Default for Options {
    fn default() -> Self {
        Options {
            after: None,
            verify_each: cfg!(debug_assertions),
            limits: EqsatLimits::default(),
        }
    }
}

/// The optimised graph and what happened on the way.
#[derive(Debug)]
pub struct Optimized {
    pub graph: Graph,
    pub context: PassContext,
    /// Wall time of each pass run, in order.
    pub timings: Vec<(&'static str, Duration)>,
}

/// Runs the pipeline (up to `opts.after`) on a graph.
pub fn optimize(mut g: Graph, opts: &Options) -> Result<Optimized, PassError> {
    let list = passes();
    if let Some(name) = &opts.after
        && !list.iter().any(|p| p.name() == name)
    {
        let mut known: Vec<_> = list.iter().map(|p| p.name()).collect();
        known.dedup();
        return Err(PassError::UnknownPass {
            name: name.clone(),
            known: known.join(", "),
        });
    }
    verify(&mut g).map_err(PassError::Input)?;
    let mut cx = PassContext {
        limits: opts.limits.clone(),
        ..PassContext::default()
    };
    let mut timings = Vec::new();
    for pass in list {
        let t = Instant::now();
        pass.run(&mut g, &mut cx)?;
        if opts.verify_each {
            verify(&mut g).map_err(|errors| PassError::Verify {
                pass: pass.name(),
                errors,
            })?;
        }
        timings.push((pass.name(), t.elapsed()));
        if opts.after.as_deref() == Some(pass.name()) {
            break;
        }
    }
    // Types must be current for the caller even when verify_each is off.
    verify(&mut g).map_err(|errors| PassError::Verify {
        pass: "pipeline",
        errors,
    })?;
    Ok(Optimized {
        graph: g,
        context: cx,
        timings,
    })
}
