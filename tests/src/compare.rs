//! Numeric comparison of a computed tensor with a reference one.
//!
//! Two measures: elementwise closeness (`|a - b| <= atol + rtol * |b|`, the node suite) and the
//! relative L2 error `||a - b|| / ||b||` (the whole-model suite, where per-element tolerances
//! would be dominated by values near zero). Both demand the exact shape and accumulate in f64.

use excite_ir::Tensor;

/// Elementwise tolerance: `|actual - expected| <= atol + rtol * |expected|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

/// The node suite's tolerance. The interpreter accumulates in f64, so its results are within
/// a few f32 ulps of the reference; 1e-4 leaves room for the reference's own f32 rounding.
pub const NODE_TOLERANCE: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// The whole-model suite's bound on `||a - b|| / ||b||`.
pub const MODEL_REL_L2: f64 = 1e-4;

fn same_shape(actual: &Tensor, expected: &Tensor) -> Result<(), String> {
    if actual.shape() == expected.shape() {
        Ok(())
    } else {
        Err(format!(
            "shape {:?}, expected {:?}",
            actual.shape(),
            expected.shape()
        ))
    }
}

/// Checks shape and every element; NaN matches only NaN, an infinity only itself. The error
/// names the first bad element and the number of bad elements.
pub fn check_close(actual: &Tensor, expected: &Tensor, tol: Tolerance) -> Result<(), String> {
    same_shape(actual, expected)?;
    let mut bad = 0usize;
    let mut first = None;
    for (i, (&a32, &e32)) in actual.data().iter().zip(expected.data()).enumerate() {
        let (a, e) = (f64::from(a32), f64::from(e32));
        let ok = if e.is_nan() {
            a.is_nan()
        } else if e.is_infinite() {
            a == e
        } else {
            (a - e).abs() <= tol.atol + tol.rtol * e.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, a32, e32));
        }
    }
    match first {
        None => Ok(()),
        Some((i, a, e)) => Err(format!(
            "{bad} of {} elements differ; first at flat index {i}: got {a}, expected {e}",
            expected.numel()
        )),
    }
}

/// `||actual - expected|| / ||expected||` after checking shapes (the plain `||a - b||` when the
/// expected tensor is all zeros).
pub fn rel_l2(actual: &Tensor, expected: &Tensor) -> Result<f64, String> {
    same_shape(actual, expected)?;
    let (mut diff, mut norm) = (0f64, 0f64);
    for (&a, &e) in actual.data().iter().zip(expected.data()) {
        let d = f64::from(a) - f64::from(e);
        diff += d * d;
        norm += f64::from(e) * f64::from(e);
    }
    let err = if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    };
    if err.is_nan() {
        return Err("the error is NaN".into());
    }
    Ok(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
    }

    #[test]
    fn close_within_tolerance_and_not_beyond() {
        let e = t(&[3], &[1.0, -1000.0, 0.0]);
        let within = t(&[3], &[1.000_15, -1000.09, 0.000_09]);
        assert_eq!(check_close(&within, &e, NODE_TOLERANCE), Ok(()));
        let beyond = t(&[3], &[1.0, -1000.2, 0.000_2]);
        assert_eq!(
            check_close(&beyond, &e, NODE_TOLERANCE),
            Err(
                "2 of 3 elements differ; first at flat index 1: got -1000.2, expected -1000".into()
            )
        );
    }

    #[test]
    fn shapes_nan_and_infinity() {
        let e = t(&[2], &[f32::NAN, f32::INFINITY]);
        assert_eq!(check_close(&e.clone(), &e, NODE_TOLERANCE), Ok(()));
        let a = t(&[2], &[0.0, f32::INFINITY]);
        assert!(check_close(&a, &e, NODE_TOLERANCE).is_err());
        let a = t(&[1, 2], &[f32::NAN, f32::INFINITY]);
        assert_eq!(
            check_close(&a, &e, NODE_TOLERANCE),
            Err("shape [1, 2], expected [2]".into())
        );
    }

    #[test]
    fn relative_l2() {
        let e = t(&[2], &[3.0, 4.0]);
        let a = t(&[2], &[3.0, 4.5]);
        assert_eq!(rel_l2(&a, &e), Ok(0.1));
        assert!(rel_l2(&t(&[1, 2], &[3.0, 4.0]), &e).is_err());
    }
}
