//! The graph walk: buffers for inputs and weights, one lowering per op, liveness-based reuse of
//! scratch buffers, and the helpers every kernel family shares (modules, bindings, grids).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use excite_ir::{Graph, Node, NodeId, Op, ValueDef, ValueId, verify};

use crate::expr::Step;
use crate::plan::{Allocator, Buffer, BufferKind, Dispatch, Io, Limits, Module, WgslProgram};
use crate::{WgslError, conv, render, se, simple, validate};

/// Compiles a verified graph (normally fused by `excite_passes::optimize`) for `batch`.
pub fn compile(g: &Graph, batch: usize, limits: &Limits) -> Result<WgslProgram, WgslError> {
    let mut g = g.clone();
    verify::resolve_batch(&mut g, batch).map_err(|source| WgslError::Graph { batch, source })?;
    let order = g.topo_order()?;
    let mut l = Lower {
        g: &g,
        limits,
        p: WgslProgram {
            batch,
            ..WgslProgram::default()
        },
        modules: HashMap::new(),
        buf: HashMap::new(),
        alloc: Allocator::default(),
        squeezed: HashMap::new(),
        defer_scale: HashSet::new(),
        deferred: HashMap::new(),
        folds: HashMap::new(),
    };
    // SE blocks folded into the linear 1x1 conv feeding them: that conv runs in the SE block's
    // place (its residual may be computed after the conv) and writes the SE output.
    l.folds = se::folds(&l, &order);
    let folded_se: HashMap<NodeId, NodeId> = l
        .folds
        .iter()
        .filter_map(|(&x, &se)| Some((se, g.producer(x)?)))
        .collect();
    let folded_convs: HashSet<NodeId> = folded_se.values().copied().collect();
    // SE inputs that a conv may squeeze in its epilogue (filled when that conv is lowered); for
    // a folded block, the input of the conv it is folded into.
    for &id in &order {
        let node = g.node(id);
        if let (Op::SeBlock(_), Some(&x)) = (&node.op, node.inputs.first()) {
            let sq = match folded_se.get(&id) {
                Some(&conv) => g.node(conv).inputs[0],
                None => x,
            };
            l.squeezed.insert(sq, None);
        }
    }
    l.p.folded_se = order
        .iter()
        .filter(|id| folded_se.contains_key(id))
        .map(|&id| g.node(id).name.clone())
        .collect();
    // SE blocks whose scale the next 1x1 conv applies as it loads its input: that conv then
    // also reads the SE input and residual, which must live until it runs.
    let fused = se::scale_into_consumers(&l, &order);
    let mut late_reads: HashMap<NodeId, Vec<ValueId>> = HashMap::new();
    for (&se_node, &conv) in &folded_se {
        late_reads
            .entry(se_node)
            .or_default()
            .extend(&g.node(conv).inputs);
    }
    for (se_node, conv_node) in &fused {
        let n = g.node(*se_node);
        l.defer_scale.insert(n.outputs[0]);
        let reads = late_reads.entry(*conv_node).or_default();
        reads.push(n.inputs[0]);
        if let Op::SeBlock(s) = &n.op
            && let Some(r) = s.input_slots().r
        {
            reads.push(n.inputs[r]);
        }
    }
    for &v in g.inputs() {
        let name = g.value(v).name.clone();
        let shape = l.shape(v)?;
        let b = l.new_buffer(&name, numel(&shape), BufferKind::Input(name.clone()))?;
        l.buf.insert(v, b);
        l.p.inputs.push(Io {
            name,
            buffer: b,
            shape,
        });
    }
    // Aliases (Reshape, Flatten, Identity, Dropout) share their input's buffer; a buffer dies
    // after the last read of any value living in it. Graph outputs never die.
    let mut root: HashMap<ValueId, ValueId> = HashMap::new();
    let mut last: HashMap<ValueId, usize> = HashMap::new();
    let reads = |id: NodeId| {
        let node = g.node(id);
        let late = late_reads.get(&id).map(Vec::as_slice).unwrap_or_default();
        node.inputs.iter().chain(late).copied().collect::<Vec<_>>()
    };
    for (pos, &id) in order.iter().enumerate() {
        let node = g.node(id);
        for v in reads(id) {
            let r = *root.get(&v).unwrap_or(&v);
            last.insert(r, pos);
        }
        for &o in &node.outputs {
            let r = match (is_alias(&node.op), node.inputs.first()) {
                (true, Some(i)) => *root.get(i).unwrap_or(i),
                _ => o,
            };
            root.insert(o, r);
            last.entry(r).or_insert(pos);
        }
    }
    for &o in g.outputs() {
        last.insert(*root.get(&o).unwrap_or(&o), usize::MAX);
    }
    for (pos, &id) in order.iter().enumerate() {
        let node = g.node(id);
        check_u32_attrs(node)?;
        let temps = if folded_convs.contains(&id) {
            Vec::new() // runs in its SE block's place
        } else if let Some(&conv) = folded_se.get(&id) {
            let y = l.out_buffer(node.outputs[0])?;
            se::folded_conv(&mut l, g.node(conv), node, y)?;
            Vec::new()
        } else {
            l.lower_node(node).map_err(|e| match e {
                // Helpers that do not know the node (a float literal) leave its name empty.
                WgslError::Unsupported { node: n, op, msg } if n.is_empty() => {
                    WgslError::Unsupported {
                        node: node.name.clone(),
                        op: if op == "literal" { node.op.name() } else { op },
                        msg,
                    }
                }
                e => e,
            })?
        };
        for t in temps {
            l.alloc.release(t);
        }
        let mut seen: Vec<ValueId> = reads(id).into_iter().chain(node.outputs.clone()).collect();
        seen.sort();
        seen.dedup();
        for v in seen {
            let r = *root.get(&v).unwrap_or(&v);
            if last.get(&r) == Some(&pos)
                && let Some(&b) = l.buf.get(&r)
                && matches!(l.p.buffers[b].kind, BufferKind::Scratch)
            {
                l.alloc.release(b);
            }
        }
    }
    for &v in g.outputs() {
        let buffer = l.buffer_of(v)?;
        let shape = l.shape(v)?;
        l.p.outputs.push(Io {
            name: g.value(v).name.clone(),
            buffer,
            shape,
        });
    }
    Ok(l.p)
}

fn is_alias(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity | Op::Dropout | Op::Flatten { .. } | Op::Reshape { .. }
    )
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Lowering state: the program being built and where each value lives.
pub(crate) struct Lower<'a> {
    pub g: &'a Graph,
    pub limits: &'a Limits,
    pub p: WgslProgram,
    modules: HashMap<String, usize>,
    buf: HashMap<ValueId, usize>,
    alloc: Allocator,
    /// For each SE block input: the partial channel sums its producing conv wrote, as
    /// `(buffer, tiles, straddling)`: `tiles` per image, or, when `straddling`, 64-column tiles
    /// over all images with two parts each (see conv1x1.wgsl); `None` where the SE block must
    /// squeeze it itself.
    pub squeezed: HashMap<ValueId, Option<Partials>>,
    /// SE outputs whose scale pass is folded into their first consumer, a 1x1 conv.
    pub defer_scale: HashSet<ValueId>,
    /// For those, once the SE block is lowered: what the conv needs to apply the scale.
    pub deferred: HashMap<ValueId, Deferred>,
    /// SE blocks folded into the linear 1x1 conv that feeds them, by that conv's output (the
    /// conv runs where the SE block was, as one node writing the SE output).
    pub folds: HashMap<ValueId, NodeId>,
}

/// The partial channel sums a conv wrote for an SE squeeze: `tiles` 64-column tiles per image
/// (`parts == 0`), or `tiles` tiles over all columns, straddling images, with `parts` sums
/// each (the tile's first image and the next ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Partials {
    pub buf: usize,
    pub tiles: usize,
    pub parts: usize,
}

/// An SE block's scale, left for the 1x1 conv that reads its output to apply on load: the
/// conv reads `x` (the SE input) instead, computes `steps` (scale by `gates[n, c]`, residual
/// `res`, act) per element, and its first row of workgroups stores the result in `y`.
pub(crate) struct Deferred {
    pub x: usize,
    pub gates: usize,
    pub res: Option<usize>,
    pub steps: Vec<Step>,
    pub y: usize,
    /// Buffers to free once the conv has run.
    pub temps: Vec<usize>,
}

impl Lower<'_> {
    /// Emits the dispatches of one node; returns temporary buffers to free after it.
    fn lower_node(&mut self, node: &Node) -> Result<Vec<usize>, WgslError> {
        let ins = &node.inputs;
        let out = *node
            .outputs
            .first()
            .ok_or_else(|| unsupported(node, "no output"))?;
        if is_alias(&node.op) {
            let b = self.buffer_of(ins[0])?;
            self.buf.insert(out, b);
            return Ok(Vec::new());
        }
        let y = self.out_buffer(out)?;
        match &node.op {
            Op::Conv(c) => conv::conv(self, node, c, ins.get(2).copied(), &[], y),
            Op::FusedConv(f) => conv::fused_conv(self, node, f, y),
            Op::SeBlock(s) => return se::se_block(self, node, s, y),
            Op::Relu
            | Op::Sigmoid
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Silu
            | Op::Clip { .. }
            | Op::Expand { .. } => simple::unary(self, node, y),
            Op::Add | Op::Sub | Op::Mul | Op::Div => simple::binary(self, node, y),
            Op::BatchNorm { epsilon } => simple::batchnorm(self, node, *epsilon, y),
            Op::GlobalAveragePool => {
                let rank = self.shape(ins[0])?.len();
                simple::reduce_mean(self, node, &(2..rank).collect::<Vec<_>>(), y)
            }
            Op::ReduceMean { axes, .. } => simple::reduce_mean(self, node, axes, y),
            Op::MaxPool(p) => simple::pool(self, node, p, false, y),
            Op::AveragePool(p) => simple::pool(self, node, p, true, y),
            Op::Gemm(gm) => simple::gemm(self, node, gm, y),
            Op::MatMul => simple::matmul(self, node, y),
            Op::Softmax { axis } => simple::softmax(self, node, *axis, y),
            Op::Concat { axis } => simple::concat(self, node, *axis, y),
            _ => Err(unsupported(node, "no kernel for this op")),
        }?;
        Ok(Vec::new())
    }

    /// The resolved shape of a value.
    pub fn shape(&self, v: ValueId) -> Result<Vec<usize>, WgslError> {
        let val = self.g.value(v);
        val.ty
            .as_ref()
            .and_then(|t| t.shape.as_fixed())
            .ok_or_else(|| WgslError::Unsupported {
                node: val.name.clone(),
                op: "value",
                msg: "has no concrete shape".into(),
            })
    }

    /// The buffer holding a value; weights get theirs (raw layout) on first use.
    pub fn buffer_of(&mut self, v: ValueId) -> Result<usize, WgslError> {
        if let Some(&b) = self.buf.get(&v) {
            return Ok(b);
        }
        let val = self.g.value(v);
        match &val.def {
            ValueDef::Weight(t) => {
                let data: Arc<[f32]> = Arc::from(t.data());
                let b = self.weight(&val.name.clone(), data)?;
                self.buf.insert(v, b);
                Ok(b)
            }
            _ => Err(WgslError::Unsupported {
                node: val.name.clone(),
                op: "value",
                msg: "read before it is computed".into(),
            }),
        }
    }

    /// The constant data of a weight value, if it is one.
    pub fn weight_data(&self, v: ValueId) -> Option<&[f32]> {
        self.g.value(v).weight().map(|t| t.data())
    }

    /// A new weight buffer holding `data`.
    pub fn weight(&mut self, label: &str, data: Arc<[f32]>) -> Result<usize, WgslError> {
        let n = data.len();
        self.new_buffer(label, n, BufferKind::Weight(data))
    }

    fn new_buffer(
        &mut self,
        label: &str,
        elems: usize,
        kind: BufferKind,
    ) -> Result<usize, WgslError> {
        let bytes = self.check_size(label, elems)?;
        self.p.buffers.push(Buffer {
            label: label.to_string(),
            bytes,
            kind,
        });
        Ok(self.p.buffers.len() - 1)
    }

    fn check_size(&self, label: &str, elems: usize) -> Result<u64, WgslError> {
        let bytes = (elems.max(1) as u64).saturating_mul(4);
        let limit = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(WgslError::TooLarge {
                tensor: label.to_string(),
                bytes,
                limit,
            });
        }
        Ok(bytes)
    }

    /// A scratch buffer for a node output.
    fn out_buffer(&mut self, v: ValueId) -> Result<usize, WgslError> {
        let shape = self.shape(v)?;
        let b = self.temp(&self.g.value(v).name.clone(), numel(&shape))?;
        self.buf.insert(v, b);
        Ok(b)
    }

    /// A scratch buffer of `elems` floats (for a tensor called `label` in errors).
    pub fn temp(&mut self, label: &str, elems: usize) -> Result<usize, WgslError> {
        let bytes = self.check_size(label, elems)?;
        Ok(self.alloc.alloc(&mut self.p, bytes))
    }

    /// Returns a temporary buffer to the planner right after the dispatches that used it.
    pub fn release(&mut self, b: usize) {
        self.alloc.release(b);
    }

    /// Renders, validates and (deduplicating by source) adds a module; returns its index. A
    /// module needing more workgroup memory than the device has is refused.
    pub fn module(
        &mut self,
        name: &str,
        template: &str,
        values: &[(&str, String)],
    ) -> Result<usize, WgslError> {
        let source = render::render(name, template, values)?;
        if let Some(&i) = self.modules.get(&source) {
            return Ok(i);
        }
        let shared = validate::validate(name, &source)?;
        let most = self.limits.max_compute_workgroup_storage_size;
        if shared > most {
            return Err(WgslError::Template {
                kernel: name.to_string(),
                msg: format!("needs {shared} bytes of workgroup memory; the device allows {most}"),
            });
        }
        self.p.modules.push(Module {
            name: name.to_string(),
            source: source.clone(),
        });
        self.modules.insert(source, self.p.modules.len() - 1);
        Ok(self.p.modules.len() - 1)
    }

    pub fn dispatch(
        &mut self,
        node: &Node,
        module: usize,
        bindings: Vec<usize>,
        workgroups: [u32; 3],
    ) -> Result<(), WgslError> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if bindings.len() > self.limits.max_storage_buffers_per_shader_stage as usize {
            return Err(unsupported(
                node,
                "needs more storage buffers than the device allows",
            ));
        }
        if workgroups.iter().any(|&w| w > max) {
            return Err(unsupported(
                node,
                &format!("needs {workgroups:?} workgroups, over the device's {max} per dimension"),
            ));
        }
        self.p.dispatches.push(Dispatch {
            node: node.name.clone(),
            module,
            bindings,
            workgroups,
        });
        Ok(())
    }

    /// Workgroups for `total` threads in 64-thread groups, folded into 2-D past the per-dimension
    /// limit; returns them with the row length the shader's `{{row}}` hole needs.
    pub fn grid(&self, total: usize) -> ([u32; 3], String) {
        let groups = total.div_ceil(64).max(1);
        let max = (self.limits.max_compute_workgroups_per_dimension as usize).max(1);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        ([x as u32, y as u32, 1], render::u(x * 64))
    }
}

/// Refuses a conv or pool whose strides, pads, dilations or kernel size do not fit the `u32`
/// (and `i32`) arithmetic of the shaders, before any of them is generated.
fn check_u32_attrs(node: &Node) -> Result<(), WgslError> {
    let ints: Vec<usize> = match &node.op {
        Op::Conv(c) => [&c.strides[..], &c.pads, &c.dilations].concat(),
        Op::FusedConv(f) => [&f.conv.strides[..], &f.conv.pads, &f.conv.dilations].concat(),
        Op::MaxPool(p) | Op::AveragePool(p) => {
            [&p.kernel[..], &p.strides, &p.pads, &p.dilations].concat()
        }
        _ => return Ok(()),
    };
    match ints.iter().find(|&&v| v > i32::MAX as usize) {
        Some(v) => Err(unsupported(
            node,
            &format!("attribute value {v} is over the shaders' 32-bit range"),
        )),
        None => Ok(()),
    }
}

pub(crate) fn unsupported(node: &Node, msg: &str) -> WgslError {
    WgslError::Unsupported {
        node: node.name.clone(),
        op: node.op.name(),
        msg: msg.to_string(),
    }
}

/// The `sum` hole of se_scale, se_tile, se_hidden, splitk_gate and splitk_squeeze_end: each
/// lane stores `value` in `red[at]`, then a tree over `lanes` lanes (`lane` this one's index;
/// a power of two) leaves the sum in the first lane's slot. With `radix` 2 (or less) a halving loop, one
/// barrier per level; with a larger radix, straight-line levels in which each of the first
/// `lanes / radix` lanes adds `radix` slots `lanes / radix` apart: log_radix(lanes) barriers
/// (`Limits::tree_radix`).
pub(crate) fn tree_sum(
    radix: u32,
    [red, at, value, lane]: [&str; 4],
    lanes: usize,
) -> Result<String, WgslError> {
    if !lanes.is_power_of_two() {
        return Err(WgslError::Template {
            kernel: "tree_sum".into(),
            msg: format!("{lanes} lanes: not a power of two"),
        });
    }
    if radix <= 2 {
        let s = render::render(
            "tree_sum",
            include_str!("kernels/tree_sum.wgsl"),
            &[
                ("red", red.to_string()),
                ("at", at.to_string()),
                ("value", value.to_string()),
                ("lanes", render::u(lanes)),
                ("lane", lane.to_string()),
            ],
        )?;
        return Ok(s.trim_end().to_string());
    }
    let radix = (radix as usize).next_power_of_two();
    let mut s = format!(
        "    // (tree_sum, radix {radix}: each lane stores its value, then each level's first \
         lanes\n    // add the slots of the rest, leaving the sum of the {lanes} lanes in the \
         first one's.)\n    {red}[{at}] = {value};\n    workgroupBarrier();\n"
    );
    let mut n = lanes;
    while n > 1 {
        let w = n / radix.min(n);
        let mut terms: Vec<String> = (0..n / w)
            .map(|k| match k {
                0 => format!("{red}[{at}]"),
                k => format!("{red}[{at} + {}u]", k * w),
            })
            .collect();
        // Added pairwise, so that the loads are independent.
        while terms.len() > 1 {
            terms = terms
                .chunks(2)
                .map(|p| match p {
                    [a, b] => format!("({a} + {b})"),
                    _ => p.concat(),
                })
                .collect();
        }
        let sum = &terms[0];
        let _ = writeln!(
            s,
            "    if ({lane} < {w}u) {{\n        {red}[{at}] = {sum};\n    }}\n    workgroupBarrier();"
        );
        n = w;
    }
    Ok(s.trim_end().to_string())
}

/// WGSL declarations of storage bindings 0.. in order: `(name, writable, element type)`.
pub(crate) fn bindings(list: &[(&str, bool, &str)]) -> String {
    let mut s = String::new();
    for (i, (name, write, ty)) in list.iter().enumerate() {
        let access = if *write { "read_write" } else { "read" };
        s.push_str(&format!(
            "@group(0) @binding({i}) var<storage, {access}> {name}: array<{ty}>;\n"
        ));
    }
    s
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// A WGSL `u32` expression mapping the row-major linear index `var` over `dims` to
/// `sum(index_d * strides[d])`.
pub(crate) fn offset_expr(var: &str, dims: &[usize], offs: &[usize]) -> String {
    if offs == strides(dims).as_slice() {
        return var.to_string();
    }
    let st = strides(dims);
    let terms: Vec<String> = (0..dims.len())
        .filter(|&d| dims[d] > 1 && offs[d] != 0)
        .map(|d| format!("(({var} / {}u) % {}u) * {}u", st[d], dims[d], offs[d]))
        .collect();
    if terms.is_empty() {
        "0u".into()
    } else {
        terms.join(" + ")
    }
}

/// Strides reading `ins` (right-aligned, NumPy broadcasting) at each index of `out`.
pub(crate) fn broadcast_strides(ins: &[usize], out: &[usize]) -> Vec<usize> {
    let st = strides(ins);
    let lead = out.len().saturating_sub(ins.len());
    (0..out.len())
        .map(|d| match d.checked_sub(lead) {
            Some(i) if ins[i] == out[d] && ins[i] > 1 => st[i],
            _ => 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn radix_tree_sums() {
        // 8 lanes by radix 4: lanes 0-1 add 4 slots 2 apart, then lane 0 adds 2.
        let s = tree_sum(4, ["red", "t", "v", "l"], 8).expect("power of two");
        // (Written at a function body's indentation; compared one level out.)
        let s: Vec<&str> = s
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        expect![[r#"
                // (tree_sum, radix 4: each lane stores its value, then each level's first lanes
                // add the slots of the rest, leaving the sum of the 8 lanes in the first one's.)
                red[t] = v;
                workgroupBarrier();
                if (l < 2u) {
                    red[t] = ((red[t] + red[t + 2u]) + (red[t + 4u] + red[t + 6u]));
                }
                workgroupBarrier();
                if (l < 1u) {
                    red[t] = (red[t] + red[t + 1u]);
                }
                workgroupBarrier();"#]]
        .assert_eq(&s.join("\n"));
        // One lane: nothing to add; a radix over the lane count: one level.
        assert!(
            !tree_sum(16, ["r", "t", "v", "l"], 1)
                .expect("1")
                .contains("if (")
        );
        assert_eq!(
            tree_sum(64, ["r", "t", "v", "l"], 16)
                .expect("16")
                .matches("if (")
                .count(),
            1
        );
        assert!(tree_sum(16, ["r", "t", "v", "l"], 12).is_err());
    }

    #[test]
    fn offset_expressions() {
        let out = [2, 3, 4];
        let got = [
            offset_expr("o", &out, &broadcast_strides(&[2, 3, 4], &out)),
            offset_expr("o", &out, &broadcast_strides(&[3, 1], &out)),
            offset_expr("o", &out, &broadcast_strides(&[1], &out)),
        ];
        expect![[r#"["o", "((o / 4u) % 3u) * 1u", "0u"]"#]].assert_eq(&format!("{got:?}"));
    }
}
