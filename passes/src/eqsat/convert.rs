//! Conversion graph -> e-graph -> graph.
//!
//! [`to_egraph`] adds one leaf per graph input and weight and one e-node per node (in
//! topological order), and fills the analysis with each value's shape and sharing. [`to_graph`]
//! rebuilds a graph from the e-node chosen for each e-class, memoised by e-class, so a value
//! used many times is built once. It keeps the original's inputs, weights and outputs, and
//! places each node where the original node of its e-class stood: an untouched node comes
//! back with its name, op, attributes and output name; a fused node takes the name and output
//! of the root it replaces. Nodes that were dead in the original stay (dead-node elimination is
//! `dce`'s job).

use std::collections::{HashMap, HashSet};

use egg::{Id, Language, Symbol};
use excite_ir::{FusedConv, op::Act};
use excite_ir::{Graph, NodeId, Op, SeBlock, ValueDef, ValueId};

use super::analysis::{GraphAnalysis, SeGraph, ValueInfo, is_none, name_in};
use super::lang::{ActKind, ConvAttr, NodeName, SeLang, ValueName};
use crate::pass::PassError;

fn fail(msg: impl Into<String>) -> PassError {
    PassError::Failed {
        pass: "fuse",
        msg: msg.into(),
    }
}

/// A graph as an e-graph, with where each of its values went.
#[derive(Debug)]
pub struct Converted {
    pub egraph: SeGraph,
    /// The e-class of each graph input and weight.
    pub leaves: Vec<(ValueId, Id)>,
    /// Each node with the e-class of its output, in topological order.
    pub nodes: Vec<(NodeId, Id)>,
    /// The e-class of every value: input, weight or node output.
    pub class: HashMap<ValueId, Id>,
}

/// Builds the e-graph of a verified graph (every node output typed).
pub fn to_egraph(g: &Graph) -> Result<Converted, PassError> {
    let outputs: HashSet<ValueId> = g.outputs().iter().copied().collect();
    let info = |v: ValueId, constant: bool| ValueInfo {
        shape: g.ty_of(v).map(|t| t.shape.clone()),
        shared: g.users(v).len() > 1 || outputs.contains(&v),
        constant,
    };
    let order = g.topo_order().map_err(|source| PassError::Ir {
        pass: "fuse",
        source,
    })?;
    let mut analysis = GraphAnalysis::default();
    let mut leaf_values = Vec::new();
    for v in g.value_ids() {
        let constant = match g.value(v).def {
            ValueDef::Input => false,
            ValueDef::Weight(_) => true,
            _ => continue,
        };
        let name = Symbol::from(&g.value(v).name);
        analysis.values.insert(name, info(v, constant));
        leaf_values.push((v, name));
    }
    for &id in &order {
        let node = g.node(id);
        let &[out] = node.outputs.as_slice() else {
            return Err(fail(format!(
                "node `{}` ({}) defines {} outputs; fusion handles single-output nodes only",
                node.name,
                node.op,
                node.outputs.len()
            )));
        };
        if g.ty_of(out).is_none() {
            return Err(fail(format!(
                "node `{}` ({}) has no inferred type; verify the graph before fusing",
                node.name, node.op
            )));
        }
        analysis
            .nodes
            .insert(Symbol::from(&node.name), info(out, false));
    }

    let mut egraph = SeGraph::new(analysis);
    let mut class: HashMap<ValueId, Id> = HashMap::new();
    let mut leaves = Vec::with_capacity(leaf_values.len());
    for (v, name) in leaf_values {
        let id = egraph.add(SeLang::Value(ValueName(name)));
        class.insert(v, id);
        leaves.push((v, id));
    }
    let none = egraph.add(SeLang::NoValue);
    let mut nodes = Vec::with_capacity(order.len());
    for id in order {
        let node = g.node(id);
        let name = egraph.add(SeLang::Name(NodeName(Symbol::from(&node.name))));
        let mut ins = Vec::with_capacity(node.inputs.len());
        for v in &node.inputs {
            let c = class.get(v).copied().ok_or_else(|| {
                fail(format!(
                    "node `{}` reads `{}`, which is not defined before it",
                    node.name,
                    g.value(*v).name
                ))
            })?;
            ins.push(c);
        }
        let enode = match (&node.op, ins.as_slice(), Act::from_op(&node.op)) {
            (_, &[x], Some(a)) => {
                let kind = egraph.add(SeLang::Kind(ActKind(a)));
                SeLang::Act([name, kind, x])
            }
            (Op::GlobalAveragePool, &[x], _) => SeLang::Gap([name, x]),
            (Op::Conv(c), &[x, w], _) | (Op::Conv(c), &[x, w, _], _) => {
                let attrs = egraph.add(SeLang::Attrs(ConvAttr::from(c)));
                let b = ins.get(2).copied().unwrap_or(none);
                SeLang::Conv([name, attrs, x, w, b])
            }
            (Op::Mul, &[a, b], _) => SeLang::Mul([name, a, b]),
            (Op::Add, &[a, b], _) => SeLang::Add([name, a, b]),
            _ => SeLang::Op(std::iter::once(name).chain(ins).collect()),
        };
        let c = egraph.add(enode);
        class.insert(node.outputs[0], c);
        nodes.push((id, c));
    }
    egraph.rebuild();
    Ok(Converted {
        egraph,
        leaves,
        nodes,
        class,
    })
}

/// A fused node of the rebuilt graph, for `--explain`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedNode {
    /// The rule that added the chosen e-node.
    pub rule: String,
    /// The node's name: the name of the root node it replaces.
    pub node: String,
    /// The user's names of the other nodes it absorbed, in topological order.
    pub absorbed: Vec<String>,
}

/// Rebuilds the graph from the e-node `choose` picks in each e-class.
pub fn to_graph<'a>(
    g: &Graph,
    conv: &'a Converted,
    choose: impl Fn(Id) -> &'a SeLang,
) -> Result<(Graph, Vec<FusedNode>), PassError> {
    let eg = &conv.egraph;
    let find = |id: Id| eg.find(id);
    // Roots: the graph outputs and every node nobody reads (dead code is kept).
    let mut stack: Vec<Id> = Vec::new();
    for &(v, c) in &conv.leaves {
        if g.outputs().contains(&v) {
            stack.push(find(c));
        }
    }
    for &(n, c) in &conv.nodes {
        let out = g.node(n).outputs[0];
        if g.outputs().contains(&out) || g.users(out).is_empty() {
            stack.push(find(c));
        }
    }
    let mut live: HashSet<Id> = HashSet::new();
    while let Some(c) = stack.pop() {
        if live.insert(c) {
            stack.extend(choose(c).value_children().iter().map(|&k| find(k)));
        }
    }

    let mut out = Graph::new(g.name.clone());
    let mut memo: HashMap<Id, ValueId> = HashMap::new();
    let ir = |source| PassError::Ir {
        pass: "fuse",
        source,
    };
    for &v in g.inputs() {
        let ty = g
            .ty_of(v)
            .cloned()
            .ok_or_else(|| fail(format!("graph input `{}` has no type", g.value(v).name)))?;
        let _ = out.add_input(&g.value(v).name, ty).map_err(ir)?;
    }
    for (v, t) in g.weights() {
        let _ = out.add_weight(&g.value(v).name, t.clone()).map_err(ir)?;
    }
    for &(v, c) in &conv.leaves {
        let nv = out
            .find_value(&g.value(v).name)
            .ok_or_else(|| fail(format!("value `{}` was not rebuilt", g.value(v).name)))?;
        memo.insert(find(c), nv);
    }

    let pos: HashMap<NodeId, usize> = conv
        .nodes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.0, i))
        .collect();
    let mut fused = Vec::new();
    let created: HashMap<SeLang, Symbol> = rule_of(eg);
    for &(n, c) in &conv.nodes {
        let c = find(c);
        if !live.contains(&c) || memo.contains_key(&c) {
            continue;
        }
        let enode = choose(c);
        let name = enode
            .name_child()
            .and_then(|k| name_in(eg, k))
            .ok_or_else(|| fail(format!("e-class {c} chose a node without a name")))?;
        let (op, inputs) = rebuild_op(g, eg, enode, name.as_str())?;
        let mut ins = Vec::with_capacity(inputs.len());
        for i in inputs {
            ins.push(*memo.get(&find(i)).ok_or_else(|| {
                fail(format!("node `{name}` reads a value that was not rebuilt"))
            })?);
        }
        let out_name = &g.value(g.node(n).outputs[0]).name;
        let id = out
            .add_node(name.as_str(), op, &ins, &[out_name])
            .map_err(ir)?;
        memo.insert(c, out.node(id).outputs[0]);
        if matches!(enode, SeLang::FusedConv(_) | SeLang::SeBlock(_)) {
            let key = enode.clone().map_children(find);
            fused.push(FusedNode {
                rule: created.get(&key).map_or("?".into(), |r| r.to_string()),
                node: name.to_string(),
                absorbed: absorbed(g, conv, n, &live, &pos),
            });
        }
    }
    for &v in g.outputs() {
        let c = conv
            .class
            .get(&v)
            .copied()
            .ok_or_else(|| fail(format!("output `{}` has no e-class", g.value(v).name)))?;
        let nv = *memo
            .get(&find(c))
            .ok_or_else(|| fail(format!("output `{}` was not rebuilt", g.value(v).name)))?;
        out.add_output(nv).map_err(ir)?;
    }
    Ok((out, fused))
}

/// The rule that added each fused e-node (children canonical; the first rule wins).
fn rule_of(eg: &SeGraph) -> HashMap<SeLang, Symbol> {
    let mut map = HashMap::new();
    for (n, rule) in &eg.analysis.created {
        map.entry(n.clone().map_children(|c| eg.find(c)))
            .or_insert(*rule);
    }
    map
}

/// The original nodes feeding `root` whose e-classes were not rebuilt: the ones its fused
/// kernel absorbed (they are unshared, so no other kernel can have absorbed them).
fn absorbed(
    g: &Graph,
    conv: &Converted,
    root: NodeId,
    live: &HashSet<Id>,
    pos: &HashMap<NodeId, usize>,
) -> Vec<String> {
    let class_of = |n: NodeId| conv.class.get(&g.node(n).outputs[0]).copied();
    let mut found = HashSet::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        for &v in &g.node(n).inputs {
            if let Some(p) = g.producer(v)
                && class_of(p).is_some_and(|c| !live.contains(&conv.egraph.find(c)))
                && found.insert(p)
            {
                stack.push(p);
            }
        }
    }
    let mut found: Vec<(usize, NodeId)> = found
        .into_iter()
        .map(|n| (pos.get(&n).copied().unwrap_or(usize::MAX), n))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(_, n)| g.node(n).name.clone())
        .collect()
}

/// The op and inputs of the node an e-node stands for.
fn rebuild_op(
    g: &Graph,
    eg: &SeGraph,
    enode: &SeLang,
    name: &str,
) -> Result<(Op, Vec<Id>), PassError> {
    let present =
        |ids: &[Id]| -> Vec<Id> { ids.iter().copied().filter(|&i| !is_none(eg, i)).collect() };
    let kind = |id: Id| {
        eg[id].nodes.iter().find_map(|n| match n {
            SeLang::Kind(k) => Some(k.0),
            _ => None,
        })
    };
    let need_kind = |id: Id, what: &str| {
        kind(id).ok_or_else(|| fail(format!("fused node `{name}` has no {what} activation")))
    };
    match enode {
        SeLang::FusedConv([_, attrs, act, post, x, w, b, r]) => {
            let conv = eg[*attrs]
                .nodes
                .iter()
                .find_map(|n| match n {
                    SeLang::Attrs(a) => Some(a.to_conv()),
                    _ => None,
                })
                .ok_or_else(|| fail(format!("fused node `{name}` has no conv attributes")))?;
            let op = Op::FusedConv(FusedConv {
                conv,
                bias: !is_none(eg, *b),
                act: kind(*act),
                residual: !is_none(eg, *r),
                post_act: kind(*post),
            });
            Ok((op, present(&[*x, *w, *b, *r])))
        }
        SeLang::SeBlock([_, act, gate, post, x, w1, b1, w2, b2, r]) => {
            let op = Op::SeBlock(SeBlock {
                act: need_kind(*act, "inner")?,
                gate: need_kind(*gate, "gate")?,
                bias1: !is_none(eg, *b1),
                bias2: !is_none(eg, *b2),
                residual: !is_none(eg, *r),
                post_act: kind(*post),
            });
            Ok((op, present(&[*x, *w1, *b1, *w2, *b2, *r])))
        }
        SeLang::SeGate(_) => Err(fail(format!(
            "the partial e-node `{name}` was extracted; the cost model must rule it out"
        ))),
        other => {
            let node = g
                .find_node(name)
                .ok_or_else(|| fail(format!("no node `{name}` in the original graph")))?;
            Ok((g.node(node).op.clone(), present(other.value_children())))
        }
    }
}

#[cfg(test)]
mod tests {
    use egg::Extractor;
    use excite_ir::text::{WeightStore, parse_with_placeholder_weights};
    use expect_test::{Expect, expect};

    use super::*;
    use crate::eqsat::cost::KernelCost;

    /// Converts `src` and prints the term of each output, then each node's sharing.
    fn check(src: &str, want: Expect) {
        let mut g = parse_with_placeholder_weights(src, &WeightStore::new()).expect("parses");
        excite_ir::verify::verify(&mut g).expect("verifies");
        let conv = to_egraph(&g).expect("converts");
        let ex = Extractor::new(&conv.egraph, KernelCost::new(&conv.egraph));
        let mut out = String::new();
        for v in g.outputs() {
            let (_, term) = ex.find_best(conv.class[v]);
            out.push_str(&format!("{term}\n"));
        }
        for &(n, c) in &conv.nodes {
            let info = &conv.egraph[c].data;
            let shape = info.shape.as_ref().map_or("-".into(), |s| s.to_string());
            let shared = if info.shared { " shared" } else { "" };
            out.push_str(&format!("{} {shape}{shared}\n", g.node(n).name));
        }
        want.assert_eq(&out);
    }

    #[test]
    fn an_se_block_becomes_one_term_over_named_leaves() {
        check(
            r#"graph se {
  input x: f32[N,4,2,2]
  weight w1: f32[2,4,1,1]
  weight w2: f32[4,2,1,1]
  weight b2: f32[4]
  node pool = GlobalAveragePool(x) -> s
  node fc1 = Conv(s, w1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2, b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> e
  node gate = HardSigmoid(e) {alpha=0.2, beta=0.5} -> g
  node scale = Mul(g, x) -> y
  node flat = Flatten(y) {axis=1} -> f
  output f
  output g
}"#,
            expect![[r#"
                (op @flat (mul @scale (act @gate HardSigmoid:0.2:0.5 (conv @fc2 conv:s1x1:p0,0,0,0:d1x1:g1 (act @act Relu (conv @fc1 conv:s1x1:p0,0,0,0:d1x1:g1 (gap @pool $x) $w1 none)) $w2 $b2)) $x))
                (act @gate HardSigmoid:0.2:0.5 (conv @fc2 conv:s1x1:p0,0,0,0:d1x1:g1 (act @act Relu (conv @fc1 conv:s1x1:p0,0,0,0:d1x1:g1 (gap @pool $x) $w1 none)) $w2 $b2))
                pool [N,4,1,1]
                fc1 [N,2,1,1]
                act [N,2,1,1]
                fc2 [N,4,1,1]
                gate [N,4,1,1] shared
                scale [N,4,2,2]
                flat [N,16] shared
            "#]],
        );
    }
}
