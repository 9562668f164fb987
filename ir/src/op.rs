//! Operators of the graph IR and their attributes.
//!
//! Ops follow ONNX semantics (NCHW layout, NumPy broadcasting) so that an imported model means
//! the same thing here as in ONNX Runtime. Attributes are stored in their canonical, fully
//! spelled-out form: importers fill in defaults, so every later stage sees one representation.
//! Tensors that ONNX passes as inputs but that must be known at compile time (Reshape's target
//! shape, Clip's bounds, ReduceMean's axes from opset 18) are attributes here.

use std::fmt;

/// Attributes of a 2-D convolution. Input `x: [N,C,H,W]`, weight `w: [M, C/group, kH, kW]`,
/// optional bias `b: [M]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    pub strides: [usize; 2],
    /// Padding as `[top, left, bottom, right]` (ONNX's `[h_begin, w_begin, h_end, w_end]`).
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

impl Default for Conv {
    fn default() -> Self {
        Conv {
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
        }
    }
}

/// Attributes of a 2-D pooling window (AveragePool, MaxPool).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// Padding as `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    /// Output size rounds up instead of down (windows starting in the right/bottom padding are
    /// dropped, as ONNX and PyTorch do).
    pub ceil_mode: bool,
    /// AveragePool only: padded positions count in the divisor.
    pub count_include_pad: bool,
}

/// Attributes of Gemm: `Y = alpha * op(A) * op(B) + beta * C`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
        }
    }
}

/// An operator.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// `(x, w[, b])`.
    Conv(Conv),
    /// Inference batch normalization `(x, scale, bias, mean, var)`, per channel (axis 1).
    BatchNorm {
        epsilon: f32,
    },
    Relu,
    Sigmoid,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1/2))`.
    HardSwish,
    /// `x * sigmoid(x)`.
    Silu,
    /// `min(max(x, min), max)`; absent bounds are infinities.
    Clip {
        min: f32,
        max: f32,
    },
    /// Elementwise binary ops with NumPy broadcasting.
    Add,
    Sub,
    Mul,
    Div,
    /// Mean over every axis after the first two, keeping them as size 1.
    GlobalAveragePool,
    /// Mean over `axes` (normalised to non-negative, sorted, unique).
    ReduceMean {
        axes: Vec<usize>,
        keepdims: bool,
    },
    AveragePool(Pool),
    MaxPool(Pool),
    /// `(A, B[, C])`.
    Gemm(Gemm),
    /// NumPy `matmul` (batched, broadcasting leading dims; 1-D operands promoted).
    MatMul,
    /// Flattens to 2-D at `axis` (normalised to `0..=rank`).
    Flatten {
        axis: usize,
    },
    /// ONNX Reshape with the target folded to a constant: `0` copies the input dim (unless
    /// `allowzero`), `-1` is inferred.
    Reshape {
        shape: Vec<i64>,
        allowzero: bool,
    },
    /// Broadcast to `shape` (ONNX Expand semantics: bidirectional broadcasting).
    Expand {
        shape: Vec<i64>,
    },
    /// Concatenation along `axis` (normalised to non-negative).
    Concat {
        axis: usize,
    },
    /// Softmax along `axis` (opset-13 semantics; normalised to non-negative).
    Softmax {
        axis: usize,
    },
    Identity,
    /// Dropout in inference: the identity. Kept as its own op so graphs read as exported.
    Dropout,
}

impl Op {
    /// The operator's name as written in `.seir` and in error messages (ONNX spelling where
    /// ONNX has the op).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::Relu => "Relu",
            Op::Sigmoid => "Sigmoid",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Silu => "Silu",
            Op::Clip { .. } => "Clip",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::AveragePool(_) => "AveragePool",
            Op::MaxPool(_) => "MaxPool",
            Op::Gemm(_) => "Gemm",
            Op::MatMul => "MatMul",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Expand { .. } => "Expand",
            Op::Concat { .. } => "Concat",
            Op::Softmax { .. } => "Softmax",
            Op::Identity => "Identity",
            Op::Dropout => "Dropout",
        }
    }

    /// Allowed number of inputs `(min, max)`; `max == usize::MAX` means variadic.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            Op::Conv(_) => (2, 3),
            Op::BatchNorm { .. } => (5, 5),
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::MatMul => (2, 2),
            Op::Gemm(_) => (2, 3),
            Op::Concat { .. } => (1, usize::MAX),
            _ => (1, 1),
        }
    }

    /// True for ops applied independently to every element of one input.
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::Sigmoid
                | Op::HardSigmoid { .. }
                | Op::HardSwish
                | Op::Silu
                | Op::Clip { .. }
                | Op::Identity
                | Op::Dropout
        )
    }

    /// True for the broadcasting binary ops.
    pub fn is_binary_elementwise(&self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
