//! Data-movement ops: Concat here; Flatten, Reshape, Identity and Dropout only relabel the
//! row-major data (the dispatcher copies it under the inferred shape).

use super::Cx;
use crate::error::IrError;
use crate::tensor::Tensor;

/// Concatenates `ins` along `axis` into `out`.
pub(super) fn concat(
    cx: &Cx<'_>,
    ins: &[&Tensor],
    axis: usize,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    if axis >= out.len() {
        return Err(cx.err(format!("axis {axis} out of range for output {out:?}")));
    }
    let outer: usize = out[..axis].iter().product();
    let inner: usize = out[axis + 1..].iter().product();
    // Each input contributes `outer` contiguous chunks of `dims[axis] * inner` elements.
    let mut chunks = Vec::with_capacity(ins.len());
    for t in ins {
        let dims = t.shape();
        let same_elsewhere = dims.len() == out.len()
            && dims
                .iter()
                .zip(out)
                .enumerate()
                .all(|(i, (d, o))| i == axis || d == o);
        if !same_elsewhere {
            return Err(cx.err(format!(
                "input {dims:?} does not fit output {out:?} on axis {axis}"
            )));
        }
        chunks.push(dims[axis] * inner);
    }
    let mut y = Vec::with_capacity(out.iter().product());
    for o in 0..outer {
        for (t, &len) in ins.iter().zip(&chunks) {
            y.extend_from_slice(&t.data()[o * len..(o + 1) * len]);
        }
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

    fn eval(op: Op, ins: &[&Tensor]) -> Tensor {
        eval_op("l", &op, ins).expect("eval")
    }

    #[test]
    fn concat_interleaves_per_outer_index() {
        // [2,1] ++ [2,2] along axis 1: row i is a[i] followed by b[i].
        let a = t(&[2, 1], &[1., 2.]);
        let b = t(&[2, 2], &[10., 11., 20., 21.]);
        let y = eval(Op::Concat { axis: 1 }, &[&a, &b]);
        assert_eq!(y.shape(), [2, 3]);
        assert_eq!(y.data(), [1., 10., 11., 2., 20., 21.]);
        // Along axis 0 the data simply follow each other.
        let y = eval(Op::Concat { axis: 0 }, &[&b, &b]);
        assert_eq!(y.shape(), [4, 2]);
        assert_eq!(y.data(), [10., 11., 20., 21., 10., 11., 20., 21.]);
    }

    #[test]
    fn flatten_and_reshape_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let data: Vec<f32> = (0..120).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let x = t(&[2, 3, 4, 5], &data);
        let mut cases = 0;
        for axis in 0..=4 {
            let f = eval(Op::Flatten { axis }, &[&x]);
            let before: usize = x.shape()[..axis].iter().product();
            assert_eq!(f.shape(), [before, 120 / before]);
            let back = eval(
                Op::Reshape {
                    shape: vec![2, 3, 4, 5],
                    allowzero: false,
                },
                &[&f],
            );
            assert_eq!(back, x);
            cases += 1;
        }
        assert_eq!(cases, 5);
    }

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        let x = t(&[2, 3, 4], &(0..24).map(|v| v as f32).collect::<Vec<_>>());
        // 0 copies dim 0 (2), -1 takes the rest (12).
        let y = eval(
            Op::Reshape {
                shape: vec![0, -1],
                allowzero: false,
            },
            &[&x],
        );
        assert_eq!(y.shape(), [2, 12]);
        assert_eq!(y.data(), x.data());
        // With allowzero a 0 means an empty dimension, which only an empty input can fill.
        let e = t(&[0, 3], &[]);
        let y = eval(
            Op::Reshape {
                shape: vec![3, 0],
                allowzero: true,
            },
            &[&e],
        );
        assert_eq!(y.shape(), [3, 0]);
        let err = eval_op(
            "r",
            &Op::Reshape {
                shape: vec![5, -1],
                allowzero: false,
            },
            &[&x],
        );
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "r",
                    op: "Reshape",
                    msg: "cannot reshape [2,3,4] to [5, -1]",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }
}
