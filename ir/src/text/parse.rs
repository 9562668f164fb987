//! The `.seir` parser: text plus a [`WeightStore`] in, a structurally built [`Graph`] out.
//!
//! The parser checks what the text alone decides: syntax, op names and attributes, duplicate
//! node names and value definitions, values read but never defined, graph outputs listed twice,
//! and that each weight's data exists with the declared shape. Uses may come before
//! definitions. Semantic checks (arity, shapes) are the verifier's: [`parse`] returns an
//! unverified graph whose node outputs carry the types the text declared (so it prints back the
//! same), and [`verify_declared`] runs the verifier and then checks those declarations against
//! shape inference. [`parse_verified`] does both.

use std::sync::Arc;

use super::attrs::{AttrBag, Raw, build_op};
use super::cursor::{Cursor, PResult, line_col};
use super::weights::{PLACEHOLDER_MAX_ELEMS, WeightStore, placeholder};
use crate::dtype::DType;
use crate::error::{IrError, IrErrors};
use crate::graph::{Graph, ValueDef, ValueId};
use crate::op::Op;
use crate::shape::{Dim, Shape, TensorType};
use crate::tensor::{self, Tensor};
use crate::verify;

/// Parses a `.seir` text. Weight data comes from inline `= [..]` lists or from `weights`; a
/// weight found in neither, or whose stored shape differs from the declared one, is an
/// [`IrError::Weights`] naming it. Tensors in `weights` that the text does not declare are
/// ignored. Syntax errors are [`IrError::Parse`] with line and column. The graph is not
/// verified: run [`verify_declared`] (or [`crate::verify::verify`]) before using it.
pub fn parse(src: &str, weights: &WeightStore) -> Result<Graph, IrError> {
    Parser::new(src, weights, Missing::Error).run()
}

/// Like [`parse`], but a weight with no data inline or in `weights` gets deterministic
/// stand-in values derived from its name (positive ones for batch-norm variances). For tests
/// and for trying out hand-written models whose weights do not matter.
pub fn parse_with_placeholder_weights(src: &str, weights: &WeightStore) -> Result<Graph, IrError> {
    Parser::new(src, weights, Missing::Placeholder).run()
}

/// [`parse`] followed by [`verify_declared`].
pub fn parse_verified(src: &str, weights: &WeightStore) -> Result<Graph, IrErrors> {
    let mut g = parse(src, weights)?;
    verify_declared(&mut g)?;
    Ok(g)
}

/// Runs [`verify::verify`], then reports every node output whose type, as it was before
/// (declared in the text, or set by an earlier inference), differs from the inferred one.
pub fn verify_declared(g: &mut Graph) -> Result<(), IrErrors> {
    let mut declared = Vec::new();
    for n in g.node_ids() {
        for &v in &g.node(n).outputs {
            if let Some(ty) = g.ty_of(v) {
                declared.push((n, v, ty.clone()));
            }
        }
    }
    verify::verify(g)?;
    let errors: Vec<_> = declared
        .into_iter()
        .filter(|(_, v, ty)| g.ty_of(*v) != Some(ty))
        .map(|(n, v, ty)| {
            let node = g.node(n);
            let inferred = g.ty_of(v).map_or("nothing".into(), |t| t.to_string());
            let value = &g.value(v).name;
            let msg = format!("output `{value}` is declared {ty} but infers to {inferred}");
            IrError::node(&node.name, node.op.name(), msg)
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IrErrors(errors))
    }
}

/// What to do with a weight whose data is nowhere.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Missing {
    Error,
    Placeholder,
}

#[derive(Debug)]
struct Parser<'a> {
    cur: Cursor<'a>,
    store: &'a WeightStore,
    missing: Missing,
    g: Graph,
    /// Values read before any definition, with where they were first read.
    first_use: Vec<(usize, ValueId)>,
    /// Weights that were given placeholder data.
    placeholders: Vec<ValueId>,
}

fn werr(msg: String) -> IrError {
    IrError::Weights { msg }
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, store: &'a WeightStore, missing: Missing) -> Parser<'a> {
        Parser {
            cur: Cursor::new(src),
            store,
            missing,
            g: Graph::default(),
            first_use: Vec::new(),
            placeholders: Vec::new(),
        }
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> IrError {
        self.cur.error(pos, msg)
    }

    fn run(mut self) -> PResult<Graph> {
        let (pos, kw) = self.cur.word();
        if kw != "graph" {
            let found = if kw.is_empty() {
                self.cur.found()
            } else {
                format!("`{kw}`")
            };
            return Err(self.err(pos, format!("expected `graph`, found {found}")));
        }
        self.g.name = self.cur.name("the graph's name")?.1;
        self.cur.expect("{", "after the graph's name")?;
        loop {
            if self.cur.eat("}") {
                break;
            }
            if self.cur.at_end() {
                let pos = self.cur.here();
                let name = &self.g.name;
                return Err(self.err(pos, format!("missing `}}` at the end of graph `{name}`")));
            }
            let (pos, kw) = self.cur.word();
            match kw {
                "input" => self.input()?,
                "weight" => self.weight()?,
                "node" => self.node()?,
                "output" => self.output()?,
                _ => {
                    let found = if kw.is_empty() {
                        self.cur.found()
                    } else {
                        format!("`{kw}`")
                    };
                    let msg = format!(
                        "expected `input`, `weight`, `node`, `output` or `}}`, found {found}"
                    );
                    return Err(self.err(pos, msg));
                }
            }
        }
        if !self.cur.at_end() {
            let pos = self.cur.here();
            return Err(self.err(pos, "unexpected text after the graph's closing `}`"));
        }
        for &(pos, v) in &self.first_use {
            if matches!(self.g.value(v).def, ValueDef::Undefined) {
                let name = &self.g.value(v).name;
                let msg = format!("`{name}` is not defined by any input, weight or node");
                return Err(self.err(pos, msg));
            }
        }
        self.positive_variances();
        Ok(self.g)
    }

    /// Gives placeholder weights read as a batch-norm variance positive values.
    fn positive_variances(&mut self) {
        for v in std::mem::take(&mut self.placeholders) {
            let is_var = self.g.users(v).iter().any(|&n| {
                let node = self.g.node(n);
                matches!(node.op, Op::BatchNorm { .. }) && node.inputs.get(4) == Some(&v)
            });
            if let (true, Some(t)) = (is_var, self.g.value(v).weight()) {
                let t = placeholder(&self.g.value(v).name, t.shape(), true);
                self.g.value_mut(v).def = ValueDef::Weight(Arc::new(t));
            }
        }
    }

    /// The value `name` read at `pos`, remembered if nothing defines it yet.
    fn use_value(&mut self, pos: usize, name: &str) -> ValueId {
        if let Some(v) = self.g.find_value(name) {
            return v;
        }
        let v = self.g.value_ref(name);
        self.first_use.push((pos, v));
        v
    }

    /// `f32[N,3,224,224]`.
    fn ty(&mut self) -> PResult<TensorType> {
        let (pos, w) = self.cur.word();
        let Some(dtype) = DType::from_name(w) else {
            let found = if w.is_empty() {
                self.cur.found()
            } else {
                format!("`{w}`")
            };
            let msg = format!("expected an element type (f32), found {found}");
            return Err(self.err(pos, msg));
        };
        self.cur.expect("[", "after the element type")?;
        let mut dims = Vec::new();
        if !self.cur.eat("]") {
            loop {
                let (p, tok) = self.cur.number_token("a dimension (a number or `N`)")?;
                dims.push(if tok == "N" {
                    Dim::Batch
                } else {
                    let what = "a dimension (a number or `N`)";
                    Dim::Fixed(super::cursor::to_usize(self.cur.src(), p, tok, what)?)
                });
                if self.cur.eat("]") {
                    break;
                }
                self.cur.expect(",", "or `]` between dimensions")?;
            }
        }
        let shape = Shape(dims);
        if shape.numel_with(1).is_none() {
            return Err(self.err(pos, format!("shape {shape} has too many elements")));
        }
        Ok(TensorType { dtype, shape })
    }

    fn input(&mut self) -> PResult<()> {
        let (pos, name) = self.cur.name("an input name")?;
        self.cur.expect(":", "and a type after the input name")?;
        let ty = self.ty()?;
        self.g
            .add_input(&name, ty)
            .map_err(|e| self.err(pos, e.to_string()))?;
        Ok(())
    }

    fn weight(&mut self) -> PResult<()> {
        let (pos, name) = self.cur.name("a weight name")?;
        self.cur.expect(":", "and a type after the weight name")?;
        let ty_pos = self.cur.here();
        let ty = self.ty()?;
        let Some(dims) = ty.shape.as_fixed() else {
            return Err(self.err(
                ty_pos,
                "a weight's shape cannot use the batch dimension `N`",
            ));
        };
        // `ty` checked that the element count fits in usize.
        let numel = tensor::numel(&dims).unwrap_or(usize::MAX);
        let inline = if self.cur.eat("=") {
            let p = self.cur.here();
            Some((p, self.float_list()?))
        } else {
            None
        };
        // Only computed on an error: finding a line number scans the text.
        let line = || line_col(self.cur.src(), pos).0;
        let mut from_placeholder = false;
        if let (None, Some(dtype)) = (&inline, self.store.unsupported(&name)) {
            let msg = format!(
                "weight `{name}` (line {}): the weight store holds it as {dtype}; only F32 is \
                 supported",
                line()
            );
            return Err(werr(msg));
        }
        let t = match (inline, self.store.get(&name)) {
            (Some(_), Some(_)) => {
                let msg = format!(
                    "weight `{name}` (line {}) has data both inline and in the weight store",
                    line()
                );
                return Err(werr(msg));
            }
            (Some((p, data)), None) => {
                if data.len() != numel {
                    let msg = format!(
                        "weight `{name}` is declared {ty} ({numel} elements) but {} values are given",
                        data.len()
                    );
                    return Err(self.err(p, msg));
                }
                Arc::new(Tensor::new(dims, data).map_err(|e| self.err(p, e.to_string()))?)
            }
            (None, Some(t)) if t.shape() != dims.as_slice() => {
                let held = TensorType::f32(Shape::fixed(t.shape()));
                let msg = format!(
                    "weight `{name}` is declared {ty} (line {}) but the weight store holds {held}",
                    line()
                );
                return Err(werr(msg));
            }
            (None, Some(t)) => Arc::clone(t),
            (None, None) if self.missing == Missing::Error => {
                let msg = format!(
                    "weight `{name}` (line {}) is not in the weight store",
                    line()
                );
                return Err(werr(msg));
            }
            (None, None) if numel > PLACEHOLDER_MAX_ELEMS => {
                let msg = format!(
                    "weight `{name}` (line {}) has {numel} elements, too many for placeholder data",
                    line()
                );
                return Err(werr(msg));
            }
            (None, None) => {
                from_placeholder = true;
                Arc::new(placeholder(&name, &dims, false))
            }
        };
        let v = self
            .g
            .add_weight(&name, t)
            .map_err(|e| self.err(pos, e.to_string()))?;
        if from_placeholder {
            self.placeholders.push(v);
        }
        Ok(())
    }

    fn output(&mut self) -> PResult<()> {
        loop {
            let (p, n) = self.cur.name("an output value name")?;
            let v = self.use_value(p, &n);
            self.g
                .add_output(v)
                .map_err(|e| self.err(p, e.to_string()))?;
            if !self.cur.eat(",") {
                return Ok(());
            }
        }
    }

    /// `[1.0, -2.5, inf]`.
    fn float_list(&mut self) -> PResult<Vec<f32>> {
        self.cur.expect("[", "to start the weight's data")?;
        let mut xs = Vec::new();
        if self.cur.eat("]") {
            return Ok(xs);
        }
        loop {
            xs.push(self.cur.f32("a number")?);
            if self.cur.eat("]") {
                return Ok(xs);
            }
            self.cur.expect(",", "or `]` between numbers")?;
        }
    }

    fn node(&mut self) -> PResult<()> {
        let (pos, name) = self.cur.name("a node name")?;
        if self.g.find_node(&name).is_some() {
            return Err(self.err(pos, format!("two nodes are named `{name}`")));
        }
        self.cur.expect("=", "after the node name")?;
        let (op_pos, op_name) = self.cur.word();
        if op_name.is_empty() {
            let found = self.cur.found();
            return Err(self.err(op_pos, format!("expected an op name, found {found}")));
        }
        self.cur.expect("(", "after the op name")?;
        let mut inputs = Vec::new();
        if !self.cur.eat(")") {
            loop {
                let (p, n) = self.cur.name("a value name")?;
                inputs.push(self.use_value(p, &n));
                if self.cur.eat(")") {
                    break;
                }
                self.cur.expect(",", "or `)` between the node's inputs")?;
            }
        }
        let bag = self.attrs()?;
        let op = build_op(op_pos, op_name, bag)?;
        let mut outs: Vec<(String, Option<TensorType>)> = Vec::new();
        if self.cur.eat("->") {
            loop {
                let (p, n) = self.cur.name("an output value name")?;
                let defined = self
                    .g
                    .find_value(&n)
                    .is_some_and(|v| !matches!(self.g.value(v).def, ValueDef::Undefined));
                if defined || outs.iter().any(|o| o.0 == n) {
                    return Err(self.err(p, format!("value `{n}` is already defined")));
                }
                let ty = if self.cur.eat(":") {
                    Some(self.ty()?)
                } else {
                    None
                };
                outs.push((n, ty));
                if !self.cur.eat(",") {
                    break;
                }
            }
        }
        let names: Vec<&str> = outs.iter().map(|o| o.0.as_str()).collect();
        let id = self
            .g
            .add_node(&name, op, &inputs, &names)
            .map_err(|e| self.err(pos, e.to_string()))?;
        let out_ids = self.g.node(id).outputs.clone();
        for (v, (_, ty)) in out_ids.into_iter().zip(outs) {
            self.g.value_mut(v).ty = ty;
        }
        Ok(())
    }

    /// `{key=value, key=[v, ...]}`, or nothing.
    fn attrs(&mut self) -> PResult<AttrBag<'a>> {
        let mut bag = AttrBag::new(self.cur.src());
        if !self.cur.eat("{") || self.cur.eat("}") {
            return Ok(bag);
        }
        loop {
            let (kp, key) = self.cur.word();
            if key.is_empty() {
                let found = self.cur.found();
                return Err(self.err(kp, format!("expected an attribute name, found {found}")));
            }
            self.cur.expect("=", "after the attribute name")?;
            let lp = self.cur.here();
            let value = if self.cur.eat("[") {
                let mut xs = Vec::new();
                if !self.cur.eat("]") {
                    loop {
                        xs.push(self.cur.number_token("a number")?);
                        if self.cur.eat("]") {
                            break;
                        }
                        self.cur.expect(",", "or `]` between list entries")?;
                    }
                }
                Raw::List(lp, xs)
            } else {
                let (p, t) = self.cur.number_token("an attribute value")?;
                Raw::Scalar(p, t)
            };
            bag.push(kp, key, value)?;
            if self.cur.eat("}") {
                return Ok(bag);
            }
            self.cur.expect(",", "or `}` between attributes")?;
        }
    }
}
