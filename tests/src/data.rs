//! Readers for the conformance data: ONNX `TensorProto` files (`input_K.pb`, `output_K.pb`),
//! NumPy `.npy` files, and the facts about an ONNX model that the runners need without going
//! through the importer under test (graph input and output names, element types, op types).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use excite_ir::Tensor;
use excite_onnx::proto::{ModelProto, TensorProto, ValueInfoProto, tensor_proto, type_proto};
use prost::Message;

/// A data file that cannot be turned into an f32 tensor.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid protobuf message: {source}", path.display())]
    Decode {
        path: PathBuf,
        source: prost::DecodeError,
    },
    #[error("{}: tensor `{name}` has element type {dtype}; excite computes only FLOAT", path.display())]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("{}: tensor `{name}`: {msg}", path.display())]
    Malformed {
        path: PathBuf,
        name: String,
        msg: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The spelling of an ONNX element type (`FLOAT`, `INT64`, ...).
pub fn dtype_name(code: i32) -> String {
    match tensor_proto::DataType::try_from(code) {
        Ok(dt) => dt.as_str_name().to_string(),
        Err(_) => format!("unknown type {code}"),
    }
}

/// Reads a serialised `TensorProto`; returns its name and its data as an f32 tensor.
pub fn read_tensor_pb(path: &Path) -> Result<(String, Tensor), DataError> {
    let bytes = read(path)?;
    let proto = TensorProto::decode(bytes.as_slice()).map_err(|source| DataError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    let name = proto.name().to_string();
    let tensor = tensor_from_proto(&proto).map_err(|e| match e {
        ProtoError::Dtype(dtype) => DataError::Dtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype,
        },
        ProtoError::Malformed(msg) => DataError::Malformed {
            path: path.to_path_buf(),
            name: name.clone(),
            msg,
        },
    })?;
    Ok((name, tensor))
}

/// Why a `TensorProto` is not an f32 tensor.
#[derive(Debug, PartialEq)]
pub enum ProtoError {
    Dtype(String),
    Malformed(String),
}

/// Decodes a FLOAT `TensorProto` held in `float_data` or little-endian `raw_data`.
pub fn tensor_from_proto(t: &TensorProto) -> Result<Tensor, ProtoError> {
    let code = t.data_type.unwrap_or(0);
    if code != tensor_proto::DataType::Float as i32 {
        return Err(ProtoError::Dtype(dtype_name(code)));
    }
    if !t.external_data.is_empty() {
        return Err(ProtoError::Malformed(
            "external data is not supported".into(),
        ));
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| ProtoError::Malformed(format!("dim {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let data = match &t.raw_data {
        Some(raw) if !raw.is_empty() || t.float_data.is_empty() => {
            if raw.len() % 4 != 0 {
                let msg = format!("raw_data has {} bytes, not a multiple of 4", raw.len());
                return Err(ProtoError::Malformed(msg));
            }
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        _ => t.float_data.clone(),
    };
    Tensor::new(shape, data).map_err(|e| ProtoError::Malformed(e.to_string()))
}

/// Reads a little-endian f32 `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor, DataError> {
    let bytes = read(path)?;
    let malformed = |msg: String| DataError::Malformed {
        path: path.to_path_buf(),
        name: String::new(),
        msg,
    };
    let npy = npyz::NpyFile::new(bytes.as_slice()).map_err(|e| malformed(e.to_string()))?;
    if npy.order() != npyz::Order::C {
        return Err(malformed("Fortran-order arrays are not supported".into()));
    }
    let shape = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| malformed(format!("dim {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let data = npy
        .into_vec::<f32>()
        .map_err(|e| malformed(e.to_string()))?;
    Tensor::new(shape, data).map_err(|e| malformed(e.to_string()))
}

/// One graph input or output as the ONNX file declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    pub name: String,
    /// The tensor element type (`FLOAT`, ...), or the kind of a non-tensor value (`sequence`).
    pub ty: String,
}

impl Io {
    pub fn is_f32(&self) -> bool {
        self.ty == "FLOAT"
    }
}

/// What the runners need to know about a model, read straight from the protobuf.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Graph inputs that are not initializers, in graph order.
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    /// The op types the graph uses (top level).
    pub ops: BTreeSet<String>,
}

impl ModelInfo {
    pub fn decode(bytes: &[u8]) -> Result<ModelInfo, prost::DecodeError> {
        let model = ModelProto::decode(bytes)?;
        let graph = model.graph.unwrap_or_default();
        let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|vi| !inits.contains(vi.name()))
            .map(io_of)
            .collect();
        Ok(ModelInfo {
            inputs,
            outputs: graph.output.iter().map(io_of).collect(),
            ops: graph.node.iter().map(|n| n.op_type().to_string()).collect(),
        })
    }

    /// True when every input and output is an f32 tensor.
    pub fn all_f32(&self) -> bool {
        self.inputs.iter().chain(&self.outputs).all(Io::is_f32)
    }
}

fn io_of(vi: &ValueInfoProto) -> Io {
    let ty = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => dtype_name(t.elem_type.unwrap_or(0)),
        Some(type_proto::Value::SequenceType(_)) => "sequence".into(),
        Some(type_proto::Value::MapType(_)) => "map".into(),
        Some(type_proto::Value::OptionalType(_)) => "optional".into(),
        Some(type_proto::Value::SparseTensorType(_)) => "sparse tensor".into(),
        Some(type_proto::Value::OpaqueType(_)) => "opaque".into(),
        None => "untyped".into(),
    };
    Io {
        name: vi.name().to_string(),
        ty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float_proto(dims: Vec<i64>) -> TensorProto {
        TensorProto {
            dims,
            data_type: Some(tensor_proto::DataType::Float as i32),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_float_data_and_raw_data() {
        let mut t = float_proto(vec![2, 2]);
        t.float_data = vec![1.0, -2.5, 3.0, 0.25];
        let a = tensor_from_proto(&t).map(|t| (t.shape().to_vec(), t.data().to_vec()));
        assert_eq!(a, Ok((vec![2, 2], vec![1.0, -2.5, 3.0, 0.25])));

        let mut t = float_proto(vec![3]);
        t.raw_data = Some(
            [1.5f32, -7.0, 1e-3]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        let b = tensor_from_proto(&t).map(|t| t.data().to_vec());
        assert_eq!(b, Ok(vec![1.5, -7.0, 1e-3]));
    }

    #[test]
    fn refuses_other_dtypes_and_bad_sizes() {
        let mut t = float_proto(vec![2]);
        t.data_type = Some(tensor_proto::DataType::Int64 as i32);
        assert_eq!(
            tensor_from_proto(&t),
            Err(ProtoError::Dtype("INT64".into()))
        );
        let mut t = float_proto(vec![2]);
        t.raw_data = Some(vec![0; 6]);
        assert!(matches!(
            tensor_from_proto(&t),
            Err(ProtoError::Malformed(_))
        ));
        let mut t = float_proto(vec![3]);
        t.float_data = vec![1.0, 2.0];
        assert!(matches!(
            tensor_from_proto(&t),
            Err(ProtoError::Malformed(_))
        ));
    }
}
