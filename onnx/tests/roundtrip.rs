//! Export then import: every IR op survives with its attributes, node and value names, the
//! symbolic batch, and bit-exact weights.

mod common;

use std::sync::Arc;

use excite_ir::op::{Conv, Gemm, Pool};
use excite_ir::{Dim, Graph, Op, Shape, Tensor, TensorType};
use excite_onnx::{ImportOptions, export, import};

fn weight(g: &mut Graph, name: &str, shape: &[usize], seed: u32) -> excite_ir::ValueId {
    let n = shape.iter().product();
    let t = Tensor::new(shape.to_vec(), common::data(n, seed)).expect("sized");
    g.add_weight(name, Arc::new(t)).expect("new weight")
}

/// A graph using every op the exporter writes 1:1, with a symbolic batch.
fn every_op() -> Graph {
    let mut g = Graph::new("every_op");
    let x = g
        .add_input(
            "x",
            TensorType::f32(Shape(vec![
                Dim::Batch,
                Dim::Fixed(4),
                Dim::Fixed(6),
                Dim::Fixed(6),
            ])),
        )
        .expect("input");
    let w = weight(&mut g, "conv.w", &[4, 2, 3, 3], 1);
    let b = weight(&mut g, "conv.b", &[4], 2);
    let bn: Vec<_> = (0..4)
        .map(|i| weight(&mut g, &format!("bn.{i}"), &[4], 10 + i))
        .collect();
    let fc_w = weight(&mut g, "fc.w", &[4, 3], 20);
    let fc_b = weight(&mut g, "fc.b", &[3], 21);
    let mm_w = weight(&mut g, "mm.w", &[3, 3], 22);
    let pool = Pool {
        kernel: [2, 2],
        strides: [2, 2],
        pads: [0, 1, 1, 0],
        dilations: [1, 1],
        ceil_mode: true,
        count_include_pad: false,
    };
    let mut add = |name: &str, op: Op, ins: &[excite_ir::ValueId]| {
        let id = g
            .add_node(name, op, ins, &[&format!("{name}.out")])
            .expect("node");
        g.node(id).outputs[0]
    };
    let c = add(
        "conv",
        Op::Conv(Conv {
            strides: [1, 1],
            pads: [1, 0, 1, 2],
            dilations: [1, 1],
            group: 2,
        }),
        &[x, w, b],
    );
    let n = add(
        "bn",
        Op::BatchNorm { epsilon: 1e-3 },
        &[c, bn[0], bn[1], bn[2], bn[3]],
    );
    let r = add("relu", Op::Relu, &[n]);
    let hs = add("hswish", Op::HardSwish, &[r]);
    let hsig = add(
        "hsig",
        Op::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        &[hs],
    );
    let cl = add("clip", Op::Clip { min: 0.0, max: 6.0 }, &[hsig]);
    let cl2 = add(
        "clip_lo",
        Op::Clip {
            min: -1.0,
            max: f32::INFINITY,
        },
        &[cl],
    );
    let s = add("sig", Op::Sigmoid, &[cl2]);
    let m = add("mul", Op::Mul, &[s, r]);
    let d = add("div", Op::Div, &[m, hs]);
    let sub = add("sub", Op::Sub, &[d, r]);
    let mp = add("maxpool", Op::MaxPool(pool.clone()), &[sub]);
    let ap = add(
        "avgpool",
        Op::AveragePool(Pool {
            count_include_pad: true,
            ..pool
        }),
        &[sub],
    );
    let a = add("add", Op::Add, &[mp, ap]);
    let cat = add("concat", Op::Concat { axis: 1 }, &[a, a]);
    let gap = add("gap", Op::GlobalAveragePool, &[cat]);
    let rm = add(
        "mean",
        Op::ReduceMean {
            axes: vec![2, 3],
            keepdims: false,
        },
        &[cat],
    );
    let rs = add(
        "reshape",
        Op::Reshape {
            shape: vec![0, -1, 1, 1],
            allowzero: false,
        },
        &[rm],
    );
    let ex = add(
        "expand",
        Op::Expand {
            shape: vec![1, 8, 1, 1],
        },
        &[gap],
    );
    let a2 = add("add2", Op::Add, &[rs, ex]);
    let fl = add("flatten", Op::Flatten { axis: 1 }, &[a2]);
    let id = add("ident", Op::Identity, &[fl]);
    let dr = add("dropout", Op::Dropout, &[id]);
    let rs2 = add(
        "reshape2",
        Op::Reshape {
            shape: vec![0, 2, 4],
            allowzero: false,
        },
        &[dr],
    );
    let pick = add(
        "mean2",
        Op::ReduceMean {
            axes: vec![1],
            keepdims: false,
        },
        &[rs2],
    );
    let fc = add(
        "fc",
        Op::Gemm(Gemm {
            alpha: 0.5,
            beta: 2.0,
            trans_a: false,
            trans_b: false,
        }),
        &[pick, fc_w, fc_b],
    );
    let mm = add("matmul", Op::MatMul, &[fc, mm_w]);
    let sm = add("softmax", Op::Softmax { axis: 1 }, &[mm]);
    g.add_output(sm).expect("output");
    excite_ir::verify::verify(&mut g).expect("the test graph is valid");
    g
}

/// Node name, op and input/output names, in order.
fn structure(g: &Graph) -> Vec<String> {
    common::summary(g).lines().map(String::from).collect()
}

#[test]
fn export_import_keeps_structure_and_weights() {
    let g = every_op();
    let bytes = export(&g).expect("exports");
    let back = import(&bytes, &ImportOptions::default()).expect("re-imports");
    let (a, b) = (structure(&g), structure(&back));
    assert_eq!(a.len(), 28);
    assert_eq!(a, b);
    assert_eq!(back.ty_of(back.inputs()[0]), g.ty_of(g.inputs()[0]));
    let mut compared = 0;
    for (v, t) in g.weights() {
        let name = &g.value(v).name;
        let w = back
            .value(back.find_value(name).expect("weight kept"))
            .weight()
            .expect("a weight");
        assert_eq!(w.shape(), t.shape(), "{name}");
        let bits = |t: &Tensor| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(w), bits(t), "{name}");
        compared += 1;
    }
    assert_eq!(compared, 9);
    assert_eq!(
        back.weights().count(),
        compared,
        "no extra weights (shapes and bounds fold)"
    );
    // Exporting the re-imported graph gives the same bytes: the writer is deterministic.
    assert_eq!(export(&back).expect("exports"), bytes);
}

#[test]
fn silu_is_written_as_sigmoid_times_x() {
    let mut g = Graph::new("silu");
    let x = g
        .add_input("x", TensorType::f32(Shape::fixed(&[1, 3])))
        .expect("input");
    let id = g.add_node("act", Op::Silu, &[x], &["y"]).expect("node");
    g.add_output(g.node(id).outputs[0]).expect("output");
    excite_ir::verify::verify(&mut g).expect("valid");
    let back = import(&export(&g).expect("exports"), &ImportOptions::default()).expect("imports");
    expect_test::expect![[r#"
        act/sigmoid: Sigmoid(x) -> y_sigmoid : f32[1,3]
        act: Mul(x,y_sigmoid) -> y : f32[1,3]
    "#]]
    .assert_eq(&common::summary(&back));
}
