//! The verifier: structural checks, then shape inference; every error is collected.
//!
//! Also home of the run-time checks that bind user tensors to graph inputs and of the batch
//! resolution that turns the symbolic batch into a number.

use std::collections::HashMap;

use crate::error::{IrError, IrErrors};
use crate::graph::{Graph, ValueDef};
use crate::infer::infer_shapes;
use crate::shape::{Dim, Shape, TensorType};
use crate::tensor::Tensor;

/// The highest tensor rank a graph may have (ONNX Runtime's limit too).
pub const MAX_RANK: usize = 64;

/// Checks the graph and infers every value's type. Reports, all at once: values read but never
/// defined, undefined or repeated graph outputs, a missing output, cycles, every node whose
/// inputs or attributes are inconsistent, and tensors of rank over [`MAX_RANK`].
pub fn verify(g: &mut Graph) -> Result<(), IrErrors> {
    let mut errors = Vec::new();
    for id in g.node_ids().collect::<Vec<_>>() {
        let node = g.node(id);
        for &v in &node.inputs {
            if matches!(g.value(v).def, ValueDef::Undefined) {
                errors.push(IrError::UndefinedValue {
                    node: node.name.clone(),
                    value: g.value(v).name.clone(),
                });
            }
        }
    }
    let mut seen = Vec::new();
    for &o in g.outputs() {
        let name = g.value(o).name.clone();
        if matches!(g.value(o).def, ValueDef::Undefined) {
            errors.push(IrError::UndefinedOutput {
                value: name.clone(),
            });
        }
        if seen.contains(&o) {
            errors.push(IrError::DuplicateOutput { value: name });
        }
        seen.push(o);
    }
    if g.outputs().is_empty() {
        errors.push(IrError::NoOutputs);
    }
    if let Err(e) = g.topo_order() {
        errors.push(e);
    }
    if errors.is_empty()
        && let Err(IrErrors(es)) = infer_shapes(g)
    {
        errors.extend(es);
    }
    if errors.is_empty() {
        for v in g.value_ids() {
            let val = g.value(v);
            if let Some(ty) = &val.ty
                && ty.shape.rank() > MAX_RANK
            {
                errors.push(IrError::TensorSize {
                    tensor: val.name.clone(),
                    msg: format!("rank {} is over the limit of {MAX_RANK}", ty.shape.rank()),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IrErrors(errors))
    }
}

/// Replaces the symbolic batch in every graph input with `batch` and re-infers all shapes.
pub fn resolve_batch(g: &mut Graph, batch: usize) -> Result<(), IrErrors> {
    if batch == 0 {
        return Err(IrError::Input {
            input: "(batch)".into(),
            msg: "batch size must be at least 1".into(),
        }
        .into());
    }
    for v in g.inputs().to_vec() {
        if let Some(ty) = &g.value(v).ty {
            let shape = Shape::fixed(&ty.shape.resolve(batch));
            g.value_mut(v).ty = Some(TensorType::f32(shape));
        }
    }
    verify(g)
}

/// Checks run-time tensors against the graph inputs: every input present once, no extras, each
/// shape matching (the symbolic batch taking one consistent value). Returns the batch size
/// (1 when no input has a symbolic batch).
pub fn bind_inputs(g: &Graph, inputs: &HashMap<String, Tensor>) -> Result<usize, IrError> {
    for name in inputs.keys() {
        let is_input = g.find_value(name).is_some_and(|v| g.inputs().contains(&v));
        if !is_input {
            let expected: Vec<_> = g
                .inputs()
                .iter()
                .map(|&v| g.value(v).name.clone())
                .collect();
            return Err(IrError::Input {
                input: name.clone(),
                msg: format!(
                    "the model has no such input (its inputs: {})",
                    expected.join(", ")
                ),
            });
        }
    }
    let mut batch: Option<usize> = None;
    for &v in g.inputs() {
        let val = g.value(v);
        let ty = val.ty.as_ref().ok_or_else(|| IrError::Input {
            input: val.name.clone(),
            msg: "has no declared type".into(),
        })?;
        let t = inputs.get(&val.name).ok_or_else(|| IrError::Input {
            input: val.name.clone(),
            msg: format!("missing; expected a {ty} tensor"),
        })?;
        let mismatch = || IrError::Input {
            input: val.name.clone(),
            msg: format!("expected shape {}, got {:?}", ty.shape, t.shape()),
        };
        if t.shape().len() != ty.shape.rank() {
            return Err(mismatch());
        }
        for (&d, &n) in ty.shape.dims().iter().zip(t.shape()) {
            match d {
                Dim::Fixed(f) if f != n => return Err(mismatch()),
                Dim::Fixed(_) => {}
                Dim::Batch => match batch {
                    Some(b) if b != n => {
                        return Err(IrError::Input {
                            input: val.name.clone(),
                            msg: format!("batch size {n} differs from {b} given by another input"),
                        });
                    }
                    _ if n == 0 => {
                        return Err(IrError::Input {
                            input: val.name.clone(),
                            msg: format!(
                                "batch size 0 (shape {:?}); a batch needs at least one item",
                                t.shape()
                            ),
                        });
                    }
                    _ => batch = Some(n),
                },
            }
        }
    }
    Ok(batch.unwrap_or(1))
}

/// Refuses a batch size at which some tensor of `g` would need more than `budget` bytes (or
/// whose size overflows), naming the first such tensor: run before anything of that size is
/// allocated, so a huge batch or a shape blown up by pads or strides is an error, not an
/// allocation failure. Values without a type (not yet inferred) are skipped.
pub fn check_sizes(g: &Graph, batch: usize, budget: u64) -> Result<(), IrError> {
    for v in g.value_ids() {
        let val = g.value(v);
        let Some(ty) = &val.ty else { continue };
        let bytes = ty
            .shape
            .numel_with(batch)
            .map(|n| n as u128 * ty.dtype.size_bytes() as u128);
        match bytes {
            None => {
                return Err(IrError::TensorSize {
                    tensor: val.name.clone(),
                    msg: format!("shape {} at batch {batch} overflows", ty.shape),
                });
            }
            Some(b) if b > u128::from(budget) => {
                return Err(IrError::OverBudget {
                    tensor: val.name.clone(),
                    bytes: b,
                    budget,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}
