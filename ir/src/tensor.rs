//! Dense tensors (row-major `f32`).

use crate::error::IrError;

/// A dense row-major tensor. Weights are held as `Arc<Tensor>` by the graph so that a weight used
/// by many nodes exists once.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` has exactly as many elements as `shape` demands.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, IrError> {
        let numel = numel(&shape).ok_or_else(|| IrError::TensorSize {
            tensor: String::new(),
            msg: format!("shape {shape:?} overflows"),
        })?;
        if numel != data.len() {
            return Err(IrError::TensorSize {
                tensor: String::new(),
                msg: format!(
                    "shape {shape:?} needs {numel} elements, data has {}",
                    data.len()
                ),
            });
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn scalar(v: f32) -> Tensor {
        Tensor {
            shape: vec![],
            data: vec![v],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Same data, new shape with the same element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Tensor, IrError> {
        Tensor::new(shape, self.data.clone())
    }
}

/// Product of dims, `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
