//! 2-D AveragePool and MaxPool with kernel, strides, asymmetric pads, dilations, ceil mode and
//! `count_include_pad`, as ONNX (and ONNX Runtime) define them.
//!
//! Window `o` along an axis reads input positions `o * stride - pad_begin + k * dilation`. Only
//! positions inside the input contribute values. The average's divisor counts the positions
//! inside the input (`count_include_pad = 0`) or inside input plus both pads
//! (`count_include_pad = 1`); positions a ceil-mode window reaches beyond the end padding never
//! count, as in `onnx/reference/ops/op_pool_common.py`. A (dilated) window with no position
//! inside the input yields the lowest finite `f32` for max and 0 for an average, as ONNX
//! Runtime does; NaN inputs are skipped by max.

use super::Cx;
use crate::error::IrError;
use crate::op::Pool;
use crate::tensor::Tensor;

/// Which reduction a pool applies over its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Average,
    Max,
}

/// Along one axis, the window positions of output `o`: `(input index if inside, counts toward
/// the padded divisor)` for each of the `kernel` taps.
fn taps(p: &Pool, axis: usize, size: usize, o: usize) -> Vec<(Option<usize>, bool)> {
    let (stride, dil, pad_begin, pad_end) = (
        p.strides[axis],
        p.dilations[axis],
        p.pads[axis],
        p.pads[axis + 2],
    );
    (0..p.kernel[axis])
        .map(|k| {
            // Position in padded coordinates (0 = first padding cell).
            let padded = o * stride + k * dil;
            let inside = padded.checked_sub(pad_begin).filter(|&i| i < size);
            (inside, padded < pad_begin + size + pad_end)
        })
        .collect()
}

/// Computes AveragePool or MaxPool with output shape `out` (already inferred from `x`).
pub(super) fn pool(
    cx: &Cx<'_>,
    p: &Pool,
    kind: Kind,
    x: &Tensor,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    let [n, c, h, w] = cx.dims4(x, "input")?;
    let out4 = <[usize; 4]>::try_from(out)
        .map_err(|_| cx.err(format!("output shape {out:?} is not 4-D")))?;
    let [_, _, oh, ow] = out4;
    if out4[..2] != [n, c] || p.strides.contains(&0) || p.dilations.contains(&0) {
        return Err(cx.err(format!(
            "inconsistent pool: x {:?}, output {out:?}, {p:?}",
            x.shape()
        )));
    }
    let rows: Vec<_> = (0..oh).map(|o| taps(p, 0, h, o)).collect();
    let cols: Vec<_> = (0..ow).map(|o| taps(p, 1, w, o)).collect();
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for plane in x.data().chunks_exact((h * w).max(1)).take(n * c) {
        for row in &rows {
            for col in &cols {
                let mut sum = 0f64;
                let mut max = f32::MIN;
                let (mut inside, mut padded) = (0usize, 0usize);
                for &(iy, ry) in row {
                    for &(ix, rx) in col {
                        if ry && rx {
                            padded += 1;
                        }
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            let v = plane[iy * w + ix];
                            inside += 1;
                            sum += f64::from(v);
                            if v > max {
                                max = v;
                            }
                        }
                    }
                }
                y.push(match kind {
                    Kind::Max => max,
                    Kind::Average => {
                        let divisor = if p.count_include_pad { padded } else { inside };
                        if divisor == 0 {
                            0.0
                        } else {
                            (sum / divisor as f64) as f32
                        }
                    }
                });
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use crate::interp::eval_op;
    use crate::op::{Op, Pool};
    use crate::tensor::Tensor;

    /// `x[i][j] = i * side + j` as a [1,1,side,side] image.
    fn ramp(side: usize) -> Tensor {
        let data = (0..side * side).map(|v| v as f32).collect();
        Tensor::new(vec![1, 1, side, side], data).expect("ramp")
    }

    fn pool(k: usize, s: usize, pad: usize) -> Pool {
        Pool {
            kernel: [k, k],
            strides: [s, s],
            pads: [pad; 4],
            dilations: [1, 1],
            ceil_mode: false,
            count_include_pad: false,
        }
    }

    fn eval(op: Op, x: &Tensor) -> Tensor {
        eval_op("pool", &op, &[x]).expect("pool")
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn max_pool_of_a_ramp_takes_bottom_right_corners() {
        // Each 2x2 window of an increasing ramp peaks at its bottom-right cell: rows 1,3 x cols 1,3.
        let y = eval(Op::MaxPool(pool(2, 2, 0)), &ramp(4));
        assert_eq!(y.shape(), [1, 1, 2, 2]);
        assert_eq!(y.data(), [5., 7., 13., 15.]);
    }

    #[test]
    fn ceil_mode_on_5x5_keeps_partial_windows() {
        // 5x5, kernel 2, stride 2: floor gives 2x2, ceil gives 3x3 whose last row/column of
        // windows holds only input row/column 4.
        let mut p = pool(2, 2, 0);
        assert_eq!(eval(Op::MaxPool(p.clone()), &ramp(5)).shape(), [1, 1, 2, 2]);
        p.ceil_mode = true;
        let y = eval(Op::MaxPool(p.clone()), &ramp(5));
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        // Max = x[min(2i+1, 4)][min(2j+1, 4)].
        assert_eq!(y.data(), [6., 8., 9., 16., 18., 19., 21., 23., 24.]);
        // Averages over the cells inside: window (0,2) = (4+9)/2, (2,2) = 24 alone,
        // (1,1) = (12+13+17+18)/4 = 15. With no pads, count_include_pad changes nothing.
        let avg = [3., 5., 6.5, 13., 15., 16.5, 20.5, 22.5, 24.];
        assert_close(eval(Op::AveragePool(p.clone()), &ramp(5)).data(), &avg);
        p.count_include_pad = true;
        assert_close(eval(Op::AveragePool(p), &ramp(5)).data(), &avg);
    }

    #[test]
    fn ceil_overhang_is_not_counted_as_padding() {
        // 4x4 ramp, kernel 3, stride 2, pads 1, ceil: padded length 6, (6-3)/2+1 = 2.5 -> 3
        // windows per axis, starting at input positions -1, 1, 3. The last window covers 3
        // (input), 4 (end pad) and 5 (beyond the pads: not counted).
        let mut p = pool(3, 2, 1);
        p.ceil_mode = true;
        p.count_include_pad = true;
        let y = eval(Op::AveragePool(p.clone()), &ramp(4));
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        // Per axis divisors 3, 3, 2. Window (0,0): rows/cols {0,1}: (0+1+4+5)/9.
        // Window (0,2): rows {0,1} x col 3: (3+7)/(3*2). Window (2,2): x[3][3] = 15 over 2*2.
        // Window (1,1): rows/cols {1,2,3}: mean of 5,6,7,9,10,11,13,14,15 = 10, divisor 9.
        assert_close(
            &[y.data()[0], y.data()[2], y.data()[4], y.data()[8]],
            &[10. / 9., 10. / 6., 10., 15. / 4.],
        );
        // Excluding padding divides by the cells inside: (0+1+4+5)/4, (3+7)/2, 10, 15/1.
        p.count_include_pad = false;
        let y = eval(Op::AveragePool(p), &ramp(4));
        assert_close(
            &[y.data()[0], y.data()[2], y.data()[4], y.data()[8]],
            &[2.5, 5., 10., 15.],
        );
    }

    #[test]
    fn dilated_max_pool_with_asymmetric_pads() {
        // 4x4 ramp, kernel 2, dilation 2, stride 1, pads [top 1, left 0, bottom 0, right 0]:
        // padded height 5, extent 3 -> 3 rows; width 4 -> 2 columns. Window (i,j) reads rows
        // i-1 and i+1, columns j and j+2; the max is x[i+1][j+2].
        let p = Pool {
            dilations: [2, 2],
            pads: [1, 0, 0, 0],
            ..pool(2, 1, 0)
        };
        let y = eval(Op::MaxPool(p), &ramp(4));
        assert_eq!(y.shape(), [1, 1, 3, 2]);
        assert_eq!(y.data(), [6., 7., 10., 11., 14., 15.]);
    }

    #[test]
    fn padding_never_wins_a_max() {
        // All-negative input with padding 1: padded cells must not contribute a 0.
        let x = Tensor::new(vec![1, 1, 2, 2], vec![-4., -3., -2., -1.]).expect("x");
        let y = eval(Op::MaxPool(pool(2, 1, 1)), &x);
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        assert_eq!(y.data(), [-4., -3., -3., -2., -1., -1., -2., -1., -1.]);
    }

    #[test]
    fn windows_that_miss_the_input_follow_onnx_runtime() {
        // 2x2 input, kernel 2, dilation 3, pads 1: one window per axis, reading positions -1
        // and 2, both outside the input. ONNX Runtime gives the lowest f32 for max and 0 for
        // the average (nothing summed, whatever the divisor).
        let x = Tensor::new(vec![1, 1, 2, 2], vec![1., 2., 3., 4.]).expect("x");
        let p = Pool {
            dilations: [3, 3],
            ..pool(2, 1, 1)
        };
        assert_eq!(eval(Op::MaxPool(p.clone()), &x).data(), [f32::MIN]);
        assert_eq!(eval(Op::AveragePool(p.clone()), &x).data(), [0.0]);
        let p = Pool {
            count_include_pad: true,
            ..p
        };
        assert_eq!(eval(Op::AveragePool(p), &x).data(), [0.0]);
    }

    #[test]
    fn pads_as_large_as_the_kernel_are_an_error() {
        let err = eval_op("mp", &Op::MaxPool(pool(2, 1, 2)), &[&ramp(4)]);
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "mp",
                    op: "MaxPool",
                    msg: "pads [2, 2, 2, 2] must be smaller than the kernel [2, 2]",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }
}
