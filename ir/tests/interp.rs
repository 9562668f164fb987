//! Whole-graph tests of the reference interpreter: binding inputs, evaluation order, values
//! read several times, outputs that are also read by later nodes, any batch size, and errors.

use std::collections::HashMap;
use std::sync::Arc;

use excite_ir::interp::run;
use excite_ir::op::Conv;
use excite_ir::{Dim, Graph, IrError, Op, Shape, Tensor, TensorType, verify};

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), data.to_vec()).expect("test tensor")
}

/// `x: [N,1,3,3]` -> Conv(all-ones 3x3, pad 1, bias -20) -> Relu -> GlobalAveragePool, with
/// the conv output `c` also a graph output, and `s = Add(p, p)` reading one value twice.
fn small_net() -> Graph {
    let mut g = Graph::new("small");
    let x = g
        .add_input(
            "x",
            TensorType::f32(Shape(vec![
                Dim::Batch,
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Fixed(3),
            ])),
        )
        .expect("input");
    let w = g
        .add_weight("w", Arc::new(t(&[1, 1, 3, 3], &[1.0; 9])))
        .expect("w");
    let b = g.add_weight("b", Arc::new(t(&[1], &[-20.0]))).expect("b");
    let conv = Conv {
        pads: [1, 1, 1, 1],
        ..Conv::default()
    };
    let c = g
        .add_node("conv", Op::Conv(conv), &[x, w, b], &["c"])
        .expect("conv");
    let c = g.node(c).outputs[0];
    let r = g.add_node("relu", Op::Relu, &[c], &["r"]).expect("relu");
    let r = g.node(r).outputs[0];
    let p = g
        .add_node("gap", Op::GlobalAveragePool, &[r], &["p"])
        .expect("gap");
    let p = g.node(p).outputs[0];
    let s = g.add_node("twice", Op::Add, &[p, p], &["s"]).expect("add");
    let s = g.node(s).outputs[0];
    g.add_output(s).expect("out s");
    g.add_output(c).expect("out c");
    verify::verify(&mut g).expect("verifies");
    g
}

/// The 3x3 image 1..9 times `k`.
fn image(k: f32) -> Vec<f32> {
    (1..=9).map(|v| v as f32 * k).collect()
}

#[test]
fn runs_a_small_network_at_any_batch() {
    let g = small_net();
    // Window sums of 1..9 with padding 1 (corners 12, 16, 24, 28; edges 21, 27, 33, 39;
    // centre 45), minus 20. After Relu: 0,1,0,7,25,13,4,19,8, mean 77/9; doubled 154/9.
    let sums = [12., 21., 16., 27., 45., 33., 24., 39., 28.];
    let mut cases = 0;
    for batch in [1, 3] {
        // Sample i is the image scaled by i + 1; check sample 0 fully and the shapes of all.
        let data: Vec<f32> = (0..batch).flat_map(|i| image(i as f32 + 1.0)).collect();
        let inputs = HashMap::from([("x".to_string(), t(&[batch, 1, 3, 3], &data))]);
        let out = run(&g, &inputs).expect("runs");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "s");
        assert_eq!(out[1].0, "c");
        assert_eq!(out[0].1.shape(), [batch, 1, 1, 1]);
        assert_eq!(out[1].1.shape(), [batch, 1, 3, 3]);
        assert_eq!(&out[1].1.data()[..9], &sums.map(|s| s - 20.0));
        assert!(
            (out[0].1.data()[0] - 154.0 / 9.0).abs() < 1e-5,
            "{:?}",
            out[0].1.data()
        );
        if batch == 3 {
            // Sample 2 is 3x the image: window sums 36..135 minus 20 are all positive, so the
            // mean is 3 * (245 / 9) - 20 (the sums total 245) and the doubled mean 1110 / 9.
            assert!(
                (out[0].1.data()[2] - 1110.0 / 9.0).abs() < 1e-4,
                "{:?}",
                out[0].1.data()
            );
        }
        cases += 1;
    }
    assert_eq!(cases, 2);
}

#[test]
fn inputs_and_weights_can_be_outputs() {
    let mut g = Graph::new("pass");
    let x = g
        .add_input("x", TensorType::f32(Shape::fixed(&[2])))
        .expect("x");
    let w = g.add_weight("w", Arc::new(t(&[2], &[3., 4.]))).expect("w");
    let y = g.add_node("mul", Op::Mul, &[x, w], &["y"]).expect("mul");
    let y = g.node(y).outputs[0];
    // A dead node (read by nobody, not an output) runs without disturbing anything.
    g.add_node("dead", Op::Relu, &[y], &["unused"])
        .expect("dead");
    for v in [y, x, w] {
        g.add_output(v).expect("output");
    }
    verify::verify(&mut g).expect("verifies");
    let inputs = HashMap::from([("x".to_string(), t(&[2], &[1., 2.]))]);
    let out = run(&g, &inputs).expect("runs");
    let names: Vec<_> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["y", "x", "w"]);
    assert_eq!(out[0].1.data(), [3., 8.]);
    assert_eq!(out[1].1.data(), [1., 2.]);
    assert_eq!(out[2].1.data(), [3., 4.]);
}

fn input_error(inputs: HashMap<String, Tensor>) -> IrError {
    match run(&small_net(), &inputs) {
        Err(e) => e,
        Ok(out) => panic!("expected an input error, got {} outputs", out.len()),
    }
}

#[test]
fn bad_inputs_are_input_errors_naming_the_input() {
    let good = || ("x".to_string(), t(&[1, 1, 3, 3], &image(1.0)));
    // Missing.
    let e = input_error(HashMap::new());
    assert!(
        matches!(&e, IrError::Input { input, .. } if input == "x"),
        "{e}"
    );
    // Extra.
    let e = input_error(HashMap::from([good(), ("y".to_string(), t(&[1], &[1.]))]));
    assert!(
        matches!(&e, IrError::Input { input, .. } if input == "y"),
        "{e}"
    );
    // Wrong shape.
    let e = input_error(HashMap::from([(
        "x".to_string(),
        t(&[1, 1, 3, 4], &[1.0; 12]),
    )]));
    expect_test::expect!["input `x`: expected shape [N,1,3,3], got [1, 1, 3, 4]"]
        .assert_eq(&e.to_string());
}

#[test]
fn an_inconsistent_unverified_graph_fails_at_its_node() {
    // Nobody verified this graph: the Add of [2] and [3] must fail as a node error, not panic.
    let mut g = Graph::new("bad");
    let x = g
        .add_input("x", TensorType::f32(Shape::fixed(&[2])))
        .expect("x");
    let w = g
        .add_weight("w", Arc::new(t(&[3], &[1., 2., 3.])))
        .expect("w");
    let y = g.add_node("plus", Op::Add, &[x, w], &["y"]).expect("add");
    let y = g.node(y).outputs[0];
    g.add_output(y).expect("output");
    let inputs = HashMap::from([("x".to_string(), t(&[2], &[1., 2.]))]);
    let e = run(&g, &inputs).map(|o| o.len());
    expect_test::expect![[r#"
        Err(
            Node {
                node: "plus",
                op: "Add",
                msg: "shapes [2] and [3] do not broadcast",
            },
        )
    "#]]
    .assert_debug_eq(&e);
}
