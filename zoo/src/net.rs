//! The builder every model file uses: a [`Graph`] under construction plus the seeded random
//! number generator that fills its weights.
//!
//! Each method adds one layer the way PyTorch defines it (a `Conv2d`, a `BatchNorm2d`, an SE
//! module, ...), creating its weights under timm's state-dict names (`{layer}.weight`,
//! `{layer}.running_mean`, ...) and naming the node and its output value after the layer.
//! Activations carry their channel count ([`T`]) because node output types are only known once
//! the finished graph is verified.
//!
//! Weights are random but well scaled, so that activations neither explode nor vanish through a
//! hundred layers: He-normal convolutions and FCs (`std = sqrt(2 / fan_in)`), small biases, and
//! non-trivial BatchNorm statistics (`gamma ~ U(0.5, 1.5)`, `beta ~ N(0, 0.1)`,
//! `mean ~ N(0, 0.1)`, `var ~ U(0.5, 2)`). Model files scale the last BatchNorm of residual
//! branches down so that the residual stream grows slowly with depth.

use std::sync::Arc;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{Dim, Graph, IrError, Op, Shape, Tensor, TensorType, ValueId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A value being built and its channel count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct T {
    pub v: ValueId,
    pub c: usize,
}

/// A convolution's shape: kernel, stride, padding, groups and whether it has a bias.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cv {
    k: [usize; 2],
    stride: usize,
    /// `[top, left, bottom, right]`.
    pads: [usize; 4],
    group: usize,
    bias: bool,
}

impl Cv {
    /// A square `k x k` kernel, stride 1, padding `k / 2` (PyTorch "same" for odd kernels).
    pub fn k(k: usize) -> Cv {
        Cv::rect(k, k)
    }

    /// A `kh x kw` kernel, stride 1, padding `kh / 2` and `kw / 2`.
    pub fn rect(kh: usize, kw: usize) -> Cv {
        Cv {
            k: [kh, kw],
            stride: 1,
            pads: [kh / 2, kw / 2, kh / 2, kw / 2],
            group: 1,
            bias: false,
        }
    }

    pub fn stride(self, stride: usize) -> Cv {
        Cv { stride, ..self }
    }

    /// Symmetric padding `p` on every side.
    pub fn pad(self, p: usize) -> Cv {
        Cv {
            pads: [p; 4],
            ..self
        }
    }

    pub fn groups(self, group: usize) -> Cv {
        Cv { group, ..self }
    }

    pub fn bias(self) -> Cv {
        Cv { bias: true, ..self }
    }
}

/// A square pooling window: kind, size, stride, padding and rounding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pl {
    max: bool,
    k: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
    count_pad: bool,
}

impl Pl {
    /// `nn.MaxPool2d(k, stride)`: no padding, floor rounding.
    pub fn max(k: usize, stride: usize) -> Pl {
        Pl {
            max: true,
            k,
            stride,
            pad: 0,
            ceil: false,
            count_pad: false,
        }
    }

    /// `nn.AvgPool2d(k, stride)`: no padding, floor rounding, padding not counted.
    pub fn avg(k: usize, stride: usize) -> Pl {
        Pl {
            max: false,
            ..Pl::max(k, stride)
        }
    }

    pub fn pad(self, pad: usize) -> Pl {
        Pl { pad, ..self }
    }

    /// `ceil_mode=True`.
    pub fn ceil(self) -> Pl {
        Pl { ceil: true, ..self }
    }

    /// `count_include_pad=True` (average pools).
    pub fn count_pad(self) -> Pl {
        Pl {
            count_pad: true,
            ..self
        }
    }
}

/// Activation functions the zoo's networks use.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Act {
    Relu,
    Silu,
    HardSwish,
    Sigmoid,
    /// MobileNetV3's gate: `relu6(x + 3) / 6`.
    HardSigmoid,
}

impl Act {
    fn op(self) -> Op {
        match self {
            Act::Relu => Op::Relu,
            Act::Silu => Op::Silu,
            Act::HardSwish => Op::HardSwish,
            Act::Sigmoid => Op::Sigmoid,
            Act::HardSigmoid => Op::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
        }
    }
}

/// How an SE module is built: its layer names and functions (they differ between families).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Se {
    /// Names of the two FC layers under the module's prefix (`fc1`/`fc2`, or
    /// `conv_reduce`/`conv_expand` in the EfficientNet family).
    pub fc: [&'static str; 2],
    pub act: Act,
    pub gate: Act,
}

/// timm's `SEModule` (and the legacy SENet one): ReLU inside, sigmoid gate.
pub(crate) const SE_RELU_SIGMOID: Se = Se {
    fc: ["fc1", "fc2"],
    act: Act::Relu,
    gate: Act::Sigmoid,
};

/// The network under construction.
#[derive(Debug)]
pub(crate) struct Net {
    g: Graph,
    rng: ChaCha8Rng,
}

impl Net {
    /// A graph with input `input: f32[N, 3, size, size]`.
    pub fn new(name: &str, size: usize, seed: u64) -> Result<(Net, T), IrError> {
        let mut g = Graph::new(name);
        let ty = TensorType::f32(Shape(vec![
            Dim::Batch,
            Dim::Fixed(3),
            Dim::Fixed(size),
            Dim::Fixed(size),
        ]));
        let v = g.add_input("input", ty)?;
        let net = Net {
            g,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        Ok((net, T { v, c: 3 }))
    }

    /// The finished graph with `out` as its only output (not yet verified).
    pub fn finish(mut self, out: ValueId) -> Result<Graph, IrError> {
        self.g.add_output(out)?;
        Ok(self.g)
    }

    fn weight(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<ValueId, IrError> {
        let t = Tensor::new(shape.to_vec(), data).map_err(|e| match e {
            IrError::TensorSize { msg, .. } => IrError::TensorSize {
                tensor: name.to_string(),
                msg,
            },
            other => other,
        })?;
        self.g.add_weight(name, Arc::new(t))
    }

    /// Adds a node named `name` whose single output is also called `name`.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, IrError> {
        self.node_out(name, name, op, inputs)
    }

    fn node_out(
        &mut self,
        name: &str,
        out: &str,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, IrError> {
        let id = self.g.add_node(name, op, inputs, &[out])?;
        Ok(self.g.node(id).outputs[0])
    }

    /// `n` samples of `N(0, std^2)` (Box-Muller on the seeded stream).
    fn normal(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // 1 - u lies in (0, 1], so the logarithm is finite.
            let u1: f32 = 1.0 - self.rng.random::<f32>();
            let u2: f32 = self.rng.random::<f32>();
            let r = (-2.0 * u1.ln()).sqrt() * std;
            let (s, c) = (std::f32::consts::TAU * u2).sin_cos();
            out.push(r * c);
            out.push(r * s);
        }
        out.truncate(n);
        out
    }

    /// `n` samples of `U(lo, hi)`.
    fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| lo + (hi - lo) * self.rng.random::<f32>())
            .collect()
    }

    /// `nn.Conv2d(x.c, cout, ...)`: weight `[cout, x.c / group, kh, kw]`, He-normal.
    pub fn conv(&mut self, name: &str, x: T, cout: usize, cv: Cv) -> Result<T, IrError> {
        if cv.group == 0 || !x.c.is_multiple_of(cv.group) || !cout.is_multiple_of(cv.group) {
            return Err(IrError::node(
                name,
                "Conv",
                format!(
                    "{} -> {cout} channels do not split into {} groups",
                    x.c, cv.group
                ),
            ));
        }
        let cin = x.c / cv.group;
        let fan_in = cin * cv.k[0] * cv.k[1];
        let std = (2.0 / fan_in as f32).sqrt();
        let data = self.normal(cout * fan_in, std);
        let w = self.weight(
            &format!("{name}.weight"),
            &[cout, cin, cv.k[0], cv.k[1]],
            data,
        )?;
        let mut inputs = vec![x.v, w];
        if cv.bias {
            let data = self.normal(cout, 0.05);
            inputs.push(self.weight(&format!("{name}.bias"), &[cout], data)?);
        }
        let op = Op::Conv(Conv {
            strides: [cv.stride; 2],
            pads: cv.pads,
            dilations: [1, 1],
            group: cv.group,
        });
        let v = self.node(name, op, &inputs)?;
        Ok(T { v, c: cout })
    }

    /// `nn.BatchNorm2d(x.c, eps)` with random statistics; `gamma_scale` shrinks the scale of the
    /// last BatchNorm of a residual branch.
    pub fn bn(&mut self, name: &str, x: T, eps: f32, gamma_scale: f32) -> Result<T, IrError> {
        let c = x.c;
        let gamma: Vec<f32> = self
            .uniform(c, 0.5, 1.5)
            .into_iter()
            .map(|g| g * gamma_scale)
            .collect();
        let beta = self.normal(c, 0.1);
        let mean = self.normal(c, 0.1);
        let var = self.uniform(c, 0.5, 2.0);
        let ws = [
            self.weight(&format!("{name}.weight"), &[c], gamma)?,
            self.weight(&format!("{name}.bias"), &[c], beta)?,
            self.weight(&format!("{name}.running_mean"), &[c], mean)?,
            self.weight(&format!("{name}.running_var"), &[c], var)?,
        ];
        let v = self.node(
            name,
            Op::BatchNorm { epsilon: eps },
            &[x.v, ws[0], ws[1], ws[2], ws[3]],
        )?;
        Ok(T { v, c })
    }

    pub fn act(&mut self, name: &str, x: T, a: Act) -> Result<T, IrError> {
        let v = self.node(name, a.op(), &[x.v])?;
        Ok(T { v, c: x.c })
    }

    /// Elementwise `a + b` (a residual join).
    pub fn add(&mut self, name: &str, a: T, b: T) -> Result<T, IrError> {
        if a.c != b.c {
            return Err(IrError::node(
                name,
                "Add",
                format!("adds {} channels to {}", a.c, b.c),
            ));
        }
        let v = self.node(name, Op::Add, &[a.v, b.v])?;
        Ok(T { v, c: a.c })
    }

    /// `x * s` with `s` a rank-0 constant `{name}.value` (not a trainable parameter).
    pub fn scale(&mut self, name: &str, x: T, s: f32) -> Result<T, IrError> {
        let w = self.weight(&format!("{name}.value"), &[], vec![s])?;
        let v = self.node(name, Op::Mul, &[x.v, w])?;
        Ok(T { v, c: x.c })
    }

    /// A squeeze-and-excitation module under `prefix` with `rd` reduced channels:
    /// `x * gate(fc2(act(fc1(mean_hw(x)))))`, the FCs as 1x1 convolutions with bias.
    pub fn se(&mut self, prefix: &str, x: T, rd: usize, se: Se) -> Result<T, IrError> {
        let s = self.node(&format!("{prefix}.pool"), Op::GlobalAveragePool, &[x.v])?;
        let s = T { v: s, c: x.c };
        let z = self.conv(&format!("{prefix}.{}", se.fc[0]), s, rd, Cv::k(1).bias())?;
        let z = self.act(&format!("{prefix}.act"), z, se.act)?;
        let g = self.conv(&format!("{prefix}.{}", se.fc[1]), z, x.c, Cv::k(1).bias())?;
        let g = self.act(&format!("{prefix}.gate"), g, se.gate)?;
        let v = self.node(&format!("{prefix}.mul"), Op::Mul, &[x.v, g.v])?;
        Ok(T { v, c: x.c })
    }

    /// A max or average pool.
    pub fn pool(&mut self, name: &str, x: T, pl: Pl) -> Result<T, IrError> {
        let attrs = Pool {
            kernel: [pl.k; 2],
            strides: [pl.stride; 2],
            pads: [pl.pad; 4],
            dilations: [1, 1],
            ceil_mode: pl.ceil,
            count_include_pad: pl.count_pad,
        };
        let op = if pl.max {
            Op::MaxPool(attrs)
        } else {
            Op::AveragePool(attrs)
        };
        let v = self.node(name, op, &[x.v])?;
        Ok(T { v, c: x.c })
    }

    pub fn global_pool(&mut self, name: &str, x: T) -> Result<T, IrError> {
        let v = self.node(name, Op::GlobalAveragePool, &[x.v])?;
        Ok(T { v, c: x.c })
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, name: &str, xs: &[T]) -> Result<T, IrError> {
        let vs: Vec<ValueId> = xs.iter().map(|x| x.v).collect();
        let v = self.node(name, Op::Concat { axis: 1 }, &vs)?;
        Ok(T {
            v,
            c: xs.iter().map(|x| x.c).sum(),
        })
    }

    /// The classifier on pooled features `x: [N, C, 1, 1]`: `Flatten`, optional `Dropout`,
    /// then `Gemm` (`nn.Linear(C, classes)`) named `fc` whose output is `logits`.
    pub fn classifier(
        &mut self,
        x: T,
        fc: &str,
        classes: usize,
        dropout: bool,
    ) -> Result<ValueId, IrError> {
        let mut v = self.node("flatten", Op::Flatten { axis: 1 }, &[x.v])?;
        if dropout {
            v = self.node("dropout", Op::Dropout, &[v])?;
        }
        let std = (2.0 / x.c as f32).sqrt();
        let data = self.normal(classes * x.c, std);
        let w = self.weight(&format!("{fc}.weight"), &[classes, x.c], data)?;
        let data = self.normal(classes, 0.05);
        let b = self.weight(&format!("{fc}.bias"), &[classes], data)?;
        let gemm = Op::Gemm(Gemm {
            trans_b: true,
            ..Gemm::default()
        });
        self.node_out(fc, "logits", gemm, &[v, w, b])
    }
}

/// timm's `make_divisible`: the multiple of `divisor` nearest to `v` (at least `divisor`), moved
/// up one step when rounding lost more than `1 - round_limit` of `v`.
pub(crate) fn make_divisible(v: f64, divisor: usize, round_limit: f64) -> usize {
    let d = divisor as f64;
    let mut n = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (n as f64) < round_limit * v {
        n += divisor;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_timm() {
        // Values checked against timm's formula by hand: int(v + 4) // 8 * 8, then the 0.9 rule.
        let cases = [
            (16.0 * 0.25, 8),
            (72.0 * 0.25, 24),
            (120.0 * 0.25, 32),
            (184.0, 184),
            (80.0 * 2.3, 184),
            (80.0 * 2.5, 200),
            (672.0 * 0.25, 168),
            (10.0, 16),
            (12.0, 16),
        ];
        for (v, want) in cases {
            assert_eq!(make_divisible(v, 8, 0.9), want, "make_divisible({v})");
        }
        assert_eq!(make_divisible(100.0, 8, 0.0), 104);
    }

    #[test]
    fn normal_samples_have_the_requested_spread() {
        let (mut net, _) = Net::new("t", 8, 7).expect("net");
        let xs = net.normal(20_001, 0.5);
        assert_eq!(xs.len(), 20_001);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
    }
}
