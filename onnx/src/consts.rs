//! Compile-time constants of the importer: initializers, `Constant` nodes and the results of
//! folded shape subgraphs, with the memory budget that every allocation is checked against.
//!
//! Integer constants may hold the symbolic batch size ([`Int::Batch`]), which appears when a
//! shape subgraph reads `Shape` of a tensor whose first dimension is the batch; data-moving
//! folds (Gather, Concat, Slice, ...) carry it, arithmetic keeps it only through identities.

use excite_ir::Tensor;

use crate::attrs::brief;
use crate::error::OnnxError;
use crate::proto::TensorProto;
use crate::proto::tensor_proto::{DataLocation, DataType};

/// One integer element of a constant: a number or the symbolic batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int {
    V(i64),
    Batch,
}

/// The elements of a constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    Int(Vec<Int>),
}

/// A constant tensor known at import time (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub fn numel(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::Int(v) => v.len(),
        }
    }

    pub fn ints(dims: Vec<usize>, v: Vec<i64>) -> Const {
        Const {
            dims,
            data: Data::Int(v.into_iter().map(Int::V).collect()),
        }
    }

    /// The integer elements, `None` for float data.
    pub fn syms(&self) -> Option<&[Int]> {
        match &self.data {
            Data::Int(v) => Some(v),
            Data::F32(_) => None,
        }
    }

    /// The elements as plain integers; `None` for float data or when the batch symbol appears.
    pub fn plain_ints(&self) -> Option<Vec<i64>> {
        self.syms()?
            .iter()
            .map(|i| match i {
                Int::V(v) => Some(*v),
                Int::Batch => None,
            })
            .collect()
    }

    /// The elements as `f32` (integers converted), `None` when the batch symbol appears.
    pub fn floats(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::F32(v) => Some(v.clone()),
            Data::Int(_) => Some(self.plain_ints()?.iter().map(|&v| v as f32).collect()),
        }
    }

    /// The same elements picked by `idx` (row-major source positions) into shape `dims`.
    pub fn take(&self, idx: &[usize], dims: Vec<usize>) -> Const {
        let data = match &self.data {
            Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
            Data::Int(v) => Data::Int(idx.iter().map(|&i| v[i]).collect()),
        };
        Const { dims, data }
    }

    /// Bytes one element occupies in memory.
    pub fn elem_bytes(&self) -> u128 {
        match self.data {
            Data::F32(_) => 4,
            Data::Int(_) => std::mem::size_of::<Int>() as u128,
        }
    }

    /// The constant as an IR weight; integer constants are refused (the IR computes in `f32`).
    pub fn to_tensor(&self, name: &str) -> Result<Tensor, String> {
        match &self.data {
            Data::F32(v) => Tensor::new(self.dims.clone(), v.clone()).map_err(|e| e.to_string()),
            Data::Int(_) => Err(format!(
                "integer tensor `{name}` is used as run-time data; only float tensors can be"
            )),
        }
    }
}

/// The memory budget: no single tensor may exceed it, and neither may everything the importer
/// allocates for constants together.
#[derive(Debug)]
pub struct Budget {
    pub limit: u64,
    used: u128,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget { limit, used: 0 }
    }

    /// Checks that a tensor of `numel` elements of `elem_bytes` fits the per-tensor limit,
    /// without charging it.
    pub fn check(&self, tensor: &str, numel: u128, elem_bytes: u128) -> Result<(), OnnxError> {
        let bytes = numel.saturating_mul(elem_bytes);
        if bytes > u128::from(self.limit) {
            return Err(self.over(tensor, bytes));
        }
        Ok(())
    }

    /// Checks and charges an allocation about to be made.
    pub fn charge(&mut self, tensor: &str, numel: u128, elem_bytes: u128) -> Result<(), OnnxError> {
        self.check(tensor, numel, elem_bytes)?;
        let bytes = numel.saturating_mul(elem_bytes);
        let total = self.used.saturating_add(bytes);
        if total > u128::from(self.limit) {
            return Err(self.over(tensor, total));
        }
        self.used = total;
        Ok(())
    }

    fn over(&self, tensor: &str, bytes: u128) -> OnnxError {
        OnnxError::OverBudget {
            tensor: tensor.to_string(),
            bytes,
            budget: self.limit,
        }
    }
}

/// Element count of `dims`, each checked non-negative, as `u128` (cannot overflow for the 64
/// dims or fewer that we accept; more are refused).
pub fn numel_of(dims: &[i64]) -> Result<u128, String> {
    if dims.len() > 64 {
        return Err(format!("rank {} is too large", dims.len()));
    }
    let mut n: u128 = 1;
    for &d in dims {
        if d < 0 {
            return Err(format!("negative dimension {d} in {}", brief(dims)));
        }
        n = n
            .checked_mul(d as u128)
            .ok_or_else(|| format!("dimensions {} overflow", brief(dims)))?;
    }
    Ok(n)
}

/// Reads a `TensorProto` (an initializer or a `Constant`'s value) into a [`Const`]. Checks the
/// declared size against the budget before allocating, and the data length against the dims.
/// External data is refused without touching the file system.
pub fn from_proto(t: &TensorProto, name: &str, budget: &mut Budget) -> Result<Const, OnnxError> {
    let err = |msg: String| OnnxError::Initializer {
        tensor: name.to_string(),
        msg,
    };
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(OnnxError::ExternalData {
            tensor: name.to_string(),
        });
    }
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    let numel = numel_of(&t.dims).map_err(err)?;
    let dt = t.data_type.unwrap_or(0);
    let kind = DataType::try_from(dt).map_err(|_| err(format!("unknown data type {dt}")))?;
    let (raw_size, is_float) = match kind {
        DataType::Float => (4, true),
        DataType::Double => (8, true),
        DataType::Float16 => (2, true),
        DataType::Int64 | DataType::Uint64 => (8, false),
        DataType::Int32 | DataType::Uint32 => (4, false),
        DataType::Int16 | DataType::Uint16 => (2, false),
        DataType::Int8 | DataType::Uint8 | DataType::Bool => (1, false),
        other => {
            return Err(err(format!(
                "data type {} is not supported",
                other.as_str_name()
            )));
        }
    };
    let elem = if is_float {
        4
    } else {
        std::mem::size_of::<Int>() as u128
    };
    budget.charge(name, numel, elem)?;
    // In budget, so the count fits in usize.
    let n = usize::try_from(numel).map_err(|_| err("too many elements".into()))?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let data = match &t.raw_data {
        Some(raw) => {
            let want = numel * raw_size;
            if raw.len() as u128 != want {
                return Err(err(format!(
                    "raw_data has {} bytes, dims {:?} of {} need {want}",
                    raw.len(),
                    t.dims,
                    kind.as_str_name()
                )));
            }
            decode_raw(raw, kind)
        }
        None => typed(t, kind, n).map_err(err)?,
    };
    Ok(Const { dims, data })
}

/// Decodes little-endian `raw_data` whose length was checked.
fn decode_raw(raw: &[u8], kind: DataType) -> Data {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    let ints = |v: Vec<i64>| Data::Int(v.into_iter().map(Int::V).collect());
    match kind {
        DataType::Float => Data::F32(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
        DataType::Double => Data::F32(
            chunks::<8>(raw)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        DataType::Float16 => Data::F32(
            chunks::<2>(raw)
                .map(|b| f16_to_f32(u16::from_le_bytes(b)))
                .collect(),
        ),
        DataType::Int64 => ints(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        DataType::Uint64 => ints(
            chunks::<8>(raw)
                .map(|b| u64::from_le_bytes(b) as i64)
                .collect(),
        ),
        DataType::Int32 => ints(
            chunks::<4>(raw)
                .map(|b| i32::from_le_bytes(b).into())
                .collect(),
        ),
        DataType::Uint32 => ints(
            chunks::<4>(raw)
                .map(|b| u32::from_le_bytes(b).into())
                .collect(),
        ),
        DataType::Int16 => ints(
            chunks::<2>(raw)
                .map(|b| i16::from_le_bytes(b).into())
                .collect(),
        ),
        DataType::Uint16 => ints(
            chunks::<2>(raw)
                .map(|b| u16::from_le_bytes(b).into())
                .collect(),
        ),
        DataType::Int8 => ints(raw.iter().map(|&b| (b as i8).into()).collect()),
        _ => ints(raw.iter().map(|&b| b.into()).collect()),
    }
}

/// Reads the typed repeated field that holds `kind`, checking it has `n` elements.
fn typed(t: &TensorProto, kind: DataType, n: usize) -> Result<Data, String> {
    let check = |len: usize, field: &str| {
        if len == n {
            Ok(())
        } else {
            Err(format!(
                "{field} has {len} elements, dims {:?} need {n}",
                t.dims
            ))
        }
    };
    let ints = |v: Vec<i64>| Data::Int(v.into_iter().map(Int::V).collect());
    Ok(match kind {
        DataType::Float => {
            check(t.float_data.len(), "float_data")?;
            Data::F32(t.float_data.clone())
        }
        DataType::Double => {
            check(t.double_data.len(), "double_data")?;
            Data::F32(t.double_data.iter().map(|&v| v as f32).collect())
        }
        DataType::Float16 => {
            check(t.int32_data.len(), "int32_data")?;
            Data::F32(t.int32_data.iter().map(|&v| f16_to_f32(v as u16)).collect())
        }
        DataType::Int64 => {
            check(t.int64_data.len(), "int64_data")?;
            ints(t.int64_data.clone())
        }
        DataType::Uint64 | DataType::Uint32 => {
            check(t.uint64_data.len(), "uint64_data")?;
            ints(t.uint64_data.iter().map(|&v| v as i64).collect())
        }
        _ => {
            check(t.int32_data.len(), "int32_data")?;
            ints(t.int32_data.iter().map(|&v| v.into()).collect())
        }
    })
}

/// IEEE half-precision bits to `f32`.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value is m * 2^-24.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_values() {
        // 0x3c00 = 1.0, 0xc000 = -2.0, 0x7bff = 65504 (max), 0x0001 = 2^-24 (smallest subnormal).
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn budget_counts_the_total() {
        let mut b = Budget::new(100);
        assert!(b.charge("a", 20, 4).is_ok());
        let e = b.charge("b", 6, 4).expect_err("over the total");
        assert_eq!(e.kind(), "OverBudget");
        assert!(e.to_string().contains("`b`"), "{e}");
        assert!(b.check("c", 26, 4).is_err());
    }
}
