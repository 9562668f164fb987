//! Reductions: GlobalAveragePool, ReduceMean and Softmax, each summing in `f64`.

use super::Cx;
use super::broadcast::Offsets;
use crate::error::IrError;
use crate::tensor::Tensor;

/// Mean over every axis after the first two.
pub(super) fn global_average_pool(cx: &Cx<'_>, x: &Tensor) -> Result<Vec<f32>, IrError> {
    let dims = x.shape();
    if dims.len() < 3 {
        return Err(cx.err(format!("input must have rank >= 3, got {dims:?}")));
    }
    let inner: usize = dims[2..].iter().product();
    if inner == 0 {
        // Mean of nothing, as NumPy: NaN for each of the N*C outputs.
        return Ok(vec![f32::NAN; dims[0] * dims[1]]);
    }
    Ok(x.data()
        .chunks_exact(inner)
        .map(|c| (c.iter().map(|&v| f64::from(v)).sum::<f64>() / inner as f64) as f32)
        .collect())
}

/// Mean over `axes`; the output keeps reduced axes as size 1 or drops them, which is the same
/// row-major data either way.
pub(super) fn reduce_mean(cx: &Cx<'_>, x: &Tensor, axes: &[usize]) -> Result<Vec<f32>, IrError> {
    let dims = x.shape();
    if let Some(a) = axes.iter().find(|&&a| a >= dims.len()) {
        return Err(cx.err(format!("axis {a} out of range for shape {dims:?}")));
    }
    let kept: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let count: usize = axes.iter().map(|&a| dims[a]).product();
    let mut sums = vec![0f64; kept.iter().product()];
    // Walk the input; each element lands on the output cell its kept coordinates name, which is
    // exactly the broadcast of the kept shape onto the input shape.
    let targets = Offsets::new(&kept, dims).map_err(|m| cx.err(m))?;
    for (&v, o) in x.data().iter().zip(targets) {
        sums[o] += f64::from(v);
    }
    Ok(sums
        .into_iter()
        .map(|s| (s / count as f64) as f32)
        .collect())
}

/// Softmax along `axis` (opset 13): `exp(x - max) / sum(exp(x - max))` per slice.
pub(super) fn softmax(cx: &Cx<'_>, x: &Tensor, axis: usize) -> Result<Vec<f32>, IrError> {
    let dims = x.shape();
    if axis >= dims.len() {
        return Err(cx.err(format!("axis {axis} out of range for shape {dims:?}")));
    }
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let data = x.data();
    let mut y = vec![0f32; data.len()];
    let block = len * inner;
    if block == 0 {
        return Ok(y);
    }
    for (src, dst) in data.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
        for i in 0..inner {
            let at = |j: usize| j * inner + i;
            let max = (0..len)
                .map(|j| f64::from(src[at(j)]))
                .fold(
                    f64::NEG_INFINITY,
                    |m, v| {
                        if v > m || v.is_nan() { v } else { m }
                    },
                );
            let exps: Vec<f64> = (0..len)
                .map(|j| (f64::from(src[at(j)]) - max).exp())
                .collect();
            let sum: f64 = exps.iter().sum();
            for (j, e) in exps.into_iter().enumerate() {
                dst[at(j)] = (e / sum) as f32;
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use crate::interp::eval_op;
    use crate::op::Op;
    use crate::tensor::Tensor;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
    }

    fn eval(op: Op, x: &Tensor) -> Tensor {
        eval_op("r", &op, &[x]).expect("eval")
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn global_average_pool_per_channel() {
        // Channel 0 holds 1,2,3,4 (mean 2.5); channel 1 holds 10,20,30,40 (mean 25).
        let x = t(&[1, 2, 2, 2], &[1., 2., 3., 4., 10., 20., 30., 40.]);
        let y = eval(Op::GlobalAveragePool, &x);
        assert_eq!(y.shape(), [1, 2, 1, 1]);
        assert_eq!(y.data(), [2.5, 25.]);
    }

    #[test]
    fn reduce_mean_axes_and_keepdims() {
        // [[1,2,3],[4,5,6]]: row means 2 and 5, column means 2.5, 3.5, 4.5.
        let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let rows = eval(
            Op::ReduceMean {
                axes: vec![1],
                keepdims: false,
            },
            &x,
        );
        assert_eq!((rows.shape(), rows.data()), (&[2][..], &[2., 5.][..]));
        let cols = eval(
            Op::ReduceMean {
                axes: vec![0],
                keepdims: true,
            },
            &x,
        );
        assert_eq!(
            (cols.shape(), cols.data()),
            (&[1, 3][..], &[2.5, 3.5, 4.5][..])
        );
        // [2,2,2] = 0..7 over axes {0,2}: for middle index j the cells are 2j, 2j+1, 4+2j,
        // 5+2j with mean 2j + 2.5, i.e. 2.5 and 4.5.
        let z = t(&[2, 2, 2], &[0., 1., 2., 3., 4., 5., 6., 7.]);
        let m = eval(
            Op::ReduceMean {
                axes: vec![0, 2],
                keepdims: true,
            },
            &z,
        );
        assert_eq!((m.shape(), m.data()), (&[1, 2, 1][..], &[2.5, 4.5][..]));
        // Over the spatial axes it agrees with GlobalAveragePool.
        let img = t(&[1, 2, 2, 2], &[1., 2., 3., 4., 10., 20., 30., 40.]);
        let spatial = eval(
            Op::ReduceMean {
                axes: vec![2, 3],
                keepdims: true,
            },
            &img,
        );
        assert_eq!(spatial, eval(Op::GlobalAveragePool, &img));
    }

    #[test]
    fn softmax_sums_to_one_and_ignores_shifts() {
        // softmax(0, 1, 2) = e^k / (1 + e + e^2).
        let e = std::f32::consts::E;
        let z = 1. + e + e * e;
        let y = eval(Op::Softmax { axis: 0 }, &t(&[3], &[0., 1., 2.]));
        assert_close(y.data(), &[1. / z, e / z, e * e / z]);
        // Adding 1000 changes nothing and does not overflow.
        let big = eval(Op::Softmax { axis: 0 }, &t(&[3], &[1000., 1001., 1002.]));
        assert_close(big.data(), y.data());
    }

    #[test]
    fn softmax_along_a_middle_axis() {
        // [1,2,2] along axis 1: columns (0, ln 3) and (5, 5) give (1/4, 3/4) and (1/2, 1/2).
        let x = t(&[1, 2, 2], &[0., 5., 3f32.ln(), 5.]);
        let y = eval(Op::Softmax { axis: 1 }, &x);
        assert_close(y.data(), &[0.25, 0.5, 0.75, 0.5]);
    }

    #[test]
    fn reduce_mean_axis_out_of_range_is_an_error() {
        let err = eval_op(
            "rm",
            &Op::ReduceMean {
                axes: vec![2],
                keepdims: true,
            },
            &[&t(&[2, 3], &[1.; 6])],
        );
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "rm",
                    op: "ReduceMean",
                    msg: "axis 2 out of range for rank 2",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }
}
