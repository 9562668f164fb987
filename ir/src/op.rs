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

/// A pointwise activation, as used inside fused kernels. Each variant is one interpreter case
/// (`interp::act`) and, in the backends, one WGSL and one CLIF emitter case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Relu,
    Sigmoid,
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
    Silu,
    Clip { min: f32, max: f32 },
}

impl Act {
    /// The activation an unfused op computes, if it is one.
    pub fn from_op(op: &Op) -> Option<Act> {
        Some(match *op {
            Op::Relu => Act::Relu,
            Op::Sigmoid => Act::Sigmoid,
            Op::HardSigmoid { alpha, beta } => Act::HardSigmoid { alpha, beta },
            Op::HardSwish => Act::HardSwish,
            Op::Silu => Act::Silu,
            Op::Clip { min, max } => Act::Clip { min, max },
            _ => return None,
        })
    }

    /// The unfused op computing this activation.
    pub fn to_op(self) -> Op {
        match self {
            Act::Relu => Op::Relu,
            Act::Sigmoid => Op::Sigmoid,
            Act::HardSigmoid { alpha, beta } => Op::HardSigmoid { alpha, beta },
            Act::HardSwish => Op::HardSwish,
            Act::Silu => Op::Silu,
            Act::Clip { min, max } => Op::Clip { min, max },
        }
    }

    /// The op name of the activation (`Relu`, `HardSigmoid`, ...).
    pub fn name(self) -> &'static str {
        self.to_op().name()
    }
}

/// A convolution with its epilogue fused: `y = post_act(act(conv(x, w) + b) + r)`.
/// Inputs: `x, w`, then `b` when `bias`, then `r` (same shape as the output) when `residual`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedConv {
    pub conv: Conv,
    pub bias: bool,
    pub act: Option<Act>,
    pub residual: bool,
    /// Applied after the residual add; only meaningful with `residual`.
    pub post_act: Option<Act>,
}

/// A whole Squeeze-and-Excitation block as one kernel:
/// ```text
/// s = mean over (H, W) of x          # [N, C]
/// z = act(W1 · s + b1)               # [N, Cr], W1: [Cr, C, 1, 1]
/// g = gate(W2 · z + b2)              # [N, C],  W2: [C, Cr, 1, 1]
/// y = post_act(x * g + r)            # r and post_act only when `residual`
/// ```
/// Inputs: `x, w1`, `b1` when `bias1`, `w2`, `b2` when `bias2`, `r` when `residual`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeBlock {
    pub act: Act,
    pub gate: Act,
    pub bias1: bool,
    pub bias2: bool,
    pub residual: bool,
    pub post_act: Option<Act>,
}

impl SeBlock {
    /// Positions of `(x, w1, b1, w2, b2, r)` among the node's inputs.
    pub fn input_slots(&self) -> SeSlots {
        let b1 = self.bias1.then_some(2);
        let w2 = 2 + usize::from(self.bias1);
        let b2 = self.bias2.then_some(w2 + 1);
        let r = self.residual.then_some(w2 + 1 + usize::from(self.bias2));
        SeSlots { w2, b1, b2, r }
    }

    pub fn input_count(&self) -> usize {
        3 + usize::from(self.bias1) + usize::from(self.bias2) + usize::from(self.residual)
    }
}

/// Where each input of a [`SeBlock`] node sits (`x` is 0 and `w1` is 1 always).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeSlots {
    pub b1: Option<usize>,
    pub w2: usize,
    pub b2: Option<usize>,
    pub r: Option<usize>,
}

impl FusedConv {
    pub fn input_count(&self) -> usize {
        2 + usize::from(self.bias) + usize::from(self.residual)
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
    /// Fused: a convolution with bias, activation and residual epilogue (see [`FusedConv`]).
    FusedConv(FusedConv),
    /// Fused: a whole SE block, optionally with the residual add and activation after it.
    SeBlock(SeBlock),
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
            Op::FusedConv(_) => "FusedConv",
            Op::SeBlock(_) => "SeBlock",
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
            Op::FusedConv(f) => (f.input_count(), f.input_count()),
            Op::SeBlock(se) => (se.input_count(), se.input_count()),
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

    /// True for ops that passes created by fusing several ops into one kernel.
    pub fn is_fused(&self) -> bool {
        matches!(self, Op::FusedConv(_) | Op::SeBlock(_))
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
