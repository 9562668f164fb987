//! Matrix products: Gemm (`alpha * op(A) op(B) + beta * C`) and NumPy-style MatMul, both
//! accumulating in `f64`.

use super::Cx;
use super::broadcast::Offsets;
use crate::error::IrError;
use crate::op::Gemm;
use crate::tensor::Tensor;

/// `[rows, cols]` of a 2-D tensor.
fn dims2(cx: &Cx<'_>, t: &Tensor, what: &str) -> Result<[usize; 2], IrError> {
    <[usize; 2]>::try_from(t.shape())
        .map_err(|_| cx.err(format!("{what} must be 2-D, got {:?}", t.shape())))
}

/// Gemm with output `out = [M, N]`; `C`, if given, broadcasts to `[M, N]`.
pub(super) fn gemm(
    cx: &Cx<'_>,
    gm: &Gemm,
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    let [ar, ac] = dims2(cx, a, "A")?;
    let [br, bc] = dims2(cx, b, "B")?;
    let (m, k) = if gm.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if gm.trans_b { (bc, br) } else { (br, bc) };
    if k != kb || out != [m, n] {
        return Err(cx.err(format!(
            "A {:?} and B {:?} do not multiply to {out:?}",
            a.shape(),
            b.shape()
        )));
    }
    // Element (i, p) of op(A) and (p, j) of op(B).
    let a_at = |i: usize, p: usize| {
        if gm.trans_a {
            a.data()[p * ac + i]
        } else {
            a.data()[i * ac + p]
        }
    };
    let b_at = |p: usize, j: usize| {
        if gm.trans_b {
            b.data()[j * bc + p]
        } else {
            b.data()[p * bc + j]
        }
    };
    let c_offsets: Option<Vec<usize>> = match c {
        Some(c) => Some(
            Offsets::new(c.shape(), out)
                .map_err(|e| cx.err(format!("C: {e}")))?
                .collect(),
        ),
        None => None,
    };
    let (alpha, beta) = (f64::from(gm.alpha), f64::from(gm.beta));
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k)
                .map(|p| f64::from(a_at(i, p)) * f64::from(b_at(p, j)))
                .sum();
            let mut v = alpha * dot;
            if let (Some(c), Some(offs)) = (c, &c_offsets) {
                v += beta * f64::from(c.data()[offs[i * n + j]]);
            }
            y.push(v as f32);
        }
    }
    Ok(y)
}

/// NumPy `matmul`: 1-D operands are promoted (a row for A, a column for B) and the promoted
/// axis dropped from the result; leading (batch) dims broadcast.
pub(super) fn matmul(
    cx: &Cx<'_>,
    a: &Tensor,
    b: &Tensor,
    out: &[usize],
) -> Result<Vec<f32>, IrError> {
    if a.shape().is_empty() || b.shape().is_empty() {
        return Err(cx.err("operands must have rank at least 1"));
    }
    let a2: Vec<usize> = if a.shape().len() == 1 {
        vec![1, a.shape()[0]]
    } else {
        a.shape().to_vec()
    };
    let b2: Vec<usize> = if b.shape().len() == 1 {
        vec![b.shape()[0], 1]
    } else {
        b.shape().to_vec()
    };
    let (ra, rb) = (a2.len(), b2.len());
    let (m, k, kb, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
    // The output's batch dims are what remains after the matrix dims that were not dropped.
    let kept = usize::from(a.shape().len() > 1) + usize::from(b.shape().len() > 1);
    let batch = out
        .get(..out.len().saturating_sub(kept))
        .unwrap_or_default();
    let batches: usize = batch.iter().product();
    if k != kb || out.len() < kept || batches * m * n != out.iter().product::<usize>() {
        return Err(cx.err(format!(
            "{:?} and {:?} do not multiply to {out:?}",
            a.shape(),
            b.shape()
        )));
    }
    // Offsets::new gives the index of the matrix within each operand's own batch.
    let ia = Offsets::new(&a2[..ra - 2], batch).map_err(|e| cx.err(e))?;
    let ib = Offsets::new(&b2[..rb - 2], batch).map_err(|e| cx.err(e))?;
    let (ad, bd) = (a.data(), b.data());
    let mut y = Vec::with_capacity(batches * m * n);
    let mut row = vec![0f64; n];
    for (ma, mb) in ia.zip(ib) {
        let am = &ad[ma * m * k..(ma + 1) * m * k];
        let bm = &bd[mb * k * n..(mb + 1) * k * n];
        for i in 0..m {
            row.fill(0.0);
            for (p, &av) in am[i * k..(i + 1) * k].iter().enumerate() {
                let av = f64::from(av);
                for (r, &bv) in row.iter_mut().zip(&bm[p * n..(p + 1) * n]) {
                    *r += av * f64::from(bv);
                }
            }
            y.extend(row.iter().map(|&v| v as f32));
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::interp::eval_op;
    use crate::op::{Gemm, Op};
    use crate::tensor::Tensor;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
    }

    fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        t(
            shape,
            &(0..n)
                .map(|_| rng.random_range(-2.0f32..2.0))
                .collect::<Vec<_>>(),
        )
    }

    /// Transposes a 2-D tensor.
    fn transpose(x: &Tensor) -> Tensor {
        let (r, c) = (x.shape()[0], x.shape()[1]);
        let data = (0..c)
            .flat_map(|j| (0..r).map(move |i| x.data()[i * c + j]))
            .collect::<Vec<_>>();
        t(&[c, r], &data)
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn gemm_by_hand() {
        // [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]]; alpha 2, beta 0.5 with C = [10, 20]
        // broadcast over rows: 2 * [[19,22],[43,50]] + [[5,10],[5,10]].
        let a = t(&[2, 2], &[1., 2., 3., 4.]);
        let b = t(&[2, 2], &[5., 6., 7., 8.]);
        let c = t(&[2], &[10., 20.]);
        let gm = Gemm {
            alpha: 2.0,
            beta: 0.5,
            ..Gemm::default()
        };
        let y = eval_op("fc", &Op::Gemm(gm), &[&a, &b, &c]).expect("gemm");
        assert_eq!(y.data(), [43., 54., 91., 110.]);
        // Without C: the plain product.
        let y = eval_op("fc", &Op::Gemm(Gemm::default()), &[&a, &b]).expect("gemm");
        assert_eq!(y.data(), [19., 22., 43., 50.]);
    }

    #[test]
    fn gemm_transposes_agree_with_explicit_transposition() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (a, b) = (random(&mut rng, &[3, 4]), random(&mut rng, &[4, 5]));
        let c = random(&mut rng, &[3, 1]);
        let plain = eval_op("g", &Op::Gemm(Gemm::default()), &[&a, &b, &c]).expect("gemm");
        let mut cases = 0;
        for (trans_a, trans_b) in [(true, false), (false, true), (true, true)] {
            let aa = if trans_a { transpose(&a) } else { a.clone() };
            let bb = if trans_b { transpose(&b) } else { b.clone() };
            let gm = Gemm {
                trans_a,
                trans_b,
                ..Gemm::default()
            };
            let y = eval_op("g", &Op::Gemm(gm), &[&aa, &bb, &c]).expect("gemm");
            assert_eq!(y, plain, "transA {trans_a} transB {trans_b}");
            cases += 1;
        }
        assert_eq!(cases, 3);
    }

    #[test]
    fn matmul_promotes_vectors() {
        // [1,2,3] . [4,5,6] = 32, a 0-D result.
        let u = t(&[3], &[1., 2., 3.]);
        let v = t(&[3], &[4., 5., 6.]);
        let dot = eval_op("mm", &Op::MatMul, &[&u, &v]).expect("dot");
        assert_eq!((dot.shape(), dot.data()), (&[][..], &[32.][..]));
        // [[1,2,3],[0,1,0]] x [4,5,6] = [32, 5], shape [2].
        let m = t(&[2, 3], &[1., 2., 3., 0., 1., 0.]);
        let mv = eval_op("mm", &Op::MatMul, &[&m, &v]).expect("mv");
        assert_eq!((mv.shape(), mv.data()), (&[2][..], &[32., 5.][..]));
        // [1,2] x [[1,2,3],[0,1,0]] = [1, 4, 3], shape [3].
        let vm = eval_op("mm", &Op::MatMul, &[&t(&[2], &[1., 2.]), &m]).expect("vm");
        assert_eq!((vm.shape(), vm.data()), (&[3][..], &[1., 4., 3.][..]));
    }

    #[test]
    fn batched_matmul_broadcasts_against_gemm() {
        // A [2,1,3,4] x B [3,4,2] -> [2,3,3,2]; block (i,j) = A[i,0] x B[j], each checked
        // against Gemm on the extracted matrices.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let a = random(&mut rng, &[2, 1, 3, 4]);
        let b = random(&mut rng, &[3, 4, 2]);
        let y = eval_op("mm", &Op::MatMul, &[&a, &b]).expect("matmul");
        assert_eq!(y.shape(), [2, 3, 3, 2]);
        let mut blocks = 0;
        for i in 0..2 {
            for j in 0..3 {
                let am = t(&[3, 4], &a.data()[i * 12..(i + 1) * 12]);
                let bm = t(&[4, 2], &b.data()[j * 8..(j + 1) * 8]);
                let want = eval_op("g", &Op::Gemm(Gemm::default()), &[&am, &bm]).expect("gemm");
                let at = (i * 3 + j) * 6;
                assert_close(&y.data()[at..at + 6], want.data());
                blocks += 1;
            }
        }
        assert_eq!(blocks, 6);
    }

    #[test]
    fn matmul_inner_mismatch_is_an_error() {
        let err = eval_op(
            "mm",
            &Op::MatMul,
            &[&t(&[2, 3], &[1.; 6]), &t(&[2, 3], &[1.; 6])],
        );
        expect_test::expect![[r#"
            Err(
                Node {
                    node: "mm",
                    op: "MatMul",
                    msg: "inner dimensions differ: [2,3] and [2,3]",
                },
            )
        "#]]
        .assert_debug_eq(&err);
    }
}
