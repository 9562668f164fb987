//! CPU-only: every op and fused op compiles to WGSL that naga parses and validates, zoo SE
//! networks compile after `excite_passes::optimize`, and the limits are enforced with typed
//! errors. (Numerical agreement with the interpreter is checked on a device in
//! `runtime/tests/gpu_*.rs`.)

use std::sync::Arc;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{
    Act, Dim, FusedConv, Graph, Op, SeBlock, Shape, Tensor, TensorType, ValueId, verify,
};
use excite_wgsl::{Limits, WgslError, compile};

struct B {
    g: Graph,
    n: usize,
}

impl B {
    fn new(x: &[usize]) -> (B, ValueId) {
        let mut g = Graph::new("t");
        let dims = std::iter::once(Dim::Batch).chain(x.iter().map(|&d| Dim::Fixed(d)));
        let v = g
            .add_input("x", TensorType::f32(Shape(dims.collect())))
            .expect("input");
        (B { g, n: 0 }, v)
    }
    fn w(&mut self, shape: &[usize]) -> ValueId {
        self.n += 1;
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| (i % 7) as f32 * 0.25 - 0.5).collect();
        let t = Tensor::new(shape.to_vec(), data).expect("tensor");
        self.g
            .add_weight(&format!("w{}", self.n), Arc::new(t))
            .expect("weight")
    }
    fn op(&mut self, op: Op, ins: &[ValueId]) -> ValueId {
        self.n += 1;
        let out = format!("v{}", self.n);
        self.g
            .add_node(&format!("n{}", self.n), op, ins, &[&out])
            .expect("node");
        self.g.find_value(&out).expect("defined")
    }
    fn done(mut self, out: ValueId) -> Graph {
        self.g.add_output(out).expect("output");
        verify::verify(&mut self.g).expect("verifies");
        self.g
    }
}

/// One small graph per op kind, fused ones included.
fn op_graphs() -> Vec<(&'static str, Graph)> {
    let mut v = Vec::new();
    let conv = Conv {
        strides: [2, 1],
        pads: [1, 1, 1, 0],
        dilations: [1, 2],
        group: 2,
    };
    let (mut b, x) = B::new(&[4, 9, 9]);
    let w = b.w(&[6, 2, 3, 3]);
    let bias = b.w(&[6]);
    let y = b.op(Op::Conv(conv.clone()), &[x, w, bias]);
    v.push(("conv", b.done(y)));
    let (mut b, x) = B::new(&[4, 9, 9]);
    let w = b.w(&[4, 1, 3, 3]);
    let r = b.op(
        Op::Conv(Conv {
            group: 4,
            ..conv.clone()
        }),
        &[x, w],
    );
    let f = FusedConv {
        conv: Conv {
            group: 4,
            ..conv.clone()
        },
        bias: false,
        act: Some(Act::Silu),
        residual: true,
        post_act: Some(Act::Relu),
    };
    let y = b.op(Op::FusedConv(f), &[x, w, r]);
    v.push(("fused depthwise conv", b.done(y)));
    let (mut b, x) = B::new(&[5, 3, 3]);
    let ins = [
        x,
        b.w(&[2, 5, 1, 1]),
        b.w(&[2]),
        b.w(&[5, 2, 1, 1]),
        b.w(&[5]),
    ];
    let r = b.op(Op::Relu, &[x]);
    let se = SeBlock {
        act: Act::HardSwish,
        gate: Act::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        bias1: true,
        bias2: true,
        residual: true,
        post_act: Some(Act::Relu),
    };
    let y = b.op(
        Op::SeBlock(se),
        &[ins[0], ins[1], ins[2], ins[3], ins[4], r],
    );
    v.push(("se block", b.done(y)));
    let pool = Pool {
        kernel: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        ceil_mode: true,
        count_include_pad: false,
    };
    for (name, op) in [
        ("maxpool", Op::MaxPool(pool.clone())),
        ("avgpool", Op::AveragePool(pool)),
        ("gap", Op::GlobalAveragePool),
        (
            "mean",
            Op::ReduceMean {
                axes: vec![1],
                keepdims: false,
            },
        ),
        ("softmax", Op::Softmax { axis: 2 }),
        ("clip", Op::Clip { min: 0.0, max: 6.0 }),
        ("sigmoid", Op::Sigmoid),
        (
            "expand",
            Op::Expand {
                shape: vec![1, 3, 5, 5],
            },
        ),
    ] {
        let (mut b, x) = B::new(&[3, 5, 5]);
        let y = b.op(op, &[x]);
        v.push((name, b.done(y)));
    }
    for (name, op) in [
        ("add", Op::Add),
        ("sub", Op::Sub),
        ("mul", Op::Mul),
        ("div", Op::Div),
    ] {
        let (mut b, x) = B::new(&[3, 5, 5]);
        let w = b.w(&[3, 1, 1]);
        let y = b.op(op, &[x, w]);
        v.push((name, b.done(y)));
    }
    let (mut b, x) = B::new(&[3, 5, 5]);
    let ins = [x, b.w(&[3]), b.w(&[3]), b.w(&[3]), b.w(&[3])];
    let y = b.op(Op::BatchNorm { epsilon: 1e-5 }, &ins);
    v.push(("batchnorm", b.done(y)));
    let (mut b, x) = B::new(&[3, 5, 5]);
    let f = b.op(Op::Flatten { axis: 1 }, &[x]);
    let w = b.w(&[10, 75]);
    let c = b.w(&[10]);
    let y = b.op(
        Op::Gemm(Gemm {
            trans_b: true,
            ..Gemm::default()
        }),
        &[f, w, c],
    );
    let w2 = b.w(&[10, 4]);
    let y = b.op(Op::MatMul, &[y, w2]);
    let y = b.op(Op::Concat { axis: 1 }, &[y, y]);
    v.push(("gemm matmul concat", b.done(y)));
    v
}

/// Zoo network `name` at 64x64 with 10 classes, after `excite_passes::optimize`.
fn zoo_optimized(name: &str) -> Graph {
    zoo_optimized_at(name, 64)
}

fn zoo_optimized_at(name: &str, size: usize) -> Graph {
    let opts = excite_zoo::BuildOptions {
        input_size: Some(size),
        classes: 10,
        ..Default::default()
    };
    let g = excite_zoo::build(name, &opts).expect("zoo");
    excite_passes::optimize(g, &excite_passes::Options::default())
        .expect("optimize")
        .graph
}

#[test]
fn every_op_compiles_to_valid_wgsl() {
    let mut modules = 0;
    let graphs = op_graphs();
    for (name, g) in &graphs {
        let p = compile(g, 2, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!p.dispatches.is_empty(), "{name}");
        assert!(p.dispatches.iter().all(|d| d.module < p.modules.len()));
        modules += p.modules.len();
    }
    assert_eq!(graphs.len(), 17);
    assert!(modules >= graphs.len(), "{modules} modules");
}

#[test]
fn se_block_takes_two_dispatches() {
    let graphs = op_graphs();
    let (_, g) = graphs
        .iter()
        .find(|(n, _)| *n == "se block")
        .expect("se case");
    let p = compile(g, 3, &Limits::default()).expect("compiles");
    let se: Vec<_> = p
        .dispatches
        .iter()
        .filter(|d| p.modules[d.module].name.starts_with("se_"))
        .collect();
    assert_eq!(se.len(), 2);
    let kernel = |i: usize| p.modules[se[i].module].name.as_str();
    assert_eq!([kernel(0), kernel(1)], ["se_fc", "se_scale"]);
    assert_eq!(
        se[0].workgroups[1], 3,
        "a row of hidden-layer workgroups per image"
    );
}

#[test]
fn zoo_se_networks_compile_with_buffer_reuse() {
    for name in [
        "se-resnet50",
        "se-resnext50-32x4d",
        "efficientnet-b0",
        "se-bn-inception",
    ] {
        let g = zoo_optimized(name);
        let ses = g
            .node_ids()
            .filter(|&n| matches!(g.node(n).op, Op::SeBlock(_)))
            .count();
        assert!(ses > 0, "{name} has no fused SE block");
        let p = compile(&g, 2, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Buffer reuse is measured without split-K convs, whose partial products are extra
        // workspace (up to 16 slabs of an output at these tiny sizes).
        let unsplit = Limits {
            min_workgroups: 0,
            ..Limits::default()
        };
        let p0 = compile(&g, 2, &unsplit).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!p0.modules.iter().any(|m| m.name == "splitk"), "{name}");
        let activations: u64 = g
            .node_ids()
            .flat_map(|n| g.node(n).outputs.clone())
            .filter_map(|v| g.ty_of(v).and_then(|t| t.shape.numel_with(2)))
            .map(|n| n as u64 * 4)
            .sum();
        assert!(
            p0.scratch_bytes() * 2 < activations,
            "{name}: {} scratch bytes for {activations}",
            p0.scratch_bytes()
        );
        let dispatches = |p: &excite_wgsl::WgslProgram, k: &str| {
            p.dispatches
                .iter()
                .filter(|d| p.modules[d.module].name == k)
                .count()
        };
        // Unsplit, every block has its `se_fc` dispatch; with split-K convs, a block folded
        // into a conv3 that splits K has none (its hidden layer runs in extra workgroups of the
        // conv's GEMM, its gates in the reduction: `splitk_gate`).
        assert_eq!(dispatches(&p0, "se_fc"), ses, "{name}");
        assert_eq!(dispatches(&p0, "splitk_gate"), 0, "{name}");
        assert!(
            !p0.modules.iter().any(|m| m.source.contains("fn se_tile(")),
            "{name}"
        );
        // Or the gates come from each tile of a small unsplit conv3 (`se_tile` in its module).
        let tails = dispatches(&p, "splitk_gate");
        let tiled = p
            .dispatches
            .iter()
            .filter(|d| p.modules[d.module].source.contains("fn se_tile("))
            .count();
        assert_eq!(dispatches(&p, "se_fc") + tails + tiled, ses, "{name}");
        // Each block ends in a scale pass, or in gates that a conv applies (the next 1x1 conv,
        // or the conv the block is folded into, or its split-K reduction, or its tiles).
        assert_eq!(
            dispatches(&p, "se_scale") + dispatches(&p, "se_gates") + tails + tiled,
            ses,
            "{name}"
        );
        let dispatches = |k: &str| dispatches(&p, k);
        if name.starts_with("se-res") {
            // Every block folds into its conv3; in SE-ResNets conv2 (not grouped) squeezes for
            // it in its epilogue (or its split-K reduction), so `se_fc` only adds partial sums.
            assert_eq!(p.folded_se.len(), ses, "{name}");
            assert_eq!(dispatches("se_scale"), 0, "{name}");
            assert!(
                tails > 0,
                "{name}: no SE block computed with its split-K conv"
            );
        }
        if name.starts_with("se-resnet") {
            let squeezing = p
                .dispatches
                .iter()
                .filter(|d| {
                    let m = &p.modules[d.module];
                    m.name == "conv1x1_squeeze"
                        || m.name == "splitk_squeeze"
                        || m.source.contains("partials[(wg.x")
                })
                .count();
            assert_eq!(squeezing, ses, "{name}");
            let pooling = p
                .modules
                .iter()
                .filter(|m| m.source.contains("se_x[(n * SE_C + c)"))
                .count();
            assert_eq!(pooling, 0, "{name}");
        }
        let files = p.files();
        assert_eq!(files.len(), p.modules.len() + 1);
        eprintln!(
            "{name}: {ses} SE blocks ({tails} in split-K convs, {tiled} in conv tiles), {} \
             dispatches, {} modules",
            p.dispatches.len(),
            p.modules.len()
        );
    }
}

#[test]
fn oversized_tensors_are_refused() {
    let graphs = op_graphs();
    let (_, g) = &graphs[0];
    let tiny = Limits {
        max_storage_buffer_binding_size: 64,
        ..Limits::default()
    };
    let err = compile(g, 2, &tiny).map_err(|e| e.to_string());
    assert!(
        matches!(compile(g, 2, &tiny), Err(WgslError::TooLarge { .. })),
        "{err:?}"
    );
}

#[test]
fn unrepresentable_attributes_are_errors_naming_the_node() {
    // A stride past the shaders' 32-bit arithmetic, and a NaN activation parameter (no WGSL
    // literal): both refused naming the node, before any module is generated.
    let (mut b, x) = B::new(&[4, 8, 8]);
    let w = b.w(&[4, 4, 3, 3]);
    let conv = Conv {
        strides: [1 << 40, 1],
        ..Conv::default()
    };
    let y = b.op(Op::Conv(conv), &[x, w]);
    let (mut b2, x2) = B::new(&[4, 8, 8]);
    let y2 = b2.op(
        Op::HardSigmoid {
            alpha: f32::NAN,
            beta: 0.5,
        },
        &[x2],
    );
    let mut checked = 0;
    for (g, op) in [(b.done(y), "Conv"), (b2.done(y2), "HardSigmoid")] {
        let out = g.outputs().first().copied().expect("output");
        let producer = g.producer(out).expect("producer");
        let name = g.node(producer).name.clone();
        match compile(&g, 1, &Limits::default()) {
            Err(WgslError::Unsupported { node, op: o, .. }) => {
                assert_eq!((node.as_str(), o), (name.as_str(), op));
                checked += 1;
            }
            other => panic!("{op}: expected Unsupported, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn plan_reuses_dead_buffers() {
    // x -> conv -> relu -> maxpool: the relu output takes a fresh buffer while the conv output
    // is live, then the pool output reuses the conv's buffer once it is dead.
    let (mut b, x) = B::new(&[2, 4, 4]);
    let w = b.w(&[3, 2, 3, 3]);
    let c = b.op(
        Op::Conv(Conv {
            pads: [1; 4],
            ..Conv::default()
        }),
        &[x, w],
    );
    let r = b.op(Op::Relu, &[c]);
    let pool = Pool {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0; 4],
        dilations: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let y = b.op(Op::MaxPool(pool), &[r]);
    let p = compile(&b.done(y), 2, &Limits::default()).expect("compiles");
    expect_test::expect![[r#"
        batch 2
        buffer 0 256 bytes input x (x)
        buffer 1 384 bytes scratch (scratch1)
        buffer 2 8192 bytes weight (w1.packed)
        buffer 3 384 bytes scratch (scratch3)
        input x [2, 2, 4, 4] in buffer 0
        output v4 [2, 3, 2, 2] in buffer 1
        dispatch n2 module 0 conv bindings [0, 2, 1] workgroups [1, 1, 1]
        dispatch n3 module 1 unary bindings [1, 3] workgroups [2, 1, 1]
        dispatch n4 module 2 maxpool bindings [3, 1] workgroups [1, 1, 1]
    "#]]
    .assert_eq(&p.plan_text());
}

#[test]
fn conv_with_a_runtime_weight_reads_it_unpacked() {
    // ONNX's own Conv tests feed the weight as a graph input: it cannot be packed on the host,
    // so the conv goes to the direct kernel, which reads the input buffer as OIHW.
    let (mut b, x) = B::new(&[3, 6, 6]);
    let wt = TensorType::f32(Shape(vec![
        Dim::Fixed(5),
        Dim::Fixed(3),
        Dim::Fixed(3),
        Dim::Fixed(3),
    ]));
    let w = b.g.add_input("w", wt).expect("weight input");
    let conv = Conv {
        strides: [1, 1],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
    };
    let y = b.op(Op::Conv(conv), &[x, w]);
    let g = b.done(y);
    let p = compile(&g, 2, &Limits::default()).expect("compiles");
    let [d] = p.dispatches.as_slice() else {
        panic!("{} dispatches", p.dispatches.len())
    };
    assert!(
        p.modules[d.module].name.starts_with("grouped"),
        "{}",
        p.modules[d.module].name
    );
    let w_in = p
        .inputs
        .iter()
        .find(|i| i.name == "w")
        .expect("w is an input");
    assert_eq!(w_in.shape, [5, 3, 3, 3]);
    assert!(
        d.bindings.contains(&w_in.buffer),
        "the kernel reads the input buffer itself"
    );
    assert!(
        !p.buffers
            .iter()
            .any(|b| matches!(b.kind, excite_wgsl::BufferKind::Weight(_)))
    );
}

#[test]
fn split_k_parts_stay_within_the_binding_limit() {
    // A 3x3 conv over one 64x64 image, 16 -> 64 channels: 64 output tiles and K = 144, so it
    // splits K in two. Its output takes 1 MiB; with a 1.5 MiB binding limit two slabs of
    // partial products would not fit, so it must run unsplit rather than fail.
    let (mut b, x) = B::new(&[16, 64, 64]);
    let w = b.w(&[64, 16, 3, 3]);
    let conv = Conv {
        pads: [1; 4],
        ..Conv::default()
    };
    let y = b.op(Op::Conv(conv), &[x, w]);
    let g = b.done(y);
    let split = |p: &excite_wgsl::WgslProgram| p.modules.iter().any(|m| m.name == "splitk");
    let p = compile(&g, 1, &Limits::default()).expect("compiles");
    assert!(split(&p), "the default limits split this conv");
    let tight = Limits {
        max_storage_buffer_binding_size: 3 << 19,
        ..Limits::default()
    };
    let p = compile(&g, 1, &tight).unwrap_or_else(|e| panic!("{e}"));
    assert!(!split(&p), "two slabs of 1 MiB do not fit 1.5 MiB");
}

#[test]
fn gemm_kernels_store_contiguously_and_the_knobs_turn_it_off() {
    // SE-ResNet-50 at 64x64 uses every GEMM kernel: gathering convs, pointwise ones (split,
    // squeezing, with SE gates in the tiles or folded into the reduction).
    let g = zoo_optimized("se-resnet50");
    let gemm = |limits: &Limits| -> Vec<String> {
        let p = compile(&g, 2, limits).unwrap_or_else(|e| panic!("{e}"));
        p.modules
            .iter()
            .filter(|m| m.name == "conv" || m.name == "conv1x1")
            .map(|m| m.source.clone())
            .collect()
    };
    let count = |mods: &[String], s: &str| mods.iter().filter(|m| m.contains(s)).count();
    let on = gemm(&Limits::default());
    let off = gemm(&Limits {
        strided_cols: false,
        vec4_stores: false,
        ..Limits::default()
    });
    assert_eq!(on.len(), off.len());
    // Gathering kernels: each thread's columns 16 apart by default.
    let strided = count(&on, "let col0 = n0 + lq + 0u;");
    let gathering = count(&on, "fn main") - count(&on, "qbase");
    assert!(
        strided > 0 && strided == gathering,
        "{strided} of {gathering}"
    );
    assert_eq!(count(&off, "let col0 = n0 + lq + 0u;"), 0);
    assert_eq!(count(&off, "let col0 = n0 + lq * 4u + 0u;"), gathering);
    // Pointwise kernels: each row's four outputs stored as one vec4 by default.
    let quads = count(&on, "var q = acc[0];");
    assert!(quads > 0 && quads == count(&on, "qbase"), "{quads}");
    assert_eq!(count(&off, "var q = acc[0];"), 0);
    // Split-K reductions by quads (planes of whole quads: all of them at 64x64).
    let reductions = |limits: &Limits| -> Vec<(String, String)> {
        let p = compile(&g, 2, limits).unwrap_or_else(|e| panic!("{e}"));
        p.modules
            .iter()
            .filter(|m| m.name.starts_with("splitk"))
            .map(|m| (m.name.clone(), m.source.clone()))
            .collect()
    };
    let quad = Limits {
        vec4_splitk: true,
        ..Limits::default()
    };
    let r = reductions(&quad);
    let kinds = ["splitk", "splitk_squeeze", "splitk_gate"].map(|k| {
        r.iter()
            .filter(|(n, s)| n == k && s.contains("const PER: u32 = 4u;"))
            .count()
    });
    assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
    // The others have planes of no whole quads (the classifier's 1x1 "planes").
    let hw = |s: &str| -> usize {
        let at = s.find("const HW: u32 = ").expect("HW") + 16;
        s[at..]
            .split('u')
            .next()
            .and_then(|d| d.parse().ok())
            .expect("HW value")
    };
    assert!(
        r.iter()
            .all(|(_, s)| s.contains("const PER: u32 = 4u;") != (hw(s) % 4 != 0))
    );
    let r = reductions(&Limits {
        vec4_splitk: false,
        ..quad
    });
    assert!(!r.is_empty() && r.iter().all(|(_, s)| !s.contains("const PER: u32 = 4u;")));
}

#[test]
fn modules_beyond_the_workgroup_memory_limit_are_refused() {
    // The GEMM conv kernel declares 8 KiB of tiles; a device allowing 4 KiB cannot run it.
    let (mut b, x) = B::new(&[16, 8, 8]);
    let w = b.w(&[32, 16, 3, 3]);
    let conv = Conv {
        pads: [1; 4],
        ..Conv::default()
    };
    let y = b.op(Op::Conv(conv), &[x, w]);
    let g = b.done(y);
    compile(&g, 1, &Limits::default()).expect("compiles with the default limits");
    let small = Limits {
        max_compute_workgroup_storage_size: 4096,
        ..Limits::default()
    };
    let err = compile(&g, 1, &small)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&err, Err(m) if m.contains("8192 bytes of workgroup memory") && m.contains("4096")),
        "{err:?}"
    );
}

#[test]
fn winograd_takes_the_3x3_stride_1_convs_with_enough_tiles() {
    let g = zoo_optimized("se-resnet50");
    // The dense 3x3 stride-1 convs of the optimised graph (one per bottleneck but for the
    // stride-2 first blocks of layers 2-4).
    let eligible = g
        .node_ids()
        .filter(|&id| {
            let c = match &g.node(id).op {
                Op::Conv(c) => c,
                Op::FusedConv(f) => &f.conv,
                _ => return false,
            };
            let w = g.ty_of(g.node(id).inputs[1]).expect("typed weight");
            c.group == 1 && c.strides == [1, 1] && w.shape.dims()[2..] == [Dim::Fixed(3); 2]
        })
        .count();
    assert_eq!(eligible, 13);
    let wino = |limits: &Limits| {
        let p = compile(&g, 2, limits).unwrap_or_else(|e| panic!("{e}"));
        let count = |k: &str| {
            p.dispatches
                .iter()
                .filter(|d| p.modules[d.module].name == k)
                .count()
        };
        (count("wino_in"), count("wino_out"))
    };
    let off = Limits {
        winograd: 0,
        ..Limits::default()
    };
    assert_eq!(wino(&off), (0, 0), "the knob turns it off");
    let on = Limits {
        winograd: 2,
        min_workgroups: 0,
        ..Limits::default()
    };
    assert_eq!(wino(&on), (eligible, eligible));
    let f4 = Limits { winograd: 4, ..on };
    assert_eq!(wino(&f4), (eligible, eligible), "F(4x4, 3x3) too");
    // With the default minimum of tiles (and F(4x4), the default), 64x64 images at batch 2
    // have too few for any.
    assert_eq!(wino(&Limits::default()), (0, 0));
    // At 224x224, batch 32 (the benchmark), the default takes ResNet-50's 13 by F(4x4).
    let g = zoo_optimized_at("resnet50", 224);
    let p = compile(&g, 32, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let f4 = p
        .modules
        .iter()
        .filter(|m| m.name == "wino_in" && m.source.contains("const M: u32 = 4u;"))
        .count();
    let runs = p
        .dispatches
        .iter()
        .filter(|d| p.modules[d.module].name == "wino_in")
        .count();
    assert_eq!((runs, f4 > 0), (eligible, true));
}

#[test]
fn tree_radix_changes_every_workgroup_sum() {
    // SE-ResNet-50 at 64x64, batch 2: SE gates in conv3's tiles (layer 1) and in split-K
    // reductions (the rest), squeezing reductions, se_fc; every module validated by naga.
    let g = zoo_optimized("se-resnet50");
    let modules = |limits: &Limits| -> Vec<String> {
        let p = compile(&g, 2, limits).unwrap_or_else(|e| panic!("{e}"));
        p.modules.iter().map(|m| m.source.clone()).collect()
    };
    let count = |mods: &[String], s: &str| mods.iter().filter(|m| m.contains(s)).count();
    let halving = "for (var w = ";
    let halved = modules(&Limits {
        tree_radix: 2,
        ..Limits::default()
    });
    let trees = count(&halved, halving);
    assert!(trees > 0 && count(&halved, "(tree_sum, radix") == 0);
    for kind in [
        "fn se_tile(",
        "splitk_squeeze's `gate`",
        "splitk_squeeze's `squeeze`",
    ] {
        assert!(count(&halved, kind) > 0, "no {kind}");
    }
    let wide = modules(&Limits::default());
    assert_eq!(count(&wide, halving), 0);
    assert_eq!(count(&wide, "(tree_sum, radix 16"), trees);
}
