//! The errors of ONNX import and export. Every variant names what is at fault: the node (by its
//! ONNX name, or `<op_type>_<index>` when it has none) and its op, or the tensor or value.

use excite_ir::{IrError, IrErrors};

/// Why a model could not be imported or a graph exported.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {msg}")]
    Decode { msg: String },
    /// The model as a whole is unusable (no graph, ...).
    #[error("model: {msg}")]
    Model { msg: String },
    /// The model's opset for `domain` is missing or outside what the importer reads.
    #[error("opset: domain `{domain}` version {version}: {msg}")]
    Opset {
        domain: String,
        version: i64,
        msg: String,
    },
    /// A node whose op the importer does not know.
    #[error("node `{node}`: op `{op}` (opset {opset}) is not supported")]
    UnsupportedOp {
        node: String,
        op: String,
        opset: i64,
    },
    /// A node attribute that is unknown, of the wrong type, or with an unsupported value.
    #[error("node `{node}` ({op}): attribute `{attr}`: {msg}")]
    UnsupportedAttribute {
        node: String,
        op: String,
        attr: String,
        msg: String,
    },
    /// A node that uses an op in a way the importer does not support (an extra output in use,
    /// an input that must be constant but is computed at run time, ...).
    #[error("node `{node}` ({op}): {msg}")]
    Unsupported {
        node: String,
        op: String,
        msg: String,
    },
    /// A shape subgraph that could not be evaluated at import time.
    #[error("node `{node}` ({op}): cannot fold to a constant: {msg}")]
    Fold {
        node: String,
        op: String,
        msg: String,
    },
    /// A graph input or output whose declared type the importer cannot use.
    #[error("graph input/output `{value}`: {msg}")]
    Value { value: String, msg: String },
    /// An initializer (or a `Constant`'s tensor) whose data does not fit its declaration.
    #[error("tensor `{tensor}`: {msg}")]
    Initializer { tensor: String, msg: String },
    /// A tensor stored outside the model file; external data is never read.
    #[error(
        "tensor `{tensor}` keeps its data in an external file, which is not supported; \
         save the model with its weights inside (onnx.save(..., save_as_external_data=False))"
    )]
    ExternalData { tensor: String },
    /// A tensor (initializer, folded constant, graph input at batch 1, or node output at
    /// batch 1) larger than the memory budget, refused before anything was allocated.
    #[error("tensor `{tensor}` needs {bytes} bytes, over the memory budget of {budget} bytes")]
    OverBudget {
        tensor: String,
        bytes: u128,
        budget: u64,
    },
    /// Errors reported by the IR (graph structure, shape inference).
    #[error("{0}")]
    Ir(IrErrors),
    /// A graph that cannot be written as ONNX.
    #[error("export: node `{node}`: {msg}")]
    Export { node: String, msg: String },
}

impl From<IrErrors> for OnnxError {
    fn from(e: IrErrors) -> Self {
        OnnxError::Ir(e)
    }
}

impl From<IrError> for OnnxError {
    fn from(e: IrError) -> Self {
        OnnxError::Ir(IrErrors(vec![e]))
    }
}

impl OnnxError {
    /// A short name of the variant (for IR errors, `Ir.` and the first IR error's variant), for
    /// tests and tools that classify failures.
    pub fn kind(&self) -> &'static str {
        match self {
            OnnxError::Decode { .. } => "Decode",
            OnnxError::Model { .. } => "Model",
            OnnxError::Opset { .. } => "Opset",
            OnnxError::UnsupportedOp { .. } => "UnsupportedOp",
            OnnxError::UnsupportedAttribute { .. } => "UnsupportedAttribute",
            OnnxError::Unsupported { .. } => "Unsupported",
            OnnxError::Fold { .. } => "Fold",
            OnnxError::Value { .. } => "Value",
            OnnxError::Initializer { .. } => "Initializer",
            OnnxError::ExternalData { .. } => "ExternalData",
            OnnxError::OverBudget { .. } => "OverBudget",
            OnnxError::Export { .. } => "Export",
            OnnxError::Ir(IrErrors(es)) => match es.first() {
                Some(IrError::Node { .. }) => "Ir.Node",
                Some(IrError::UndefinedValue { .. }) => "Ir.UndefinedValue",
                Some(IrError::DuplicateValue { .. }) => "Ir.DuplicateValue",
                Some(IrError::DuplicateNode { .. }) => "Ir.DuplicateNode",
                Some(IrError::DuplicateOutput { .. }) => "Ir.DuplicateOutput",
                Some(IrError::UndefinedOutput { .. }) => "Ir.UndefinedOutput",
                Some(IrError::NoOutputs) => "Ir.NoOutputs",
                Some(IrError::Cycle { .. }) => "Ir.Cycle",
                Some(IrError::TensorSize { .. }) => "Ir.TensorSize",
                Some(IrError::OverBudget { .. }) => "Ir.OverBudget",
                _ => "Ir",
            },
        }
    }
}
