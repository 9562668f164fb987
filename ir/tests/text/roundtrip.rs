//! Texts → graph → text: canonical texts print back unchanged, loose hand-written texts print
//! in canonical form, declared types agree with shape inference.

use std::collections::BTreeSet;
use std::sync::Arc;

use expect_test::expect;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use excite_ir::Tensor;
use excite_ir::text::{self, WeightStore};

use super::fixtures::{ALL, MBV3_BLOCK, SE_BLOCK};
use super::{parse_ph, structure};

#[test]
fn canonical_texts_print_back_unchanged() {
    let mut checked = 0;
    for (name, src) in ALL {
        let g = parse_ph(src);
        assert_eq!(text::print(&g), src, "fixture {name}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn declared_types_agree_with_inference() {
    for (name, src) in ALL {
        let mut g = parse_ph(src);
        if let Err(e) = text::verify_declared(&mut g) {
            panic!("fixture {name}: {e}");
        }
        // After inference every output is typed; that text is canonical too.
        let typed = text::print(&g);
        assert_eq!(text::print(&parse_ph(&typed)), typed, "fixture {name}");
        if name == "mbv3_block" {
            assert_ne!(typed, MBV3_BLOCK);
            assert!(typed.contains("{min=0.0, max=inf} -> z.act: f32[N,8,1,1]\n"));
        } else {
            assert_eq!(typed, src, "fixture {name}");
        }
    }
}

#[test]
fn fixtures_use_every_op() {
    let used: BTreeSet<&str> = ALL
        .iter()
        .flat_map(|(_, src)| {
            let g = parse_ph(src);
            g.node_ids()
                .map(|n| g.node(n).op.name())
                .collect::<Vec<_>>()
        })
        .collect();
    let all = [
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Clip",
        "Concat",
        "Conv",
        "Div",
        "Dropout",
        "Expand",
        "Flatten",
        "Gemm",
        "GlobalAveragePool",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "MatMul",
        "MaxPool",
        "Mul",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Sigmoid",
        "Silu",
        "Softmax",
        "Sub",
    ];
    assert_eq!(used, BTreeSet::from(all));
}

#[test]
fn weights_come_from_the_store() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut store = WeightStore::new();
    for (name, shape) in [
        ("fc1.w", vec![4, 64, 1, 1]),
        ("fc1.b", vec![4]),
        ("fc2.w", vec![64, 4, 1, 1]),
        ("fc2.b", vec![64]),
    ] {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let t = Tensor::new(shape, data).expect("sizes agree");
        store.insert(name, Arc::new(t));
    }
    // An extra tensor the text does not declare is ignored.
    store.insert("unused", Arc::new(Tensor::scalar(3.0)));
    let g = text::parse(SE_BLOCK, &store).expect("parses");
    let mut compared = 0;
    for (v, t) in g.weights() {
        let held = store
            .get(&g.value(v).name)
            .expect("declared weights are in the store");
        assert!(Arc::ptr_eq(t, held), "the graph shares the store's tensor");
        compared += 1;
    }
    assert_eq!(compared, 4);
    assert_eq!(WeightStore::from_graph(&g).len(), 4);
    assert_eq!(g.param_count(), 4 * 64 + 4 + 64 * 4 + 64);
}

#[test]
fn loose_text_prints_canonically() {
    // Comments, defaults left out, attributes in any order, forward references, several
    // outputs on one line, values defined after their use, no types on node outputs.
    let src = r#"
# A hand-written model.
graph   tiny{
  output y, "z"   # outputs may come first
  node b = Relu(a)   -> y
  node mean=ReduceMean(x){keepdims=0,axes=[1]}->a
  input x :f32[ N , 3 ]
  node c = Clip(y) {max=6} -> z
  node g = Gemm(x, w) {transB=1} -> gm
  node p = MaxPool(x4) {kernel_shape=[2,2]} -> pooled
  node k = Conv(x4, w4) {group=2, pads=[1,1,1,1]} -> conv
  node s = Softmax(gm) {axis=1} -> sm
  node h = HardSigmoid(sm) -> hs
  node bn = BatchNormalization(x4, w2, w2, w2, w2) -> bnorm
  node f = Flatten(x4) -> flat
  node r = Reshape(x4) {shape=[-1]} -> rs
  weight w: f32[4,3]
  weight w2: f32[2]
  weight w4: f32[2,1,3,3]
  input x4: f32[1,2,5,5]
}
"#;
    let g = parse_ph(src);
    expect![[r#"
        graph tiny {
          input x: f32[N,3]
          input x4: f32[1,2,5,5]
          weight w: f32[4,3]
          weight w4: f32[2,1,3,3]
          weight w2: f32[2]
          node mean = ReduceMean(x) {axes=[1], keepdims=false} -> a
          node b = Relu(a) -> y
          node c = Clip(y) {min=-inf, max=6.0} -> z
          node g = Gemm(x, w) {alpha=1.0, beta=1.0, transA=false, transB=true} -> gm
          node p = MaxPool(x4) {kernel_shape=[2,2], strides=[1,1], pads=[0,0,0,0], dilations=[1,1], ceil_mode=false, count_include_pad=false} -> pooled
          node k = Conv(x4, w4) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=2} -> conv
          node s = Softmax(gm) {axis=1} -> sm
          node h = HardSigmoid(sm) {alpha=0.2, beta=0.5} -> hs
          node bn = BatchNormalization(x4, w2, w2, w2, w2) {epsilon=1e-5} -> bnorm
          node f = Flatten(x4) {axis=1} -> flat
          node r = Reshape(x4) {shape=[-1], allowzero=false} -> rs
          output y
          output z
        }
    "#]]
    .assert_eq(&text::print(&g));
}

#[test]
fn inline_weights_round_trip_bit_exactly() {
    let src = "graph w {
  input x: f32[2,4]
  weight k: f32[2,4] = [1.0, -0.0, 1e-45, 3.4028235e38, -inf, inf, 0.1, -1.1754942e-38]
  node m = Mul(x, k) -> y: f32[2,4]
  output y
}
";
    let g = text::parse(src, &WeightStore::new()).expect("parses without a store");
    assert_eq!(text::print_inline_weights(&g), src);
    let expected: [f32; 8] = [
        1.0,
        -0.0,
        f32::from_bits(1),
        f32::MAX,
        f32::NEG_INFINITY,
        f32::INFINITY,
        0.1,
        -f32::from_bits(0x007f_ffff),
    ];
    let (_, t) = g.weights().next().expect("one weight");
    let got: Vec<u32> = t.data().iter().map(|x| x.to_bits()).collect();
    let want: Vec<u32> = expected.iter().map(|x| x.to_bits()).collect();
    assert_eq!(got, want);
    // Without inline data the text names the weight only.
    assert!(text::print(&g).contains("  weight k: f32[2,4]\n"));
    // NaN survives as a NaN (its payload does not).
    let nan = text::parse(
        "graph n { weight k: f32[1] = [nan] node c = Clip(k) {min=nan} -> y output y }",
        &WeightStore::new(),
    )
    .expect("parses");
    assert!(nan.weights().all(|(_, t)| t.data()[0].is_nan()));
    assert!(text::print(&nan).contains("{min=nan, max=inf}"));
    assert_eq!(structure(&nan).matches("Clip").count(), 1);
}

#[test]
fn the_examples_in_docs_ir_md_parse_verify_and_are_canonical() {
    let doc = include_str!("../../../docs/ir.md");
    let mut blocks = 0;
    for block in doc.split("```seir\n").skip(1) {
        let src = block.split("```").next().unwrap_or_default();
        let mut g = parse_ph(src);
        if let Err(e) = text::verify_declared(&mut g) {
            panic!("{e}\n--- in ---\n{src}");
        }
        // The printer drops comments; otherwise the example is canonical.
        let uncommented: String = src
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(text::print(&g), uncommented);
        blocks += 1;
    }
    assert_eq!(blocks, 1);
}
