//! `.npy` input and output (through the `npyz` crate), with the checks a user needs: f32 only,
//! C order, data no shorter than the header claims (checked before allocating).

use std::path::Path;

use anyhow::{Context, bail};
use excite_ir::Tensor;
use npyz::WriterBuilder;

/// Reads an f32 `.npy` file; `what` names the tensor in errors.
pub fn read(path: &Path, what: &str) -> anyhow::Result<Tensor> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("input `{what}`: cannot read {}", path.display()))?;
    let file = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("input `{what}`: {} is not a .npy file", path.display()))?;
    let dtype = file.dtype();
    if dtype != npyz::DType::Plain("<f4".parse().context("f32 type string")?) {
        bail!(
            "input `{what}`: expected f32 ('<f4') data, {} holds {}",
            path.display(),
            dtype.descr()
        );
    }
    if file.order() != npyz::Order::C {
        bail!(
            "input `{what}`: {} is in Fortran order; save it in C order",
            path.display()
        );
    }
    let shape: Vec<usize> = file
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .with_context(|| format!("input `{what}`: shape does not fit in memory"))?;
    let numel = excite_ir::tensor::numel(&shape)
        .filter(|n| n.checked_mul(4).is_some_and(|b| b <= bytes.len()))
        .with_context(|| {
            format!(
                "input `{what}`: header shape {shape:?} needs more data than the {} bytes of {}",
                bytes.len(),
                path.display()
            )
        })?;
    let data: Vec<f32> = file
        .into_vec()
        .with_context(|| format!("input `{what}`: reading {}", path.display()))?;
    if data.len() != numel {
        bail!(
            "input `{what}`: {} holds {} values, shape {shape:?} needs {numel}",
            path.display(),
            data.len()
        );
    }
    Ok(Tensor::new(shape, data)?)
}

/// Writes a tensor as an f32 `.npy` file.
pub fn write(path: &Path, t: &Tensor) -> anyhow::Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut out = Vec::with_capacity(128 + 4 * t.numel());
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()?;
    w.extend(t.data().iter().copied())?;
    w.finish()?;
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}
