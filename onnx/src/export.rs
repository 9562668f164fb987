//! Graph to ONNX: an opset-17 model whose initializers hold the weights as little-endian
//! `raw_data`, with the symbolic batch written as `dim_param "N"`. Used by `excite zoo build
//! --onnx` and to view (fused) graphs in Netron.
//!
//! IR attributes that ONNX passes as inputs (Reshape/Expand shapes, Clip bounds) become small
//! initializers named after the node. `Silu`, which ONNX lacks, is written as `Sigmoid` + `Mul`.
//!
//! The fused ops `FusedConv` and `SeBlock` are written as nodes of the custom domain
//! [`FUSED_DOMAIN`] (version 1, imported only when the graph has one) with the same inputs and
//! the attributes of their `.seir` form: integers for the flags, a string naming each
//! activation (`act`, `gate`, `post_act`) and floats for its parameters (`act_alpha`,
//! `act_beta`, `act_min`, `act_max`, likewise for `gate_*` and `post_act_*`). Netron shows
//! them as they are; ONNX Runtime and our importer refuse the domain.

use excite_ir::op::Pool;
use excite_ir::{Act, Dim, Graph, Op, Shape, ValueId};
use prost::Message;

use crate::error::OnnxError;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::Dimension;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::{Tensor as TypeTensor, Value as TypeValue};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The opset of exported models.
pub const EXPORT_OPSET: i64 = 17;

/// The ONNX domain of the fused ops (`FusedConv`, `SeBlock`) in exported models.
pub const FUSED_DOMAIN: &str = "ai.excite";

/// Writes `g` as an ONNX model. Node outputs without a type (an unverified graph) are written
/// without shapes.
pub fn export(g: &Graph) -> Result<Vec<u8>, OnnxError> {
    let order = g.topo_order()?;
    let mut ex = Exporter {
        g,
        graph: GraphProto {
            name: Some(g.name.clone()),
            ..GraphProto::default()
        },
        taken: g.value_ids().map(|v| g.value(v).name.clone()).collect(),
    };
    for (v, t) in g.weights() {
        let raw = t.data().iter().flat_map(|x| x.to_le_bytes()).collect();
        ex.graph.initializer.push(TensorProto {
            name: Some(g.value(v).name.clone()),
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(raw),
            ..TensorProto::default()
        });
    }
    for &v in g.inputs() {
        let vi = ex.value_info(v);
        ex.graph.input.push(vi);
    }
    for &v in g.outputs() {
        let vi = ex.value_info(v);
        ex.graph.output.push(vi);
    }
    for id in order {
        ex.node(id)?;
    }
    let mut opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(EXPORT_OPSET),
    }];
    if ex
        .graph
        .node
        .iter()
        .any(|n| n.domain.as_deref() == Some(FUSED_DOMAIN))
    {
        opset_import.push(OperatorSetIdProto {
            domain: Some(FUSED_DOMAIN.into()),
            version: Some(1),
        });
    }
    let model = ModelProto {
        ir_version: Some(8),
        opset_import,
        producer_name: Some("excite".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(ex.graph),
        ..ModelProto::default()
    };
    Ok(model.encode_to_vec())
}

struct Exporter<'g> {
    g: &'g Graph,
    graph: GraphProto,
    /// Names in use, so that added initializers and values get fresh ones.
    taken: std::collections::HashSet<String>,
}

impl Exporter<'_> {
    fn value_info(&self, v: ValueId) -> ValueInfoProto {
        let val = self.g.value(v);
        let shape = val.ty.as_ref().map(|t| shape_proto(&t.shape));
        ValueInfoProto {
            name: Some(val.name.clone()),
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

    /// A name based on `base` that no value has.
    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.taken.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    /// Adds an int64 or float initializer and returns its name.
    fn init(&mut self, base: &str, dims: Vec<i64>, data: Init) -> String {
        let name = self.fresh(base);
        let (dt, raw): (DataType, Vec<u8>) = match data {
            Init::I64(v) => (
                DataType::Int64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Init::F32(v) => (
                DataType::Float,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        };
        self.graph.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims,
            data_type: Some(dt as i32),
            raw_data: Some(raw),
            ..TensorProto::default()
        });
        name
    }

    fn node(&mut self, id: excite_ir::NodeId) -> Result<(), OnnxError> {
        let n = self.g.node(id);
        let names = |vs: &[ValueId]| -> Vec<String> {
            vs.iter().map(|&v| self.g.value(v).name.clone()).collect()
        };
        let mut inputs = names(&n.inputs);
        let outputs = names(&n.outputs);
        let mut attrs = Vec::new();
        let mut op_type = n.op.name();
        let mut domain = None;
        match &n.op {
            Op::Conv(c) => attrs.extend(self.conv_attrs(c, n.inputs[1])),
            Op::FusedConv(f) => {
                attrs.extend(self.conv_attrs(&f.conv, n.inputs[1]));
                attrs.push(int("bias", i64::from(f.bias)));
                act_attrs(&mut attrs, "act", f.act);
                attrs.push(int("residual", i64::from(f.residual)));
                act_attrs(&mut attrs, "post_act", f.post_act);
                domain = Some(FUSED_DOMAIN);
            }
            Op::SeBlock(se) => {
                act_attrs(&mut attrs, "act", Some(se.act));
                act_attrs(&mut attrs, "gate", Some(se.gate));
                attrs.push(int("bias1", i64::from(se.bias1)));
                attrs.push(int("bias2", i64::from(se.bias2)));
                attrs.push(int("residual", i64::from(se.residual)));
                act_attrs(&mut attrs, "post_act", se.post_act);
                domain = Some(FUSED_DOMAIN);
            }
            Op::BatchNorm { epsilon } => attrs.push(float("epsilon", *epsilon)),
            Op::HardSigmoid { alpha, beta } => {
                attrs.push(float("alpha", *alpha));
                attrs.push(float("beta", *beta));
            }
            Op::Silu => {
                let s = self.fresh(&format!("{}_sigmoid", outputs[0]));
                self.graph.node.push(node(
                    &format!("{}/sigmoid", n.name),
                    "Sigmoid",
                    inputs.clone(),
                    vec![s.clone()],
                    vec![],
                ));
                inputs.push(s);
                op_type = "Mul";
            }
            Op::Clip { min, max } => {
                for (v, inf) in [(*min, f32::NEG_INFINITY), (*max, f32::INFINITY)] {
                    inputs.push(if v == inf {
                        String::new()
                    } else {
                        self.init(&format!("{}_bound", n.name), vec![], Init::F32(vec![v]))
                    });
                }
                while inputs.last().is_some_and(String::is_empty) {
                    inputs.pop();
                }
            }
            Op::ReduceMean { axes, keepdims } => {
                attrs.push(ints("axes", axes));
                attrs.push(int("keepdims", i64::from(*keepdims)));
            }
            Op::AveragePool(p) | Op::MaxPool(p) => {
                let avg = matches!(n.op, Op::AveragePool(_));
                if avg && p.dilations != [1, 1] {
                    return Err(OnnxError::Export {
                        node: n.name.clone(),
                        msg: format!("AveragePool dilations {:?} need opset 19", p.dilations),
                    });
                }
                attrs.extend(pool_attrs(p, avg));
            }
            Op::Gemm(gm) => {
                attrs.push(float("alpha", gm.alpha));
                attrs.push(float("beta", gm.beta));
                attrs.push(int("transA", i64::from(gm.trans_a)));
                attrs.push(int("transB", i64::from(gm.trans_b)));
            }
            Op::Flatten { axis } => attrs.push(int("axis", *axis as i64)),
            Op::Reshape { shape, allowzero } => {
                let s = self.init(
                    &format!("{}_shape", n.name),
                    vec![shape.len() as i64],
                    Init::I64(shape.clone()),
                );
                inputs.push(s);
                attrs.push(int("allowzero", i64::from(*allowzero)));
            }
            Op::Expand { shape } => {
                let s = self.init(
                    &format!("{}_shape", n.name),
                    vec![shape.len() as i64],
                    Init::I64(shape.clone()),
                );
                inputs.push(s);
            }
            Op::Concat { axis } | Op::Softmax { axis } => attrs.push(int("axis", *axis as i64)),
            Op::Relu
            | Op::Sigmoid
            | Op::HardSwish
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::GlobalAveragePool
            | Op::MatMul
            | Op::Identity
            | Op::Dropout => {}
            other => {
                return Err(OnnxError::Export {
                    node: n.name.clone(),
                    msg: format!("op {} has no ONNX form", other.name()),
                });
            }
        }
        let mut proto = node(&n.name, op_type, inputs, outputs, attrs);
        proto.domain = domain.map(String::from);
        self.graph.node.push(proto);
        Ok(())
    }

    /// A convolution's attributes, `kernel_shape` from the weight `w` when its type is known.
    fn conv_attrs(&self, c: &excite_ir::op::Conv, w: ValueId) -> Vec<AttributeProto> {
        let mut attrs = Vec::new();
        let w = self.g.ty_of(w).and_then(|t| t.shape.as_fixed());
        if let Some(w) = w.filter(|w| w.len() == 4) {
            attrs.push(ints("kernel_shape", &[w[2], w[3]]));
        }
        attrs.push(ints("strides", &c.strides));
        attrs.push(ints("pads", &c.pads));
        attrs.push(ints("dilations", &c.dilations));
        attrs.push(int("group", c.group as i64));
        attrs
    }
}

/// An activation slot of a fused op: nothing when absent, else `key` naming the activation
/// and `key_alpha`/`key_beta` (HardSigmoid) or `key_min`/`key_max` (Clip).
fn act_attrs(out: &mut Vec<AttributeProto>, key: &str, a: Option<Act>) {
    let Some(a) = a else { return };
    out.push(string(key, a.name()));
    match a {
        Act::HardSigmoid { alpha, beta } => {
            out.push(float(&format!("{key}_alpha"), alpha));
            out.push(float(&format!("{key}_beta"), beta));
        }
        Act::Clip { min, max } => {
            out.push(float(&format!("{key}_min"), min));
            out.push(float(&format!("{key}_max"), max));
        }
        Act::Relu | Act::Sigmoid | Act::HardSwish | Act::Silu => {}
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..AttributeProto::default()
    }
}

enum Init {
    I64(Vec<i64>),
    F32(Vec<f32>),
}

fn pool_attrs(p: &Pool, avg: bool) -> Vec<AttributeProto> {
    let mut a = vec![
        ints("kernel_shape", &p.kernel),
        ints("strides", &p.strides),
        ints("pads", &p.pads),
        int("ceil_mode", i64::from(p.ceil_mode)),
    ];
    if avg {
        a.push(int("count_include_pad", i64::from(p.count_include_pad)));
    } else {
        a.push(ints("dilations", &p.dilations));
    }
    a
}

fn shape_proto(s: &Shape) -> TensorShapeProto {
    TensorShapeProto {
        dim: s
            .dims()
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => DimValue::DimValue(*n as i64),
                    Dim::Batch => DimValue::DimParam("N".into()),
                }),
                ..Dimension::default()
            })
            .collect(),
    }
}

fn node(
    name: &str,
    op: &str,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: Some(name.to_string()),
        op_type: Some(op.to_string()),
        input,
        output,
        attribute,
        ..NodeProto::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..AttributeProto::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..AttributeProto::default()
    }
}

fn ints<T: Copy + TryInto<i64>>(name: &str, v: &[T]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v
            .iter()
            .map(|&x| x.try_into().unwrap_or(i64::MAX))
            .collect(),
        ..AttributeProto::default()
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use excite_ir::text::{WeightStore, parse_with_placeholder_weights};
    use prost::Message;

    use super::*;
    use crate::{ImportOptions, import};

    /// A FusedConv with every slot filled, then an SE block with a residual, as `.seir`.
    const FUSED: &str = r"graph fused {
  input x: f32[N,4,3,3]
  weight w: f32[4,4,3,3]
  weight b: f32[4]
  weight w1: f32[2,4,1,1]
  weight b1: f32[2]
  weight w2: f32[4,2,1,1]
  node conv = FusedConv(x, w, b, x) {pads=[1,1,1,1], bias=true, act=Clip, act_min=0, act_max=6, residual=true, post_act=Relu} -> c
  node se = SeBlock(c, w1, b1, w2, x) {act=Silu, gate=HardSigmoid, gate_alpha=0.16666667, gate_beta=0.5, bias1=true, residual=true} -> y
  output y
}";

    /// One line per node: domain, op, inputs, then each attribute as `name=value`.
    fn summary(m: &ModelProto) -> String {
        let mut out = String::new();
        for o in &m.opset_import {
            let _ = writeln!(out, "opset {:?} {:?}", o.domain(), o.version());
        }
        for n in &m.graph.as_ref().expect("a graph").node {
            let _ = write!(
                out,
                "{}.{} {}({})",
                n.domain(),
                n.op_type(),
                n.name(),
                n.input.join(", ")
            );
            for a in &n.attribute {
                let v = match a.r#type() {
                    AttributeType::Int => a.i().to_string(),
                    AttributeType::Float => a.f().to_string(),
                    AttributeType::Ints => format!("{:?}", a.ints),
                    AttributeType::String => String::from_utf8_lossy(a.s()).into_owned(),
                    other => format!("{other:?}"),
                };
                let _ = write!(out, " {}={v}", a.name());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn fused_ops_export_in_their_own_domain() {
        let mut g = parse_with_placeholder_weights(FUSED, &WeightStore::new()).expect("parses");
        excite_ir::verify::verify(&mut g).expect("verifies");
        let bytes = export(&g).expect("fused ops export");
        let m = ModelProto::decode(bytes.as_slice()).expect("decodes");
        expect_test::expect![[r#"
            opset "" 17
            opset "ai.excite" 1
            ai.excite.FusedConv conv(x, w, b, x) kernel_shape=[3, 3] strides=[1, 1] pads=[1, 1, 1, 1] dilations=[1, 1] group=1 bias=1 act=Clip act_min=0 act_max=6 residual=1 post_act=Relu
            ai.excite.SeBlock se(c, w1, b1, w2, x) act=Silu gate=HardSigmoid gate_alpha=0.16666667 gate_beta=0.5 bias1=1 bias2=0 residual=1
        "#]]
        .assert_eq(&summary(&m));
        assert_eq!(m.graph.as_ref().map(|g| g.initializer.len()), Some(5));
        // Our importer reads the default domain only, and says which op it refused.
        match import(&bytes, &ImportOptions::default()) {
            Err(OnnxError::UnsupportedOp { node, op, .. }) => {
                assert_eq!(
                    (node.as_str(), op.as_str()),
                    ("conv", "ai.excite.FusedConv")
                );
            }
            other => panic!("expected UnsupportedOp, got {other:?}"),
        }
    }

    #[test]
    fn unfused_graphs_import_no_extra_domain() {
        let src = "graph g {\n  input x: f32[N,2]\n  node r = Relu(x) -> y\n  output y\n}";
        let mut g = parse_with_placeholder_weights(src, &WeightStore::new()).expect("parses");
        excite_ir::verify::verify(&mut g).expect("verifies");
        let m = ModelProto::decode(export(&g).expect("exports").as_slice()).expect("decodes");
        expect_test::expect![[r#"
            opset "" 17
            .Relu r(x)
        "#]]
        .assert_eq(&summary(&m));
    }
}
