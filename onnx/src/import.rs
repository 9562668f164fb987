//! The importer's frame: decode, opset check, initializers, graph inputs, node order, then one
//! call per node into [`crate::ops`] or [`crate::shapes`], then graph outputs and the verifier.
//!
//! Every ONNX value is either a compile-time [`Const`] (initializers, `Constant`s and folded
//! shape subgraphs) or an IR value. Constants become IR weights only when a run-time op reads
//! them, so integer shape tensors never reach the graph. Each IR node's output type is inferred
//! as soon as the node is added, which is what lets `Shape` and `auto_pad` see shapes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use excite_ir::infer::infer_node;
use excite_ir::{Dim, Graph, IrError, Op, Shape, TensorType, ValueId};
use prost::Message;

use crate::attrs::NodeCx;
use crate::consts::{Budget, Const, from_proto};
use crate::error::OnnxError;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto};

/// Opsets of the default domain the importer reads. Between 21 and 25 the ops it maps only
/// gained element types (bfloat16, float8, 4- and 2-bit ints), never float semantics; unknown
/// attributes of any opset are refused per node.
pub const OPSETS: std::ops::RangeInclusive<i64> = 11..=25;

/// Options of [`crate::import`].
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The most bytes any one tensor, and all constants together, may take. Checked before
    /// allocating. Graph inputs and node outputs are checked at batch size 1.
    pub memory_budget: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            memory_budget: 4 << 30,
        }
    }
}

/// What an ONNX value name stands for during import.
#[derive(Clone, Debug)]
pub enum Val {
    Const(Rc<Const>),
    Ir(ValueId),
}

/// The import state.
#[derive(Debug)]
pub struct Importer {
    pub g: Graph,
    pub opset: i64,
    pub budget: Budget,
    pub env: HashMap<String, Val>,
    /// Constants already turned into IR weights, by name.
    weights: HashMap<String, ValueId>,
    /// Every name some node reads or the graph outputs (to tell whether an extra output is used).
    pub used: HashSet<String>,
}

pub fn import(bytes: &[u8], opts: &ImportOptions) -> Result<Graph, OnnxError> {
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode { msg: e.to_string() })?;
    let opset = default_opset(&model)?;
    let graph = model.graph.ok_or_else(|| OnnxError::Model {
        msg: "the model has no graph".into(),
    })?;
    let mut im = Importer {
        g: Graph::new(graph.name.clone().unwrap_or_default()),
        opset,
        budget: Budget::new(opts.memory_budget),
        env: HashMap::new(),
        weights: HashMap::new(),
        used: HashSet::new(),
    };
    im.run(graph)?;
    let mut g = im.g;
    excite_ir::verify::verify(&mut g)?;
    Ok(g)
}

/// The opset of the default domain, checked to be in [`OPSETS`].
fn default_opset(m: &ModelProto) -> Result<i64, OnnxError> {
    let found = m
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")));
    let Some(o) = found else {
        return Err(OnnxError::Opset {
            domain: "ai.onnx".into(),
            version: 0,
            msg: "the model imports no opset of the default domain".into(),
        });
    };
    let v = o.version.unwrap_or(0);
    if !OPSETS.contains(&v) {
        return Err(OnnxError::Opset {
            domain: "ai.onnx".into(),
            version: v,
            msg: format!(
                "supported opsets are {} to {}; convert the model (onnx.version_converter)",
                OPSETS.start(),
                OPSETS.end()
            ),
        });
    }
    Ok(v)
}

impl Importer {
    fn run(&mut self, mut graph: GraphProto) -> Result<(), OnnxError> {
        if !graph.sparse_initializer.is_empty() {
            return Err(OnnxError::Model {
                msg: "sparse initializers are not supported".into(),
            });
        }
        for n in &graph.node {
            self.used
                .extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
        }
        self.used
            .extend(graph.output.iter().filter_map(|o| o.name.clone()));
        // Initializers, dropping each proto's bytes once read.
        for t in std::mem::take(&mut graph.initializer) {
            let name = t.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(OnnxError::Initializer {
                    tensor: "(unnamed)".into(),
                    msg: "an initializer has no name".into(),
                });
            }
            let c = from_proto(&t, &name, &mut self.budget)?;
            if self
                .env
                .insert(name.clone(), Val::Const(Rc::new(c)))
                .is_some()
            {
                return Err(IrError::DuplicateValue {
                    value: name,
                    by: "initializer".into(),
                }
                .into());
            }
        }
        for vi in &graph.input {
            let name = vi.name.clone().unwrap_or_default();
            if let Some(Val::Const(c)) = self.env.get(&name) {
                // Old exporters list initializers among the inputs: they are weights, and
                // must have the shape the input declares.
                if let Some(dims) = declared(vi).1
                    && (dims.len() != c.dims.len()
                        || dims
                            .iter()
                            .zip(&c.dims)
                            .any(|(d, &n)| d.is_some_and(|d| d != n as i64)))
                {
                    return Err(OnnxError::Value {
                        value: name,
                        msg: format!(
                            "is declared as an input of shape {} but its initializer has shape {:?}",
                            show_dims(&dims),
                            c.dims
                        ),
                    });
                }
                continue;
            }
            let ty = self.input_type(vi, &name)?;
            let id = self.g.add_input(&name, ty)?;
            self.env.insert(name, Val::Ir(id));
        }
        let names = unique_names(&graph.node);
        for i in self.order(&graph.node, &names)? {
            let node = &graph.node[i];
            let op = node.op_type.as_deref().unwrap_or("");
            let cx = NodeCx {
                name: &names[i],
                op,
                opset: self.opset,
                node,
            };
            if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
                return Err(OnnxError::UnsupportedOp {
                    node: names[i].clone(),
                    op: format!("{}.{op}", node.domain.as_deref().unwrap_or("")),
                    opset: self.opset,
                });
            }
            self.node(&cx)?;
        }
        for o in &graph.output {
            let name = o.name.clone().unwrap_or_default();
            let v = match self.env.get(&name).cloned() {
                Some(Val::Ir(v)) => v,
                Some(Val::Const(c)) => self.weight(&name, &c).map_err(|msg| OnnxError::Value {
                    value: name.clone(),
                    msg,
                })?,
                None => return Err(IrError::UndefinedOutput { value: name }.into()),
            };
            // What the model declares for the output must agree with what it computes.
            let (elem, dims) = declared(o);
            let bad = |msg: String| OnnxError::Value {
                value: name.clone(),
                msg,
            };
            if let Some(t) = elem
                && t != DataType::Float as i32
                && t != DataType::Undefined as i32
            {
                return Err(bad(format!(
                    "is declared with element type {t}, but excite computes float outputs"
                )));
            }
            if let (Some(dims), Some(ty)) = (dims, self.g.value(v).ty.as_ref()) {
                let got = ty.shape.dims();
                let differs = dims.len() != got.len()
                    || dims.iter().zip(got).any(|(d, g)| match (d, g) {
                        (Some(d), Dim::Fixed(n)) => *d != *n as i64,
                        _ => false,
                    });
                if differs {
                    return Err(bad(format!(
                        "is declared of shape {} but computes {}",
                        show_dims(&dims),
                        ty.shape
                    )));
                }
            }
            self.g.add_output(v)?;
        }
        Ok(())
    }

    /// The IR type of a graph input: float, fully shaped, only dim 0 symbolic.
    fn input_type(&self, vi: &ValueInfoProto, name: &str) -> Result<TensorType, OnnxError> {
        let err = |msg: String| OnnxError::Value {
            value: name.to_string(),
            msg,
        };
        let Some(TypeValue::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(err("is not a tensor".into()));
        };
        if t.elem_type != Some(DataType::Float as i32) {
            return Err(err(format!(
                "element type {} is not supported (only float)",
                t.elem_type.unwrap_or(0)
            )));
        }
        let shape = t.shape.as_ref().ok_or_else(|| err("has no shape".into()))?;
        let mut dims = Vec::with_capacity(shape.dim.len());
        for (i, d) in shape.dim.iter().enumerate() {
            dims.push(match &d.value {
                // 0 is a real (empty) size, as the ONNX spec says; some tools write -1 for
                // an unknown batch.
                Some(DimValue::DimValue(v)) if *v >= 0 => Dim::Fixed(
                    usize::try_from(*v).map_err(|_| err(format!("dimension {v} too large")))?,
                ),
                Some(DimValue::DimValue(-1)) if i == 0 => Dim::Batch,
                Some(DimValue::DimValue(v)) => {
                    return Err(err(format!("dimension {i} is {v}")));
                }
                Some(DimValue::DimParam(_)) | None if i == 0 => Dim::Batch,
                Some(DimValue::DimParam(p)) => {
                    return Err(err(format!(
                        "dimension {i} is symbolic (`{p}`); only the first (batch) dimension \
                         may be; give it a fixed size"
                    )));
                }
                None => return Err(err(format!("dimension {i} has no size"))),
            });
        }
        let shape = Shape(dims);
        self.check_size(name, &shape)?;
        Ok(TensorType::f32(shape))
    }

    /// Refuses a run-time tensor whose size at batch 1 exceeds the budget.
    pub fn check_size(&self, name: &str, s: &Shape) -> Result<(), OnnxError> {
        let n = s
            .dims()
            .iter()
            .try_fold(1u128, |a, d| a.checked_mul(d.resolve(1) as u128))
            .unwrap_or(u128::MAX);
        self.budget.check(name, n, 4)
    }

    /// Node indices in a topological order (ONNX order where dependencies allow). Reports an
    /// undefined input, a value defined twice, or a cycle, each naming the node.
    fn order(&self, nodes: &[NodeProto], names: &[String]) -> Result<Vec<usize>, OnnxError> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if self.env.contains_key(o) || producer.insert(o, i).is_some() {
                    return Err(IrError::DuplicateValue {
                        value: o.clone(),
                        by: names[i].clone(),
                    }
                    .into());
                }
            }
        }
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        let mut indeg = vec![0usize; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for inp in n.input.iter().filter(|s| !s.is_empty()) {
                if self.env.contains_key(inp) {
                    continue;
                }
                let &p = producer
                    .get(inp.as_str())
                    .ok_or_else(|| IrError::UndefinedValue {
                        node: names[i].clone(),
                        value: inp.clone(),
                    })?;
                succ[p].push(i);
                indeg[i] += 1;
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
            .filter(|&i| indeg[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for &s in &succ[i] {
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    ready.push(Reverse(s));
                }
            }
        }
        if let Some(stuck) = (0..nodes.len()).find(|&i| indeg[i] > 0) {
            return Err(IrError::Cycle {
                node: names[stuck].clone(),
            }
            .into());
        }
        Ok(order)
    }

    /// The value read as input `i` of the node, `None` when omitted.
    pub fn input(&self, cx: &NodeCx<'_>, i: usize) -> Option<Val> {
        // Every present input was checked to be defined by `order`.
        cx.input_name(i).and_then(|n| self.env.get(n).cloned())
    }

    /// Input `i`, which must be given.
    pub fn required(&self, cx: &NodeCx<'_>, i: usize) -> Result<Val, OnnxError> {
        self.input(cx, i)
            .ok_or_else(|| cx.unsupported(format!("input {i} is missing")))
    }

    /// Input `i` as a constant (`None` when omitted); a run-time value is refused.
    pub fn konst(
        &self,
        cx: &NodeCx<'_>,
        i: usize,
        what: &str,
    ) -> Result<Option<Rc<Const>>, OnnxError> {
        match self.input(cx, i) {
            None => Ok(None),
            Some(Val::Const(c)) => Ok(Some(c)),
            Some(Val::Ir(_)) => Err(cx.unsupported(format!(
                "input `{what}` must be a constant (or fold to one), but it is computed at run time"
            ))),
        }
    }

    /// Input `i` as an IR value; constants become weights.
    pub fn ir(&mut self, cx: &NodeCx<'_>, i: usize) -> Result<ValueId, OnnxError> {
        let name = cx.input_name(i).unwrap_or("");
        match self.required(cx, i)? {
            Val::Ir(v) => Ok(v),
            Val::Const(c) => self.weight(name, &c).map_err(|m| cx.unsupported(m)),
        }
    }

    /// The IR weight for constant `name`, made once.
    fn weight(&mut self, name: &str, c: &Const) -> Result<ValueId, String> {
        if let Some(&v) = self.weights.get(name) {
            return Ok(v);
        }
        let t = c.to_tensor(name)?;
        let v = self
            .g
            .add_weight(name, Arc::new(t))
            .map_err(|e| e.to_string())?;
        self.weights.insert(name.to_string(), v);
        Ok(v)
    }

    /// The shape of an IR value (always known: inputs and weights are typed when created,
    /// node outputs as soon as the node is added).
    pub fn shape(&self, cx: &NodeCx<'_>, v: ValueId) -> Result<Shape, OnnxError> {
        self.g
            .ty_of(v)
            .map(|t| t.shape.clone())
            .ok_or_else(|| cx.unsupported(format!("type of `{}` is unknown", self.g.value(v).name)))
    }

    /// Adds the IR node for `cx` with output 0, infers its type and checks its size.
    pub fn emit(&mut self, cx: &NodeCx<'_>, op: Op, inputs: &[ValueId]) -> Result<(), OnnxError> {
        let out = cx
            .output_name(0)
            .ok_or_else(|| cx.unsupported("has no output"))?;
        let id = self.g.add_node(cx.name, op, inputs, &[out])?;
        let mut shapes = Vec::with_capacity(inputs.len());
        for &v in inputs {
            shapes.push(self.shape(cx, v)?);
        }
        let s = infer_node(&self.g, id, &shapes)?
            .into_iter()
            .next()
            .ok_or_else(|| cx.unsupported("shape inference gave no output type"))?;
        self.check_size(out, &s)?;
        let v = self.g.node(id).outputs[0];
        self.g.value_mut(v).ty = Some(TensorType::f32(s));
        self.env.insert(out.to_string(), Val::Ir(v));
        Ok(())
    }

    /// Records a folded constant as output 0 of the node.
    pub fn set_const(&mut self, cx: &NodeCx<'_>, c: Const) -> Result<(), OnnxError> {
        let out = cx
            .output_name(0)
            .ok_or_else(|| cx.unsupported("has no output"))?;
        self.env.insert(out.to_string(), Val::Const(Rc::new(c)));
        Ok(())
    }
}

/// Node names: the ONNX name, or `<op_type>_<index>` when empty, with `_1`, `_2`, ... appended
/// to repeats in node order.
fn unique_names(nodes: &[NodeProto]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let base = match n.name.as_deref() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => format!("{}_{i}", n.op_type.as_deref().unwrap_or("node")),
        };
        let mut name = base.clone();
        while !seen.insert(name.clone()) {
            let k = next.entry(base.clone()).or_insert(0);
            *k += 1;
            name = format!("{base}_{k}");
        }
        out.push(name);
    }
    out
}

/// What a value info declares: its element type, and its dims (`None` for a symbolic or
/// unknown one) when it declares a shape.
fn declared(vi: &ValueInfoProto) -> (Option<i32>, Option<Vec<Option<i64>>>) {
    let Some(TypeValue::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return (None, None);
    };
    let dims = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(DimValue::DimValue(v)) if v >= 0 => Some(v),
                _ => None,
            })
            .collect()
    });
    (t.elem_type, dims)
}

/// Declared dims as `[2,?,3]`.
fn show_dims(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(","))
}
