//! Weight data beside a `.seir` file: the [`WeightStore`] and its safetensors form.
//!
//! A model is `model.seir` (the graph) plus `model.safetensors` (the weights, one tensor per
//! `weight` line, keyed by the weight's name). This module works on bytes; the CLI reads and
//! writes the files. Only `F32` tensors are read today; a tensor of another data type is kept by
//! name only, an error if the graph declares it.
//!
//! It also makes the deterministic stand-in data that
//! [`parse_with_placeholder_weights`](super::parse_with_placeholder_weights) gives weights
//! whose data is absent.

use std::collections::BTreeMap;
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::IrError;
use crate::graph::Graph;
use crate::tensor::Tensor;

/// Weight tensors by name. Cloning shares the tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightStore {
    tensors: BTreeMap<String, Arc<Tensor>>,
    /// Tensors of the file in a data type excite does not read, by name: their data type.
    unsupported: BTreeMap<String, String>,
}

fn werr(msg: impl Into<String>) -> IrError {
    IrError::Weights { msg: msg.into() }
}

impl WeightStore {
    pub fn new() -> WeightStore {
        WeightStore::default()
    }

    /// The weights of `g`, sharing its tensors.
    pub fn from_graph(g: &Graph) -> WeightStore {
        let tensors = g
            .weights()
            .map(|(v, t)| (g.value(v).name.clone(), Arc::clone(t)))
            .collect();
        WeightStore {
            tensors,
            unsupported: BTreeMap::new(),
        }
    }

    /// Adds or replaces a tensor, returning the one it replaced.
    pub fn insert(&mut self, name: impl Into<String>, t: Arc<Tensor>) -> Option<Arc<Tensor>> {
        self.tensors.insert(name.into(), t)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Tensor>> {
        self.tensors.get(name)
    }

    /// The data type of tensor `name` when the file held it in a type excite does not read
    /// (only `F32` is read): declaring such a weight is an error, an undeclared one is ignored
    /// like any tensor the graph does not declare.
    pub fn unsupported(&self, name: &str) -> Option<&str> {
        self.unsupported.get(name).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensors sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Tensor>)> + '_ {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Reads a safetensors file's bytes: its `F32` tensors, and the names and data types of the
    /// others ([`WeightStore::unsupported`]).
    pub fn from_safetensors(bytes: &[u8]) -> Result<WeightStore, IrError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| match inconsistent_entry(bytes) {
            // The crate's message for this case names no tensor.
            Some(name) => werr(format!(
                "unreadable safetensors data: tensor `{name}`: its shape and data type do not \
                 match its data offsets"
            )),
            None => werr(format!("unreadable safetensors data: {e}")),
        })?;
        let mut tensors = BTreeMap::new();
        let mut unsupported = BTreeMap::new();
        for (name, view) in st.iter() {
            if view.dtype() != Dtype::F32 {
                unsupported.insert(name.to_string(), view.dtype().to_string());
                continue;
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(c); // chunks_exact(4) yields 4-byte chunks
                    f32::from_le_bytes(b)
                })
                .collect();
            let t = Tensor::new(view.shape().to_vec(), data)
                .map_err(|e| werr(format!("tensor `{name}`: {e}")))?;
            tensors.insert(name.to_string(), Arc::new(t));
        }
        Ok(WeightStore {
            tensors,
            unsupported,
        })
    }

    /// Writes the tensors as safetensors bytes (little-endian `F32`, keyed by name).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, IrError> {
        let bytes: Vec<(&str, &[usize], Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let b = t.data().iter().flat_map(|x| x.to_le_bytes()).collect();
                (name.as_str(), t.shape(), b)
            })
            .collect();
        let mut views = Vec::with_capacity(bytes.len());
        for (name, shape, b) in &bytes {
            let view = TensorView::new(Dtype::F32, shape.to_vec(), b)
                .map_err(|e| werr(format!("tensor `{name}`: {e}")))?;
            views.push((*name, view));
        }
        safetensors::serialize(views, None).map_err(|e| werr(format!("cannot serialise: {e}")))
    }
}

/// The first tensor of a safetensors header whose byte range disagrees with its shape and
/// data type (or whose entry is malformed), to name it in the error.
fn inconsistent_entry(bytes: &[u8]) -> Option<String> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(len).ok()?)?)?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header).ok()?;
    map.iter()
        .filter(|(name, _)| *name != "__metadata__")
        .find(|(_, info)| {
            let size = match info["dtype"].as_str() {
                Some("F64" | "I64" | "U64") => 8,
                Some("F32" | "I32" | "U32") => 4,
                Some("F16" | "BF16" | "I16" | "U16") => 2,
                Some("I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2") => 1,
                _ => return false, // other types: left to the crate
            };
            let bytes = info["shape"].as_array().and_then(|dims| {
                dims.iter()
                    .try_fold(size, |acc: u64, d| acc.checked_mul(d.as_u64()?))
            });
            let range = info["data_offsets"]
                .as_array()
                .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)));
            match (bytes, range) {
                (Some(b), Some((a, e))) => e.checked_sub(a) != Some(b),
                _ => true,
            }
        })
        .map(|(name, _)| name.clone())
}

/// Most elements a placeholder weight may have (256 MiB of `f32`), so that a typo in a shape
/// gives an error instead of exhausting memory.
pub(super) const PLACEHOLDER_MAX_ELEMS: usize = 1 << 26;

/// Deterministic stand-in data for the weight `name`: a SplitMix64 stream seeded by the FNV-1a
/// hash of the name. Values are uniform in `±1/sqrt(fan_in)` for tensors of rank 2 or more
/// (`fan_in` = elements per output channel), in `[-0.5, 0.5)` for smaller ones, and in
/// `[0.5, 1.5)` when `positive` (batch-norm variances).
pub(super) fn placeholder(name: &str, shape: &[usize], positive: bool) -> Tensor {
    let mut state = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let numel = crate::tensor::numel(shape).unwrap_or(0);
    let scale = match shape {
        [out, ..] if shape.len() >= 2 && *out > 0 => {
            let fan_in = (numel / out).max(1) as f32;
            2.0 / fan_in.sqrt()
        }
        _ => 1.0,
    };
    let data = (0..numel)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let u = (z >> 40) as f32 / (1u64 << 24) as f32; // uniform in [0, 1)
            if positive { 0.5 + u } else { (u - 0.5) * scale }
        })
        .collect();
    // numel is the product of `shape`, so the sizes agree.
    Tensor::new(shape.to_vec(), data).unwrap_or_else(|_| Tensor::zeros(vec![0]))
}
