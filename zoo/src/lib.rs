//! excite's model zoo: the SE networks of the SENet paper and their baselines, built through
//! the IR API with seeded random weights.
//!
//! Every network follows its public definition (timm, or Cadene's `pretrainedmodels` for
//! BN-Inception) layer for layer, so its trainable parameter count equals the published one
//! exactly; layer, node and weight names are timm's state-dict keys (`layer1.0.conv1`,
//! `layer1.0.se.fc1.weight`). The graph input is `input: f32[N, 3, S, S]`, the output
//! `logits: f32[N, classes]`. [`build`] verifies the graph before returning it.
//!
//! Parameter counts are [`excite_ir::stats::trainable_params`]: BatchNorm running statistics
//! are stored as weights but, as in PyTorch, are buffers and not counted.
//!
//! Architecture invariant: the zoo only builds graphs; it does no I/O and runs nothing.

mod bn_inception;
mod efficientnet;
mod inception_resnet;
mod models;
mod net;
mod regnet;
mod resnet;
mod senet154;

use excite_ir::{Graph, IrError, IrErrors};

pub use models::list;

/// What the zoo knows about one network.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// Default input resolution (the graph input is `[N, 3, input_size, input_size]`).
    pub input_size: usize,
    /// Number of squeeze-and-excitation blocks (0 for the baselines).
    pub se_blocks: usize,
    /// Trainable parameters with 1000 classes, from `SPEC.md` (measured from timm); `None`
    /// where no published count exists.
    pub expected_params: Option<u64>,
    /// Published GMACs at `input_size` (`SPEC.md`, or the SENet paper where noted).
    pub expected_gmacs: Option<f64>,
}

/// How to build a network.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildOptions {
    /// Seed of the weights' random stream (ChaCha8).
    pub seed: u64,
    /// Input resolution; `None` takes the model's default. Smaller inputs keep tests fast.
    pub input_size: Option<usize>,
    /// Classifier outputs.
    pub classes: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            seed: 0,
            input_size: None,
            classes: 1000,
        }
    }
}

/// Why a network could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZooError {
    #[error("unknown model `{name}`; the zoo has: {known}")]
    Unknown { name: String, known: String },
    #[error("model `{model}`: {msg}")]
    Options { model: String, msg: String },
    #[error("model `{model}`: {source}")]
    Build {
        model: String,
        #[source]
        source: IrError,
    },
    /// The graph does not verify, typically because the input is too small for the network's
    /// unpadded convolutions and pools.
    #[error("model `{model}` does not verify at input size {input_size}: {source}")]
    Verify {
        model: String,
        input_size: usize,
        #[source]
        source: IrErrors,
    },
}

/// The network called `name` (see [`list`]), verified.
pub fn build(name: &str, opts: &BuildOptions) -> Result<Graph, ZooError> {
    let info = list()
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ZooError::Unknown {
            name: name.to_string(),
            known: list().iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
        })?;
    let size = opts.input_size.unwrap_or(info.input_size);
    if size == 0 || opts.classes == 0 {
        return Err(ZooError::Options {
            model: name.to_string(),
            msg: format!(
                "input size ({size}) and classes ({}) must be positive",
                opts.classes
            ),
        });
    }
    let mut g = models::build_graph(name, size, opts).map_err(|source| ZooError::Build {
        model: name.to_string(),
        source,
    })?;
    excite_ir::verify::verify(&mut g).map_err(|source| ZooError::Verify {
        model: name.to_string(),
        input_size: size,
        source,
    })?;
    Ok(g)
}
