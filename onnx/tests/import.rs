//! Import of small valid models built with the prost types: the op mapping, attribute
//! defaults, folding of shape subgraphs, the symbolic batch, and weights kept bit-exact.

mod common;

use common::*;
use excite_ir::{Dim, Op, Shape};
use excite_onnx::{ImportOptions, import};
use expect_test::{Expect, expect};

fn check(bytes: Vec<u8>, want: Expect) {
    let g = import(&bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("import: {e}"));
    want.assert_eq(&summary(&g));
}

#[test]
fn se_block_with_symbolic_batch() {
    let (c, r) = (8usize, 2usize);
    let m = M::new(17)
        .input("x", &[-1, c as i64, 5, 5])
        .output("y")
        .init(f32_raw("w1", &[r as i64, c as i64, 1, 1], &data(r * c, 1)))
        .init(f32_raw("b1", &[r as i64], &data(r, 2)))
        .init(f32_raw("w2", &[c as i64, r as i64, 1, 1], &data(r * c, 3)))
        .init(f32_typed("b2", &[c as i64], &data(c, 4)))
        .node("GlobalAveragePool", "squeeze", &["x"], &["s"], vec![])
        .node(
            "Conv",
            "fc1",
            &["s", "w1", "b1"],
            &["z"],
            vec![a_ints("kernel_shape", &[1, 1])],
        )
        .node("Relu", "", &["z"], &["za"], vec![])
        .node("Conv", "fc2", &["za", "w2", "b2"], &["g"], vec![])
        .node("Sigmoid", "", &["g"], &["ga"], vec![])
        .node("Mul", "", &["x", "ga"], &["y"], vec![]);
    let bytes = m.bytes();
    let g = import(&bytes, &ImportOptions::default()).expect("imports");
    expect![[r#"
        squeeze: GlobalAveragePool(x) -> s : f32[N,8,1,1]
        fc1: Conv(Conv { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 })(s,w1,b1) -> z : f32[N,2,1,1]
        Relu_2: Relu(z) -> za : f32[N,2,1,1]
        fc2: Conv(Conv { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 })(za,w2,b2) -> g : f32[N,8,1,1]
        Sigmoid_4: Sigmoid(g) -> ga : f32[N,8,1,1]
        Mul_5: Mul(x,ga) -> y : f32[N,8,5,5]
    "#]]
    .assert_eq(&summary(&g));
    // Weights arrive bit-exact, from raw_data and from float_data alike.
    let w = |name: &str| {
        let v = g.find_value(name).expect("weight exists");
        g.value(v).weight().expect("is a weight").data().to_vec()
    };
    assert_eq!(bits(&w("w1")), bits(&data(r * c, 1)));
    assert_eq!(bits(&w("b2")), bits(&data(c, 4)));
    assert_eq!(g.param_count(), 2 * r * c + r + c);
    assert_eq!(g.inputs().len(), 1);
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The exporter pattern for `x.view(x.size(0), -1)`.
fn flatten_by_shape(batch: i64) -> Vec<u8> {
    M::new(13)
        .input("x", &[batch, 4, 2, 2])
        .output("y")
        .init(i64_init("zero", &[], &[0]))
        .init(i64_init("minus1", &[1], &[-1]))
        .node("Shape", "shape", &["x"], &["s"], vec![])
        .node(
            "Gather",
            "gather",
            &["s", "zero"],
            &["n"],
            vec![a_int("axis", 0)],
        )
        .node(
            "Constant",
            "axes",
            &[],
            &["ax"],
            vec![a_tensor("value", i64_init("", &[1], &[0]))],
        )
        .node("Unsqueeze", "unsq", &["n", "ax"], &["n1"], vec![])
        .node(
            "Concat",
            "cat",
            &["n1", "minus1"],
            &["t"],
            vec![a_int("axis", 0)],
        )
        .node("Reshape", "flat", &["x", "t"], &["y"], vec![])
        .bytes()
}

#[test]
fn shape_subgraph_folds_with_symbolic_batch() {
    check(
        flatten_by_shape(-1),
        expect![[r#"
            flat: Reshape { shape: [0, -1], allowzero: false }(x) -> y : f32[N,16]
        "#]],
    );
}

#[test]
fn shape_subgraph_folds_with_fixed_batch() {
    check(
        flatten_by_shape(3),
        expect![[r#"
            flat: Reshape { shape: [3, -1], allowzero: false }(x) -> y : f32[3,16]
        "#]],
    );
}

#[test]
fn reduce_mean_axes_as_opset18_input_and_as_attribute() {
    let m18 = M::new(18)
        .input("x", &[1, 3, 4, 4])
        .output("y")
        .init(i64_init("axes", &[2], &[-1, 2]))
        .node("ReduceMean", "mean", &["x", "axes"], &["y"], vec![]);
    check(
        m18.bytes(),
        expect![[r#"
            mean: ReduceMean { axes: [2, 3], keepdims: true }(x) -> y : f32[1,3,1,1]
        "#]],
    );
    let m13 = M::new(13).input("x", &[1, 3, 4, 4]).output("y").node(
        "ReduceMean",
        "mean",
        &["x"],
        &["y"],
        vec![a_ints("axes", &[-2, -1]), a_int("keepdims", 0)],
    );
    check(
        m13.bytes(),
        expect![[r#"
            mean: ReduceMean { axes: [2, 3], keepdims: false }(x) -> y : f32[1,3]
        "#]],
    );
    let noop = M::new(18).input("x", &[1, 3]).output("y").node(
        "ReduceMean",
        "mean",
        &["x"],
        &["y"],
        vec![a_int("noop_with_empty_axes", 1)],
    );
    check(
        noop.bytes(),
        expect![[r#"
            mean: Identity(x) -> y : f32[1,3]
        "#]],
    );
}

#[test]
fn clip_bounds_from_constants() {
    let m = M::new(13)
        .input("x", &[1, 4])
        .output("y")
        .init(f32_raw("six", &[], &[6.0]))
        .node(
            "Constant",
            "zero",
            &[],
            &["lo"],
            vec![a_float("value_float", 0.0)],
        )
        .node("Clip", "relu6", &["x", "lo", "six"], &["y"], vec![]);
    check(
        m.bytes(),
        expect![[r#"
            relu6: Clip { min: 0.0, max: 6.0 }(x) -> y : f32[1,4]
        "#]],
    );
    let only_max = M::new(13)
        .input("x", &[1, 4])
        .output("y")
        .init(f32_raw("six", &[], &[6.0]))
        .node("Clip", "c", &["x", "", "six"], &["y"], vec![]);
    check(
        only_max.bytes(),
        expect![[r#"
            c: Clip { min: -inf, max: 6.0 }(x) -> y : f32[1,4]
        "#]],
    );
}

#[test]
fn auto_pad_becomes_explicit_pads() {
    // 8x8 input, 3x3 kernel, stride 2: out = ceil(8/2) = 4, total pad = 3*2 + 3 - 8 = 1,
    // which SAME_UPPER puts at the end and SAME_LOWER at the beginning.
    let conv = |mode: &str| {
        M::new(17)
            .input("x", &[1, 2, 8, 8])
            .output("y")
            .init(f32_raw("w", &[2, 2, 3, 3], &data(36, 0)))
            .node(
                "Conv",
                "c",
                &["x", "w"],
                &["y"],
                vec![a_str("auto_pad", mode), a_ints("strides", &[2, 2])],
            )
            .bytes()
    };
    let pads = |mode: &str| {
        let g = import(&conv(mode), &ImportOptions::default()).expect("imports");
        let id = g.find_node("c").expect("node c");
        let Op::Conv(c) = &g.node(id).op else {
            panic!("not a conv")
        };
        let out = g.ty_of(g.node(id).outputs[0]).expect("typed").shape.clone();
        (c.pads, out)
    };
    assert_eq!(
        pads("SAME_UPPER"),
        ([0, 0, 1, 1], Shape::fixed(&[1, 2, 4, 4]))
    );
    assert_eq!(
        pads("SAME_LOWER"),
        ([1, 1, 0, 0], Shape::fixed(&[1, 2, 4, 4]))
    );
    assert_eq!(pads("VALID"), ([0, 0, 0, 0], Shape::fixed(&[1, 2, 3, 3])));
}

#[test]
fn pools_gemm_flatten_softmax_dropout() {
    let m = M::new(12)
        .input("x", &[-1, 2, 7, 7])
        .output("p")
        .init(f32_raw("w", &[3, 18], &data(54, 5)))
        .init(f32_raw("b", &[3], &data(3, 6)))
        .node(
            "MaxPool",
            "mp",
            &["x"],
            &["a"],
            vec![
                a_ints("kernel_shape", &[3, 3]),
                a_ints("strides", &[2, 2]),
                a_int("ceil_mode", 1),
            ],
        )
        .node(
            "AveragePool",
            "ap",
            &["a"],
            &["b0"],
            vec![
                a_ints("kernel_shape", &[2, 2]),
                a_ints("pads", &[1, 1, 0, 0]),
                a_int("count_include_pad", 1),
            ],
        )
        .node("Dropout", "drop", &["b0"], &["d", "unused_mask"], vec![])
        .node("Flatten", "flat", &["d"], &["f"], vec![])
        .node(
            "Gemm",
            "fc",
            &["f", "w", "b"],
            &["l"],
            vec![a_int("transB", 1)],
        )
        .node("Softmax", "sm", &["l"], &["p"], vec![a_int("axis", 1)]);
    check(
        m.bytes(),
        expect![[r#"
            mp: MaxPool(Pool { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: true, count_include_pad: false })(x) -> a : f32[N,2,3,3]
            ap: AveragePool(Pool { kernel: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0], dilations: [1, 1], ceil_mode: false, count_include_pad: true })(a) -> b0 : f32[N,2,3,3]
            drop: Dropout(b0) -> d : f32[N,2,3,3]
            flat: Flatten { axis: 1 }(d) -> f : f32[N,18]
            fc: Gemm(Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true })(f,w,b) -> l : f32[N,3]
            sm: Softmax { axis: 1 }(l) -> p : f32[N,3]
        "#]],
    );
}

#[test]
fn initializers_listed_as_inputs_are_weights_and_nodes_may_be_unsorted() {
    let m = M::new(11)
        .input("x", &[1, 4])
        .input("bias", &[4])
        .output("y")
        .init(f32_raw("bias", &[4], &data(4, 7)))
        // Listed consumer-first; the importer orders them.
        .node("Relu", "r", &["t"], &["y"], vec![])
        .node("Add", "add", &["x", "bias"], &["t"], vec![])
        .node(
            "HardSigmoid",
            "hs",
            &["x"],
            &["unused"],
            vec![a_float("alpha", 1.0 / 6.0)],
        );
    let g = import(&m.bytes(), &ImportOptions::default()).expect("imports");
    assert_eq!(g.inputs().len(), 1, "bias is a weight, not an input");
    expect![[r#"
        add: Add(x,bias) -> t : f32[1,4]
        r: Relu(t) -> y : f32[1,4]
        hs: HardSigmoid { alpha: 0.16666667, beta: 0.5 }(x) -> unused : f32[1,4]
    "#]]
    .assert_eq(&summary(&g));
}

#[test]
fn node_names_are_made_unique_deterministically() {
    let m = M::new(17)
        .input("x", &[1, 4])
        .output("c")
        .node("Relu", "act", &["x"], &["a"], vec![])
        .node("Relu", "act", &["a"], &["b"], vec![])
        .node("Relu", "", &["b"], &["c"], vec![]);
    check(
        m.bytes(),
        expect![[r#"
            act: Relu(x) -> a : f32[1,4]
            act_1: Relu(a) -> b : f32[1,4]
            Relu_2: Relu(b) -> c : f32[1,4]
        "#]],
    );
}

#[test]
fn unsqueeze_squeeze_expand_on_run_time_values() {
    // x: [N,4] -> [N,4,1,1] -> expand to [N,4,3,3] using the batch from Shape(x).
    let m = M::new(13)
        .input("x", &[-1, 4])
        .output("y")
        .output("z")
        .init(i64_init("ax", &[2], &[2, -1]))
        .init(i64_init("hw", &[3], &[4, 3, 3]))
        .init(i64_init("i0", &[1], &[0]))
        .node("Unsqueeze", "u", &["x", "ax"], &["x4"], vec![])
        .node("Shape", "sh", &["x"], &["s"], vec![])
        .node("Gather", "g", &["s", "i0"], &["n"], vec![])
        .node(
            "Concat",
            "cat",
            &["n", "hw"],
            &["t"],
            vec![a_int("axis", 0)],
        )
        .node("Expand", "e", &["x4", "t"], &["y"], vec![])
        .node("Squeeze", "sq", &["x4", "ax"], &["z"], vec![]);
    check(
        m.bytes(),
        expect![[r#"
            u: Reshape { shape: [0, 4, 1, 1], allowzero: false }(x) -> x4 : f32[N,4,1,1]
            e: Expand { shape: [1, 4, 3, 3] }(x4) -> y : f32[N,4,3,3]
            sq: Reshape { shape: [0, 4], allowzero: false }(x4) -> z : f32[N,4]
        "#]],
    );
}

#[test]
fn constant_folding_of_range_cast_arithmetic_and_constant_of_shape() {
    // target = Cast(Range(0, 2, 1) * 0 + [1, 6]) -> [1, 6]; bias = ConstantOfShape([1, 6]) = 0.5
    let half = f32_raw("", &[1], &[0.5]);
    let m = M::new(17)
        .input("x", &[2, 3])
        .output("y")
        .init(i64_init("s", &[], &[0]))
        .init(i64_init("l", &[], &[2]))
        .init(i64_init("d", &[], &[1]))
        .init(i64_init("zero", &[], &[0]))
        .init(f32_raw("dims", &[2], &[1.0, 6.0]))
        .node("Range", "range", &["s", "l", "d"], &["r"], vec![])
        .node("Mul", "times0", &["r", "zero"], &["r0"], vec![])
        .node("Cast", "tofloat", &["r0"], &["r0f"], vec![a_int("to", 1)])
        .node("Add", "plus", &["r0f", "dims"], &["tf"], vec![])
        .node("Cast", "toint", &["tf"], &["t"], vec![a_int("to", 7)])
        .node("Reshape", "rs", &["x", "t"], &["xr"], vec![])
        .node(
            "ConstantOfShape",
            "fill",
            &["t"],
            &["bias"],
            vec![a_tensor("value", half)],
        )
        .node("Add", "add", &["xr", "bias"], &["y"], vec![]);
    let g = import(&m.bytes(), &ImportOptions::default()).expect("imports");
    expect![[r#"
        rs: Reshape { shape: [1, 6], allowzero: false }(x) -> xr : f32[1,6]
        add: Add(xr,bias) -> y : f32[1,6]
    "#]]
    .assert_eq(&summary(&g));
    let bias = g
        .value(g.find_value("bias").expect("bias"))
        .weight()
        .expect("weight");
    assert_eq!(bias.shape(), &[1, 6]);
    assert_eq!(bias.data(), &[0.5; 6]);
    assert_eq!(
        g.weights().count(),
        1,
        "only the float constant a run-time op reads becomes a weight"
    );
}

#[test]
fn memory_budget_is_an_option() {
    let m = || {
        M::new(17)
            .input("x", &[1, 64])
            .output("y")
            .init(f32_raw("b", &[64], &data(64, 9)))
            .node("Add", "add", &["x", "b"], &["y"], vec![])
            .bytes()
    };
    assert!(import(&m(), &ImportOptions::default()).is_ok());
    let small = ImportOptions { memory_budget: 200 };
    let e = import(&m(), &small).expect_err("over a 200-byte budget");
    expect!["tensor `b` needs 256 bytes, over the memory budget of 200 bytes"]
        .assert_eq(&e.to_string());
}

#[test]
fn batch_dim_forms() {
    use excite_onnx::proto::ModelProto;
    use excite_onnx::proto::tensor_shape_proto::dimension::Value as D;
    use excite_onnx::proto::type_proto::Value as T;
    use prost::Message;
    // The input's first dim written as each form in turn, then imported.
    let first_dim = |d: D| {
        let bytes = M::new(17)
            .input("x", &[1, 3])
            .output("y")
            .node("Relu", "r", &["x"], &["y"], vec![])
            .bytes();
        let mut m = ModelProto::decode(bytes.as_slice()).expect("decodes");
        let g = m.graph.as_mut().expect("graph");
        let Some(T::TensorType(t)) = g.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
        else {
            panic!("tensor input")
        };
        t.shape.as_mut().expect("shape").dim[0].value = Some(d);
        let g = import(&m.encode_to_vec(), &ImportOptions::default()).map_err(|e| e.to_string())?;
        Ok::<_, String>(g.ty_of(g.inputs()[0]).expect("typed").shape.clone())
    };
    let batch = Ok(Shape(vec![Dim::Batch, Dim::Fixed(3)]));
    assert_eq!(first_dim(D::DimParam("N".into())), batch);
    assert_eq!(first_dim(D::DimParam("batch_size".into())), batch);
    assert_eq!(
        first_dim(D::DimValue(-1)),
        batch,
        "-1 as written by some tools"
    );
    assert_eq!(
        first_dim(D::DimValue(0)),
        Ok(Shape::fixed(&[0, 3])),
        "0 is an empty dim"
    );
    assert_eq!(first_dim(D::DimValue(5)), Ok(Shape::fixed(&[5, 3])));
    assert_eq!(
        first_dim(D::DimValue(-2)),
        Err("graph input/output `x`: dimension 0 is -2".to_string())
    );
}

#[test]
fn inputs_naming_their_batch_differently_share_one_batch() {
    use std::collections::HashMap;

    use excite_ir::{Tensor, verify};
    use excite_onnx::proto::ModelProto;
    use excite_onnx::proto::tensor_shape_proto::dimension::Value as D;
    use excite_onnx::proto::type_proto::Value as T;
    use prost::Message;
    // y = a + b with the inputs' batch dims named `N` and `M` (as tf2onnx names each input's
    // unknown dims on its own): both import as the one batch `N`.
    let bytes = M::new(17)
        .input("a", &[1, 3])
        .input("b", &[1, 3])
        .output("y")
        .node("Add", "add", &["a", "b"], &["y"], vec![])
        .bytes();
    let mut m = ModelProto::decode(bytes.as_slice()).expect("decodes");
    let g = m.graph.as_mut().expect("graph");
    for (vi, p) in g.input.iter_mut().zip(["N", "M"]) {
        let Some(T::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
            panic!("tensor input")
        };
        t.shape.as_mut().expect("shape").dim[0].value = Some(D::DimParam(p.into()));
    }
    let g = import(&m.encode_to_vec(), &ImportOptions::default()).expect("imports");
    let batch = Shape(vec![Dim::Batch, Dim::Fixed(3)]);
    for &v in g.inputs() {
        assert_eq!(g.ty_of(v).map(|t| &t.shape), Some(&batch));
    }
    // Runs bind it once: equal sizes are the batch, different ones an error naming an input.
    let run = |na: usize, nb: usize| {
        let t = |n: usize| Tensor::new(vec![n, 3], vec![0.5; n * 3]).expect("tensor");
        let inputs = HashMap::from([("a".to_string(), t(na)), ("b".to_string(), t(nb))]);
        verify::bind_inputs(&g, &inputs).map_err(|e| e.to_string())
    };
    assert_eq!(run(2, 2), Ok(2));
    let err = run(2, 3).expect_err("two batch sizes");
    assert!(
        err.contains("differs from") && (err.contains("`a`") || err.contains("`b`")),
        "{err}"
    );
}

#[test]
fn typed_initializer_fields_and_constant_forms() {
    use excite_onnx::proto::TensorProto;
    use excite_onnx::proto::tensor_proto::DataType;
    // A double initializer (converted to f32), an int32 Reshape target, and Constants given
    // as value_ints and value_floats.
    let dbl = TensorProto {
        name: Some("scale".into()),
        dims: vec![3],
        data_type: Some(DataType::Double as i32),
        raw_data: Some(
            [0.5f64, -2.0, 1e-3]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        ..TensorProto::default()
    };
    let target = TensorProto {
        name: Some("target".into()),
        dims: vec![2],
        data_type: Some(DataType::Int32 as i32),
        int32_data: vec![-1, 3],
        ..TensorProto::default()
    };
    let m = M::new(13)
        .input("x", &[2, 3, 1])
        .output("y")
        .init(dbl)
        .init(target)
        .node("Reshape", "rs", &["x", "target"], &["r"], vec![])
        .node("Mul", "mul", &["r", "scale"], &["m"], vec![])
        .node(
            "Constant",
            "c1",
            &[],
            &["shift"],
            vec![a_floats("value_floats", &[1.0, 2.0, 3.0])],
        )
        .node(
            "Constant",
            "c2",
            &[],
            &["shape2"],
            vec![a_ints("value_ints", &[6])],
        )
        .node("Add", "add", &["m", "shift"], &["a"], vec![])
        .node("Reshape", "flat", &["a", "shape2"], &["y"], vec![]);
    let g = import(&m.bytes(), &ImportOptions::default()).expect("imports");
    expect![[r#"
        rs: Reshape { shape: [-1, 3], allowzero: false }(x) -> r : f32[2,3]
        mul: Mul(r,scale) -> m : f32[2,3]
        add: Add(m,shift) -> a : f32[2,3]
        flat: Reshape { shape: [6], allowzero: false }(a) -> y : f32[6]
    "#]]
    .assert_eq(&summary(&g));
    let w = |n: &str| {
        g.value(g.find_value(n).expect("exists"))
            .weight()
            .expect("weight")
            .data()
            .to_vec()
    };
    assert_eq!(w("scale"), vec![0.5, -2.0, 1e-3f64 as f32]);
    assert_eq!(w("shift"), vec![1.0, 2.0, 3.0]);
}

#[test]
fn contradictory_declarations_are_errors() {
    use excite_onnx::proto::tensor_proto::DataType;
    use excite_onnx::proto::type_proto::Value as T;
    let relu = || {
        M::new(17)
            .input("x", &[-1, 4])
            .node("Relu", "r", &["x"], &["y"], vec![])
    };
    let err = |bytes: Vec<u8>| {
        import(&bytes, &ImportOptions::default())
            .expect_err("refused")
            .to_string()
    };
    // Declared output shapes: a symbolic batch agrees, a wrong fixed dim does not.
    let mut ok = relu();
    ok.outputs.push(value_info("y", Some(&[-1, 4])));
    assert!(import(&ok.bytes(), &ImportOptions::default()).is_ok());
    let mut m = relu();
    m.outputs.push(value_info("y", Some(&[-1, 5])));
    expect!["graph input/output `y`: is declared of shape [?,5] but computes [N,4]"]
        .assert_eq(&err(m.bytes()));
    // A declared integer output (excite computes floats).
    let mut m = relu();
    let mut vi = value_info("y", None);
    if let Some(T::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.elem_type = Some(DataType::Int64 as i32);
    }
    m.outputs.push(vi);
    expect![
        "graph input/output `y`: is declared with element type 7, but excite computes float outputs"
    ]
    .assert_eq(&err(m.bytes()));
    // An initializer listed as an input of another shape.
    let m = M::new(11)
        .input("x", &[1, 4])
        .input("bias", &[7])
        .output("y")
        .init(f32_raw("bias", &[4], &data(4, 7)))
        .node("Add", "add", &["x", "bias"], &["y"], vec![]);
    expect!["graph input/output `bias`: is declared as an input of shape [7] but its initializer has shape [4]"]
        .assert_eq(&err(m.bytes()));
    // One attribute given twice.
    let m = M::new(13).input("x", &[1, 4, 2]).output("y").node(
        "Flatten",
        "fl",
        &["x"],
        &["y"],
        vec![a_int("axis", 1), a_int("axis", 2)],
    );
    expect!["node `fl` (Flatten): attribute `axis`: given twice"].assert_eq(&err(m.bytes()));
    // A 200,000-entry attribute is quoted by its first entries and length, not in full.
    let pads: Vec<i64> = (0..200_000).collect();
    let m = M::new(13).input("x", &[1, 2, 4, 4]).output("y").node(
        "MaxPool",
        "mp",
        &["x"],
        &["y"],
        vec![a_ints("kernel_shape", &[2, 2]), a_ints("pads", &pads)],
    );
    expect!["node `mp` (MaxPool): attribute `pads`: must be four non-negative integers (2-D only), got [0, 1, 2, 3, 4, 5, 6, 7, ... (200000 entries)]"]
        .assert_eq(&err(m.bytes()));
}
