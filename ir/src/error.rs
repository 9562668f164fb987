//! Errors of the IR: each names the node (as the user named it) or the tensor at fault.

use std::fmt;

/// One problem found in a graph, a tensor or a set of inputs.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IrError {
    /// An op's inputs or attributes make no sense (wrong rank, mismatched channels, ...).
    #[error("node `{node}` ({op}): {msg}")]
    Node {
        node: String,
        op: &'static str,
        msg: String,
    },
    /// A node reads a value that nothing defines.
    #[error("node `{node}` reads `{value}`, which is not defined by any input, weight or node")]
    UndefinedValue { node: String, value: String },
    /// Two definitions of one value name.
    #[error("value `{value}` is defined twice (second definition: {by})")]
    DuplicateValue { value: String, by: String },
    /// Two nodes with one name.
    #[error("two nodes are named `{node}`")]
    DuplicateNode { node: String },
    /// A graph output listed twice.
    #[error("graph output `{value}` is listed twice")]
    DuplicateOutput { value: String },
    /// A graph output that nothing defines.
    #[error("graph output `{value}` is not defined")]
    UndefinedOutput { value: String },
    /// A graph that declares no output.
    #[error("the graph has no outputs")]
    NoOutputs,
    /// The graph has a cycle through this node.
    #[error("node `{node}` is part of a cycle")]
    Cycle { node: String },
    /// A tensor's data does not fit its declared shape, or a shape is invalid.
    #[error("tensor `{tensor}`: {msg}")]
    TensorSize { tensor: String, msg: String },
    /// A tensor larger than the memory budget, refused before allocation.
    #[error("tensor `{tensor}` needs {bytes} bytes, over the budget of {budget} bytes")]
    OverBudget {
        tensor: String,
        bytes: u128,
        budget: u64,
    },
    /// A run-time input that is missing, extra, or of the wrong type or shape.
    #[error("input `{input}`: {msg}")]
    Input { input: String, msg: String },
    /// A `.seir` text that does not parse.
    #[error("{line}:{col}: {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    /// Weight file problems (missing weight, wrong shape, unreadable safetensors).
    #[error("weights: {msg}")]
    Weights { msg: String },
}

impl IrError {
    /// Convenience constructor for [`IrError::Node`].
    pub fn node(node: &str, op: &'static str, msg: impl Into<String>) -> IrError {
        IrError::Node {
            node: node.to_string(),
            op,
            msg: msg.into(),
        }
    }
}

/// Every error the verifier found, in graph order.
#[derive(Clone, Debug, PartialEq)]
pub struct IrErrors(pub Vec<IrError>);

impl fmt::Display for IrErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IrErrors {}

impl From<IrError> for IrErrors {
    fn from(e: IrError) -> Self {
        IrErrors(vec![e])
    }
}
