//! 2-D convolution (ONNX Conv): strides, asymmetric zero padding, dilation, groups, bias.
//!
//! Loop order n, group, output channel, input channel, kernel row, kernel column, output row,
//! output column, accumulating each output plane in an `f64` buffer. For every kernel tap the
//! range of output positions whose input lies inside the image is computed up front, so the two
//! innermost loops run branch-free over contiguous memory and padding never needs a test.

use super::Cx;
use crate::error::IrError;
use crate::op::Conv;
use crate::tensor::Tensor;

/// Output positions `o` in `0..out_len` whose input `o * stride + offset - pad` lies in
/// `0..size`, as a half-open range (empty when there are none).
fn valid_range(
    offset: usize,
    pad: usize,
    stride: usize,
    size: usize,
    out_len: usize,
) -> (usize, usize) {
    let lo = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    // Need o * stride <= size - 1 + pad - offset.
    let hi = if size + pad <= offset {
        0
    } else {
        (size - 1 + pad - offset) / stride + 1
    };
    let hi = hi.min(out_len);
    (lo.min(hi), hi)
}

/// Computes Conv with output shape `out` (already inferred from these inputs).
pub(super) fn conv(
    cx: &Cx<'_>,
    c: &Conv,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    let [n, cin, h, wd] = cx.dims4(x, "input")?;
    let [m, cg, kh, kw] = cx.dims4(w, "weight")?;
    let out4 = <[usize; 4]>::try_from(out)
        .map_err(|_| cx.err(format!("output shape {out:?} is not 4-D")))?;
    let [_, _, oh, ow] = out4;
    let groups = c.group;
    if groups == 0 || cg * groups != cin || m % groups != 0 || out4[..2] != [n, m] {
        return Err(cx.err(format!(
            "inconsistent shapes: x {:?}, w {:?}, group {groups}, output {out:?}",
            x.shape(),
            w.shape()
        )));
    }
    if c.strides.contains(&0) || c.dilations.contains(&0) {
        return Err(cx.err("strides and dilations must be positive"));
    }
    if let Some(b) = bias
        && b.shape() != [m]
    {
        return Err(cx.err(format!("bias has shape {:?}, expected [{m}]", b.shape())));
    }
    // Kernel taps must land inside the padded image for every output position.
    for (i, (&o, &k, &size)) in [(&oh, &kh, &h), (&ow, &kw, &wd)].into_iter().enumerate() {
        let last = o.saturating_sub(1) * c.strides[i] + k.saturating_sub(1) * c.dilations[i];
        if o > 0 && k > 0 && last >= size + c.pads[i] + c.pads[i + 2] {
            return Err(cx.err(format!("output size {o} reads past the padded input")));
        }
    }
    let [sh, sw] = c.strides;
    let [dh, dw] = c.dilations;
    let (pad_top, pad_left) = (c.pads[0], c.pads[1]);
    let mg = m / groups;
    let (xd, wdata) = (x.data(), w.data());
    let mut y = Vec::with_capacity(n * m * oh * ow);
    let mut acc = vec![0f64; oh * ow];
    for b in 0..n {
        for g in 0..groups {
            for oc in g * mg..(g + 1) * mg {
                acc.fill(0.0);
                for ic in 0..cg {
                    let plane_at = ((b * cin) + g * cg + ic) * h * wd;
                    let plane = &xd[plane_at..plane_at + h * wd];
                    for ky in 0..kh {
                        let (oy_lo, oy_hi) = valid_range(ky * dh, pad_top, sh, h, oh);
                        for kx in 0..kw {
                            let (ox_lo, ox_hi) = valid_range(kx * dw, pad_left, sw, wd, ow);
                            if ox_lo >= ox_hi {
                                continue;
                            }
                            let wv = f64::from(wdata[((oc * cg + ic) * kh + ky) * kw + kx]);
                            let ix_lo = ox_lo * sw + kx * dw - pad_left;
                            for oy in oy_lo..oy_hi {
                                let iy = oy * sh + ky * dh - pad_top;
                                let row = &plane[iy * wd + ix_lo..(iy + 1) * wd];
                                let acc_row = &mut acc[oy * ow + ox_lo..oy * ow + ox_hi];
                                if sw == 1 {
                                    for (a, &v) in acc_row.iter_mut().zip(row) {
                                        *a += wv * f64::from(v);
                                    }
                                } else {
                                    for (a, &v) in acc_row.iter_mut().zip(row.iter().step_by(sw)) {
                                        *a += wv * f64::from(v);
                                    }
                                }
                            }
                        }
                    }
                }
                let bv = bias.map_or(0.0, |t| f64::from(t.data()[oc]));
                y.extend(acc.iter().map(|&a| (a + bv) as f32));
            }
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::valid_range;
    use crate::interp::eval_op;
    use crate::op::{Conv, Op};
    use crate::tensor::Tensor;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
    }

    fn conv(c: Conv, ins: &[&Tensor]) -> Tensor {
        eval_op("conv", &Op::Conv(c), ins).expect("conv")
    }

    #[test]
    fn valid_range_matches_brute_force() {
        let mut compared = 0;
        for offset in 0..5 {
            for pad in 0..4 {
                for stride in 1..4 {
                    for size in 1..6 {
                        let out_len = 7;
                        let want: Vec<usize> = (0..out_len)
                            .filter(|&o| {
                                let i = (o * stride + offset) as i64 - pad as i64;
                                (0..size as i64).contains(&i)
                            })
                            .collect();
                        let (lo, hi) = valid_range(offset, pad, stride, size, out_len);
                        assert_eq!(
                            (lo..hi).collect::<Vec<_>>(),
                            want,
                            "{offset} {pad} {stride} {size}"
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 300);
    }

    #[test]
    fn all_ones_kernel_sums_windows() {
        // x = 1..9 as a 3x3 image; an all-ones 3x3 kernel with padding 1 sums each 3x3
        // neighbourhood: corner (0,0) = 1+2+4+5 = 12, edge (0,1) = 1+2+3+4+5+6 = 21,
        // centre = 45, and so on by symmetry. Bias 0.5 is added to each.
        let x = t(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let w = t(&[1, 1, 3, 3], &[1.0; 9]);
        let b = t(&[1], &[0.5]);
        let c = Conv {
            pads: [1, 1, 1, 1],
            ..Conv::default()
        };
        let y = conv(c, &[&x, &w, &b]);
        assert_eq!(y.shape(), [1, 1, 3, 3]);
        let sums = [12., 21., 16., 27., 45., 33., 24., 39., 28.];
        assert_eq!(y.data(), sums.map(|s| s + 0.5));
    }

    #[test]
    fn asymmetric_pads_strides_and_dilation() {
        // x = 0..15 as 4x4; a 2x2 kernel [[1,0],[0,0]] picks the top-left tap. With dilation 2,
        // stride 2 and pads [top 1, left 0, bottom 0, right 1] the output is 2x2 with
        // out[i][j] = x[2i - 1][2j] (0 when the row is padding): rows -1 and 1, columns 0 and 2.
        let x = t(
            &[1, 1, 4, 4],
            &(0..16).map(|v| v as f32).collect::<Vec<_>>(),
        );
        let w = t(&[1, 1, 2, 2], &[1., 0., 0., 0.]);
        let c = Conv {
            strides: [2, 2],
            pads: [1, 0, 0, 1],
            dilations: [2, 2],
            group: 1,
        };
        let y = conv(c, &[&x, &w]);
        assert_eq!(y.shape(), [1, 1, 2, 2]);
        assert_eq!(y.data(), [0., 0., 4., 6.]);
    }

    #[test]
    fn depthwise_groups_keep_channels_apart() {
        // Two channels, group 2, 1x1 kernels 2 and -1: each channel is scaled on its own.
        let x = t(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
        let w = t(&[2, 1, 1, 1], &[2., -1.]);
        let y = conv(
            Conv {
                group: 2,
                ..Conv::default()
            },
            &[&x, &w],
        );
        assert_eq!(y.data(), [2., 4., -3., -4.]);
    }

    /// Direct definition, one output element at a time, with explicit padding tests.
    fn naive(c: &Conv, x: &Tensor, w: &Tensor, b: Option<&Tensor>, out: &[usize]) -> Vec<f32> {
        let [n, cin, h, wd] = <[usize; 4]>::try_from(x.shape()).expect("4-D");
        let [m, cg, kh, kw] = <[usize; 4]>::try_from(w.shape()).expect("4-D");
        let (oh, ow) = (out[2], out[3]);
        let mg = m / c.group;
        let mut y = Vec::new();
        for bi in 0..n {
            for oc in 0..m {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = b.map_or(0.0, |b| f64::from(b.data()[oc]));
                        for ic in 0..cg {
                            let ci = (oc / mg) * cg + ic;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * c.strides[0] + ky * c.dilations[0]) as i64
                                        - c.pads[0] as i64;
                                    let ix = (ox * c.strides[1] + kx * c.dilations[1]) as i64
                                        - c.pads[1] as i64;
                                    if iy < 0 || ix < 0 || iy >= h as i64 || ix >= wd as i64 {
                                        continue;
                                    }
                                    let xv = x.data()
                                        [((bi * cin + ci) * h + iy as usize) * wd + ix as usize];
                                    let wv = w.data()[((oc * cg + ic) * kh + ky) * kw + kx];
                                    s += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        y.push(s as f32);
                    }
                }
            }
        }
        y
    }

    #[test]
    fn matches_direct_definition_over_attribute_combinations() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut cases = 0;
        for group in [1, 2, 4] {
            for stride in [[1, 1], [2, 1], [2, 3]] {
                for dilation in [[1, 1], [2, 1]] {
                    for pads in [[0, 0, 0, 0], [1, 2, 0, 1], [2, 2, 2, 2]] {
                        for with_bias in [false, true] {
                            let (cin, m, h, wd, k) = (4, 8, 7, 6, [3, 2]);
                            let mut r = |n: usize| {
                                (0..n)
                                    .map(|_| rng.random_range(-1.0f32..1.0))
                                    .collect::<Vec<_>>()
                            };
                            let x = t(&[2, cin, h, wd], &r(2 * cin * h * wd));
                            let w = t(
                                &[m, cin / group, k[0], k[1]],
                                &r(m * cin / group * k[0] * k[1]),
                            );
                            let b = t(&[m], &r(m));
                            let c = Conv {
                                strides: stride,
                                pads,
                                dilations: dilation,
                                group,
                            };
                            let mut ins = vec![&x, &w];
                            if with_bias {
                                ins.push(&b);
                            }
                            let y = conv(c.clone(), &ins);
                            let want = naive(&c, &x, &w, with_bias.then_some(&b), y.shape());
                            // Both sum in f64 (in different orders), so they agree to f32 rounding.
                            for (g, w) in y.data().iter().zip(&want) {
                                assert!(
                                    (g - w).abs() <= 1e-6,
                                    "{c:?} bias {with_bias}: {g} vs {w}"
                                );
                            }
                            assert_eq!(y.numel(), want.len());
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 108);
    }

    #[test]
    fn mismatched_channels_are_an_error() {
        let x = t(&[1, 3, 2, 2], &[1.0; 12]);
        let w = t(&[1, 2, 1, 1], &[1.0; 2]);
        let err = eval_op("stem", &Op::Conv(Conv::default()), &[&x, &w]);
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "stem",
                    op: "Conv",
                    msg: "weight [1,2,1,1] expects 2 input channels, input has 3",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }
}
