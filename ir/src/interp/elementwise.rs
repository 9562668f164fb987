//! Elementwise kernels: activations, the broadcasting binary ops and inference BatchNorm.
//!
//! Transcendental and multi-step activations are computed in `f64` and rounded once; the four
//! binary ops are computed in `f32`, which is already exact to the last bit for one operation.
//! NaN inputs stay NaN, as in NumPy.

use super::Cx;
use super::broadcast::Offsets;
use crate::error::IrError;
use crate::op::{Act, Op};
use crate::tensor::Tensor;

/// `1 / (1 + e^-x)`, which saturates to 0 or 1 without overflow trouble in `f64`.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One activation on one value: the reference every backend's emitter case is checked against.
pub fn act(a: Act, v: f32) -> f32 {
    match a {
        Act::Relu => {
            if v < 0.0 {
                0.0
            } else {
                v
            }
        }
        Act::Sigmoid => sigmoid(f64::from(v)) as f32,
        Act::HardSigmoid { alpha, beta } => {
            (f64::from(alpha) * f64::from(v) + f64::from(beta)).clamp(0.0, 1.0) as f32
        }
        Act::HardSwish => {
            let v = f64::from(v);
            (v * (v / 6.0 + 0.5).clamp(0.0, 1.0)) as f32
        }
        Act::Silu => {
            let v = f64::from(v);
            (v * sigmoid(v)) as f32
        }
        // ONNX (and NumPy's clip) give `max` everywhere when min > max; NaN stays NaN.
        Act::Clip { min, max } => {
            if v.is_nan() {
                v
            } else {
                v.max(min).min(max)
            }
        }
    }
}

/// Applies a unary elementwise op.
pub(super) fn unary(cx: &Cx<'_>, op: &Op, x: &Tensor) -> Result<Vec<f32>, IrError> {
    if matches!(op, Op::Identity | Op::Dropout) {
        return Ok(x.data().to_vec());
    }
    let a = Act::from_op(op)
        .ok_or_else(|| cx.err(format!("{} is not a unary elementwise op", op.name())))?;
    Ok(x.data().iter().map(|&v| act(a, v)).collect())
}

/// Applies Add, Sub, Mul or Div with NumPy broadcasting of both operands to `out`.
pub(super) fn binary(
    cx: &Cx<'_>,
    op: &Op,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    let f: fn(f32, f32) -> f32 = match op {
        Op::Add => |x, y| x + y,
        Op::Sub => |x, y| x - y,
        Op::Mul => |x, y| x * y,
        Op::Div => |x, y| x / y,
        other => return Err(cx.err(format!("{} is not a binary elementwise op", other.name()))),
    };
    let ia = Offsets::new(a.shape(), out).map_err(|m| cx.err(m))?;
    let ib = Offsets::new(b.shape(), out).map_err(|m| cx.err(m))?;
    let (da, db) = (a.data(), b.data());
    Ok(ia.zip(ib).map(|(i, j)| f(da[i], db[j])).collect())
}

/// Inference BatchNormalization over axis 1:
/// `(x - mean) / sqrt(var + epsilon) * scale + bias`, inputs `(x, scale, bias, mean, var)`.
pub(super) fn batch_norm(cx: &Cx<'_>, epsilon: f32, ins: &[&Tensor]) -> Result<Vec<f32>, IrError> {
    let &[x, scale, bias, mean, var] = ins else {
        return Err(cx.err(format!("takes 5 inputs, got {}", ins.len())));
    };
    let dims = x.shape();
    if dims.len() < 2 {
        return Err(cx.err(format!("input must have rank >= 2, got {dims:?}")));
    }
    let channels = dims[1];
    let inner: usize = dims[2..].iter().product();
    for (name, p) in [
        ("scale", scale),
        ("bias", bias),
        ("mean", mean),
        ("var", var),
    ] {
        if p.shape() != [channels] {
            return Err(cx.err(format!(
                "{name} has shape {:?}, expected [{channels}]",
                p.shape()
            )));
        }
    }
    let eps = f64::from(epsilon);
    let mut y = Vec::with_capacity(x.numel());
    // Chunks of `inner` elements cycle through the channels (batch-major).
    for (k, chunk) in x.data().chunks(inner.max(1)).enumerate() {
        let c = k % channels.max(1);
        let (m, s, b) = (
            f64::from(mean.data()[c]),
            f64::from(scale.data()[c]),
            f64::from(bias.data()[c]),
        );
        let denom = (f64::from(var.data()[c]) + eps).sqrt();
        y.extend(
            chunk
                .iter()
                .map(|&v| ((f64::from(v) - m) / denom * s + b) as f32),
        );
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::interp::eval_op;
    use crate::op::Op;
    use crate::tensor::Tensor;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
    }

    fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        t(
            shape,
            &(0..n)
                .map(|_| rng.random_range(-3.0f32..3.0))
                .collect::<Vec<_>>(),
        )
    }

    fn eval(op: Op, ins: &[&Tensor]) -> Tensor {
        eval_op("n", &op, ins).expect("eval")
    }

    fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn activations_at_hand_checked_points() {
        let x = t(&[6], &[-4.0, -1.0, 0.0, 1.0, 3.0, 10.0]);
        // Relu zeroes the negatives.
        assert_eq!(
            eval(Op::Relu, &[&x]).data(),
            [0.0, 0.0, 0.0, 1.0, 3.0, 10.0]
        );
        // Sigmoid(0) = 1/2, Sigmoid(1) = 1/(1+e^-1) = 0.7310586, Sigmoid(-1) = 1 - that.
        let s = eval(Op::Sigmoid, &[&x]);
        assert_close(&s.data()[1..4], &[0.26894143, 0.5, 0.7310586], 1e-7);
        // HardSigmoid(0.2, 0.5): -4 -> 0 (clamped from -0.3), -1 -> 0.3, 0 -> 0.5, 1 -> 0.7,
        // 3 -> 1 (clamped from 1.1), 10 -> 1.
        let hs = eval(
            Op::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            &[&x],
        );
        assert_close(hs.data(), &[0.0, 0.3, 0.5, 0.7, 1.0, 1.0], 1e-7);
        // HardSwish(x) = x * clamp(x/6 + 1/2, 0, 1): -4 -> 0, -1 -> -1/3, 0 -> 0, 1 -> 2/3,
        // 3 -> 3, 10 -> 10.
        let hw = eval(Op::HardSwish, &[&x]);
        assert_close(
            hw.data(),
            &[0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 3.0, 10.0],
            1e-7,
        );
        // Silu(x) = x * sigmoid(x): Silu(1) = 0.7310586, Silu(-1) = -0.26894143.
        let si = eval(Op::Silu, &[&x]);
        assert_close(&si.data()[1..4], &[-0.26894143, 0.0, 0.7310586], 1e-7);
        // Clip to [-1, 2].
        let c = eval(
            Op::Clip {
                min: -1.0,
                max: 2.0,
            },
            &[&x],
        );
        assert_eq!(c.data(), [-1.0, -1.0, 0.0, 1.0, 2.0, 2.0]);
        // Identity and Dropout copy.
        assert_eq!(eval(Op::Identity, &[&x]), x);
        assert_eq!(eval(Op::Dropout, &[&x]), x);
    }

    #[test]
    fn activations_keep_nan_and_saturate() {
        let x = t(&[3], &[f32::NAN, -1000.0, 1000.0]);
        for op in [
            Op::Relu,
            Op::Sigmoid,
            Op::Silu,
            Op::HardSwish,
            Op::Clip { min: 0.0, max: 1.0 },
        ] {
            let y = eval(op.clone(), &[&x]);
            assert!(y.data()[0].is_nan(), "{op}: NaN not kept");
            assert!(
                y.data()[1..].iter().all(|v| v.is_finite()),
                "{op}: {:?}",
                y.data()
            );
        }
        // Sigmoid saturates exactly, without overflow to NaN.
        assert_eq!(eval(Op::Sigmoid, &[&x]).data()[1..], [0.0, 1.0]);
    }

    #[test]
    fn binary_identities_on_random_tensors() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = random(&mut rng, &[2, 3, 4]);
        let y = t(
            &[2, 3, 4],
            &random(&mut rng, &[24])
                .data()
                .iter()
                .map(|v| v + 4.0)
                .collect::<Vec<_>>(),
        );
        // x - x = 0 exactly.
        assert!(eval(Op::Sub, &[&x, &x]).data().iter().all(|&v| v == 0.0));
        // (x * y) / y = x up to two roundings (y lies in [1, 7], away from 0).
        let xy = eval(Op::Mul, &[&x, &y]);
        assert_close(eval(Op::Div, &[&xy, &y]).data(), x.data(), 1e-6);
        // (x + y) - y = x up to rounding.
        let s = eval(Op::Add, &[&x, &y]);
        assert_close(eval(Op::Sub, &[&s, &y]).data(), x.data(), 1e-6);
    }

    #[test]
    fn binary_broadcasts_like_numpy() {
        // [2,1,3] * [4,1] -> [2,4,3], out[i,j,k] = a[i,0,k] * b[j,0].
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let a = random(&mut rng, &[2, 1, 3]);
        let b = random(&mut rng, &[4, 1]);
        let y = eval(Op::Mul, &[&a, &b]);
        assert_eq!(y.shape(), [2, 4, 3]);
        let mut compared = 0;
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    assert_eq!(
                        y.data()[(i * 4 + j) * 3 + k],
                        a.data()[i * 3 + k] * b.data()[j]
                    );
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 24);
        // Scalar on either side: 10 - [1,2] = [9,8]; [1,2] / 2 = [0.5, 1].
        let v = t(&[2], &[1.0, 2.0]);
        assert_eq!(
            eval(Op::Sub, &[&Tensor::scalar(10.0), &v]).data(),
            [9.0, 8.0]
        );
        assert_eq!(
            eval(Op::Div, &[&v, &Tensor::scalar(2.0)]).data(),
            [0.5, 1.0]
        );
    }

    #[test]
    fn binary_rejects_incompatible_shapes() {
        let err = eval_op(
            "add1",
            &Op::Add,
            &[&t(&[2, 3], &[1.0; 6]), &t(&[4], &[1.0; 4])],
        );
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "add1",
                    op: "Add",
                    msg: "shapes [2,3] and [4] do not broadcast",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }

    #[test]
    fn batch_norm_per_channel() {
        // Channel 0: mean 1, var 3, eps 1 -> (x - 1) / 2 * 2 + 0.5, so 3 -> 2.5 and 1 -> 0.5.
        // Channel 1: mean 0, var 0.75, eps 1 -> x / sqrt(1.75) * 1 - 1, so 0 -> -1.
        let x = t(&[1, 2, 2], &[3.0, 1.0, 0.0, 1.75f32.sqrt()]);
        let y = eval(
            Op::BatchNorm { epsilon: 1.0 },
            &[
                &x,
                &t(&[2], &[2.0, 1.0]),
                &t(&[2], &[0.5, -1.0]),
                &t(&[2], &[1.0, 0.0]),
                &t(&[2], &[3.0, 0.75]),
            ],
        );
        assert_close(y.data(), &[2.5, 0.5, -1.0, 0.0], 1e-6);
    }

    #[test]
    fn expand_repeats_a_column() {
        // [3,1] expanded to [2,3,2]: every row i of each block holds x[i] twice.
        let x = t(&[3, 1], &[1.0, 2.0, 3.0]);
        let y = eval(
            Op::Expand {
                shape: vec![2, 1, 2],
            },
            &[&x],
        );
        assert_eq!(y.shape(), [2, 3, 2]);
        assert_eq!(
            y.data(),
            [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
    }
}
