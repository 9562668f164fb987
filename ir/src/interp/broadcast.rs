//! NumPy broadcasting: walking an output shape while tracking where each element comes from in
//! a (smaller) input, plus the Expand kernel built on it.

use super::Cx;
use crate::error::IrError;
use crate::tensor::{Tensor, numel, strides};

/// Yields, for every element of `out` in row-major order, the flat offset of the element of an
/// input of shape `src` that NumPy broadcasting maps onto it.
#[derive(Debug)]
pub(super) struct Offsets {
    out: Vec<usize>,
    /// Input strides aligned to `out`; 0 on broadcast (and missing leading) dimensions.
    strides: Vec<usize>,
    idx: Vec<usize>,
    offset: usize,
    remaining: usize,
}

impl Offsets {
    /// Fails when `src` does not broadcast to `out` (unidirectionally).
    pub(super) fn new(src: &[usize], out: &[usize]) -> Result<Offsets, String> {
        if src.len() > out.len() {
            return Err(format!("shape {src:?} has more dimensions than {out:?}"));
        }
        let lead = out.len() - src.len();
        let own = strides(src);
        let mut aligned = vec![0; out.len()];
        for (i, (&d, &s)) in src.iter().zip(&own).enumerate() {
            let o = out[lead + i];
            aligned[lead + i] = match d {
                _ if d == o && d != 1 => s,
                1 => 0,
                _ => return Err(format!("shape {src:?} does not broadcast to {out:?}")),
            };
        }
        let remaining = numel(out).ok_or_else(|| format!("shape {out:?} overflows"))?;
        Ok(Offsets {
            out: out.to_vec(),
            strides: aligned,
            idx: vec![0; out.len()],
            offset: 0,
            remaining,
        })
    }
}

impl Iterator for Offsets {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        // Odometer step: bump the last index, carrying into earlier ones.
        for d in (0..self.out.len()).rev() {
            self.idx[d] += 1;
            self.offset += self.strides[d];
            if self.idx[d] < self.out[d] {
                break;
            }
            self.offset -= self.strides[d] * self.out[d];
            self.idx[d] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// Broadcasts `x` to the shape `out` (ONNX Expand, whose output shape inference already took
/// the bidirectional broadcast of `x` and the target).
pub(super) fn expand(cx: &Cx<'_>, x: &Tensor, out: &[usize]) -> Result<Vec<f32>, IrError> {
    let offsets = Offsets::new(x.shape(), out).map_err(|m| cx.err(m))?;
    let data = x.data();
    Ok(offsets.map(|i| data[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    fn offsets(src: &[usize], out: &[usize]) -> Vec<usize> {
        match Offsets::new(src, out) {
            Ok(o) => o.collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn offsets_follow_numpy_broadcasting() {
        // Same shape: the identity walk.
        assert_eq!(offsets(&[2, 3], &[2, 3]), vec![0, 1, 2, 3, 4, 5]);
        // A row vector [3] repeated over 2 rows.
        assert_eq!(offsets(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        // A column [2,1] repeated over 3 columns.
        assert_eq!(offsets(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        // A scalar everywhere.
        assert_eq!(offsets(&[], &[2, 2]), vec![0, 0, 0, 0]);
        // Middle broadcast [2,1,2] -> [2,3,2]: each pair of the first block thrice, then the second.
        assert_eq!(
            offsets(&[2, 1, 2], &[2, 3, 2]),
            vec![0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3]
        );
        // An empty output yields nothing.
        assert_eq!(offsets(&[1], &[0]), Vec::<usize>::new());
    }

    #[test]
    fn offsets_reject_incompatible_shapes() {
        assert!(Offsets::new(&[3], &[2, 4]).is_err());
        assert!(Offsets::new(&[2, 3], &[3]).is_err());
    }
}
