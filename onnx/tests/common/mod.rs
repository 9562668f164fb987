//! Builders for small ONNX models made from the prost types, shared by the integration tests.
#![allow(dead_code)]

use excite_onnx::proto::attribute_proto::AttributeType;
use excite_onnx::proto::tensor_proto::DataType;
use excite_onnx::proto::tensor_shape_proto::Dimension;
use excite_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use excite_onnx::proto::type_proto::{Tensor as TypeTensor, Value as TypeValue};
use excite_onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

/// A model under construction.
#[derive(Default)]
pub struct M {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    pub inputs: Vec<ValueInfoProto>,
    pub outputs: Vec<ValueInfoProto>,
}

impl M {
    pub fn new(opset: i64) -> M {
        M {
            opset,
            ..M::default()
        }
    }

    /// A float input; a dim of -1 is written as `dim_param "batch"`.
    pub fn input(mut self, name: &str, dims: &[i64]) -> M {
        self.inputs.push(value_info(name, Some(dims)));
        self
    }

    pub fn output(mut self, name: &str) -> M {
        self.outputs.push(value_info(name, None));
        self
    }

    pub fn node(
        mut self,
        op: &str,
        name: &str,
        ins: &[&str],
        outs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> M {
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..NodeProto::default()
        });
        self
    }

    pub fn init(mut self, t: TensorProto) -> M {
        self.inits.push(t);
        self
    }

    pub fn bytes(self) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset),
            }],
            graph: Some(GraphProto {
                name: Some("test".into()),
                node: self.nodes,
                initializer: self.inits,
                input: self.inputs,
                output: self.outputs,
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
        .encode_to_vec()
    }
}

pub fn value_info(name: &str, dims: Option<&[i64]>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .map(|&v| Dimension {
                value: Some(if v < 0 {
                    DimValue::DimParam("batch".into())
                } else {
                    DimValue::DimValue(v)
                }),
                ..Dimension::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TypeTensor {
                elem_type: Some(DataType::Float as i32),
                shape,
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

/// Deterministic, non-zero, non-repeating test data.
pub fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 + 1.0) * 0.37 + seed as f32).sin())
        .collect()
}

/// A float initializer stored as raw little-endian bytes.
pub fn f32_raw(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..TensorProto::default()
    }
}

/// A float initializer in `float_data`.
pub fn f32_typed(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        float_data: v.to_vec(),
        ..TensorProto::default()
    }
}

/// An int64 initializer in `int64_data`.
pub fn i64_init(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Int64 as i32),
        int64_data: v.to_vec(),
        ..TensorProto::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ty as i32),
        ..AttributeProto::default()
    }
}

pub fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub fn a_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, AttributeType::Float)
    }
}

pub fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}

pub fn a_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(t),
        ..attr(name, AttributeType::Tensor)
    }
}

/// One line per node: `name: Op(inputs) -> outputs : type`, in topological order.
pub fn summary(g: &excite_ir::Graph) -> String {
    let mut s = String::new();
    for id in g.topo_order().expect("acyclic") {
        let n = g.node(id);
        let names = |vs: &[excite_ir::ValueId]| {
            vs.iter()
                .map(|&v| g.value(v).name.clone())
                .collect::<Vec<_>>()
                .join(",")
        };
        let ty = g
            .ty_of(n.outputs[0])
            .map_or("?".to_string(), |t| t.to_string());
        s += &format!(
            "{}: {:?}({}) -> {} : {ty}\n",
            n.name,
            n.op,
            names(&n.inputs),
            names(&n.outputs)
        );
    }
    s
}
