//! Bad texts: every error says where (line:col) and what, naming the value, node or weight.

use std::sync::Arc;

use expect_test::{Expect, expect};

use excite_ir::Tensor;
use excite_ir::text::{self, WeightStore};

fn store() -> WeightStore {
    let mut s = WeightStore::new();
    s.insert("w", Arc::new(Tensor::zeros(vec![4, 3])));
    s
}

/// Parses `src` (against a store holding `w: [4,3]`) and shows the error, or `ok`.
fn check(src: &str, expect: Expect) {
    let got = match text::parse(src, &store()) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    expect.assert_eq(&got);
}

#[test]
fn syntax_errors() {
    check("", expect!["1:1: expected `graph`, found end of input"]);
    check("graf g {}", expect!["1:1: expected `graph`, found `graf`"]);
    check(
        "graph g { input x: f32[2] ",
        expect!["1:27: missing `}` at the end of graph `g`"],
    );
    check(
        "graph g {\n  input x f32[2]\n}",
        expect!["2:11: expected `:` and a type after the input name, found `f32`"],
    );
    check(
        "graph g {\n  input x: f64[2]\n}",
        expect!["2:12: expected an element type (f32), found `f64`"],
    );
    check(
        "graph g {\n  input x: f32[2,M]\n}",
        expect!["2:18: expected a dimension (a number or `N`), found `M`"],
    );
    check(
        "graph g {\n  input x: f32[2,-1]\n}",
        expect!["2:18: expected a dimension (a number or `N`), found `-1`"],
    );
    check(
        "graph g {\n  input x: f32[99999999999999999999]\n}",
        expect!["2:16: a dimension (a number or `N`) `99999999999999999999` is too large"],
    );
    check(
        "graph g {\n  input x: f32[4294967296,4294967296]\n}",
        expect!["2:12: shape [4294967296,4294967296] has too many elements"],
    );
    check(
        "graph g {\n  input x: f32[2 3]\n}",
        expect!["2:18: expected `,` or `]` between dimensions, found `3`"],
    );
    check(
        "graph g {\n  nod y = Relu(x)\n}",
        expect!["2:3: expected `input`, `weight`, `node`, `output` or `}`, found `nod`"],
    );
    check(
        "graph g {\n}\n}",
        expect!["3:1: unexpected text after the graph's closing `}`"],
    );
    check("graph \"g {\n}", expect!["1:7: unterminated quoted name"]);
    check(
        "graph g {\n  input \"a\\qb\": f32[1]\n}",
        expect!["2:11: unknown escape in quoted name"],
    );
}

#[test]
fn op_and_attribute_errors() {
    let node = |line: &str| format!("graph g {{\n  input x: f32[2,3]\n  {line}\n  output y\n}}");
    check(
        &node("node n = Convv(x, w) -> y"),
        expect!["3:12: unknown op `Convv`"],
    );
    check(
        &node("node n = relu(x) -> y"),
        expect!["3:12: unknown op `relu` (did you mean `Relu`?)"],
    );
    check(
        &node("node n = Relu(x) {alpha=1.0} -> y"),
        expect!["3:21: unknown attribute `alpha`: Relu takes no attributes"],
    );
    check(
        &node("node n = Gemm(x, w) {transC=1} -> y"),
        expect!["3:24: unknown attribute `transC`: Gemm takes alpha, beta, transA, transB"],
    );
    check(
        &node("node n = Softmax(x) -> y"),
        expect!["3:12: Softmax needs attribute `axis`"],
    );
    check(
        &node("node n = Softmax(x) {axis=-1} -> y"),
        expect!["3:29: expected `axis`, found `-1`"],
    );
    check(
        &node("node n = Concat(x) {axis=1, axis=2} -> y"),
        expect!["3:31: attribute `axis` is given twice"],
    );
    check(
        &node("node n = MaxPool(x) {strides=[2,2]} -> y"),
        expect!["3:12: MaxPool needs attribute `kernel_shape`"],
    );
    check(
        &node("node n = Conv(x, w) {strides=[1,1,1]} -> y"),
        expect!["3:24: `strides` needs 2 values, got 3"],
    );
    check(
        &node("node n = Conv(x, w) {group=[1]} -> y"),
        expect!["3:30: `group` takes one value"],
    );
    check(
        &node("node n = Gemm(x, w) {transA=yes} -> y"),
        expect!["3:31: `transA` is `true` or `false`, found `yes`"],
    );
    check(
        &node("node n = Clip(x) {max=1e40} -> y"),
        expect!["3:25: `max` `1e40` is out of f32 range"],
    );
    check(
        &node("node n = ReduceMean(x) {axes=[3,2]} -> y"),
        expect!["3:27: `axes` must be sorted and without repeats"],
    );
    check(
        &node("node n = Reshape(x) {shape=[99999999999999999999]} -> y"),
        expect!["3:31: an entry of `shape` `99999999999999999999` does not fit in 64 bits"],
    );
    check(
        &node("node n = Relu(x -> y"),
        expect!["3:19: expected `,` or `)` between the node's inputs, found `-`"],
    );
}

#[test]
fn definition_errors() {
    check(
        "graph g {\n  input x: f32[2,3]\n  node n = Relu(x) -> y\n  node n = Relu(y) -> z\n  output z\n}",
        expect!["4:8: two nodes are named `n`"],
    );
    check(
        "graph g {\n  input x: f32[2,3]\n  node a = Relu(x) -> y\n  node b = Relu(nope) -> z\n  output z\n}",
        expect!["4:17: `nope` is not defined by any input, weight or node"],
    );
    check(
        "graph g {\n  input x: f32[2,3]\n  node a = Relu(x) -> y\n  output y, ghost\n}",
        expect!["4:13: `ghost` is not defined by any input, weight or node"],
    );
    check(
        "graph g {\n  input x: f32[2,3]\n  node a = Relu(x) -> x\n}",
        expect!["3:23: value `x` is already defined"],
    );
    check(
        "graph g {\n  input x: f32[2,3]\n  input x: f32[2,3]\n}",
        expect!["3:9: value `x` is defined twice (second definition: graph input)"],
    );
    check(
        "graph g {\n  input x: f32[2,3]\n  output x, x\n}",
        expect!["3:13: graph output `x` is listed twice"],
    );
}

#[test]
fn weight_errors() {
    let with = |decl: &str| format!("graph g {{\n  input x: f32[2,3]\n  {decl}\n}}");
    check(&with("weight w: f32[4,3]"), expect!["ok"]);
    check(
        &with("weight v: f32[4,3]"),
        expect!["weights: weight `v` (line 3) is not in the weight store"],
    );
    check(
        &with("weight w: f32[3,4]"),
        expect![
            "weights: weight `w` is declared f32[3,4] (line 3) but the weight store holds f32[4,3]"
        ],
    );
    check(
        &with("weight w: f32[4,3] = [1.0]"),
        expect!["weights: weight `w` (line 3) has data both inline and in the weight store"],
    );
    check(
        &with("weight v: f32[2] = [1.0, 2.0, 3.0]"),
        expect!["3:22: weight `v` is declared f32[2] (2 elements) but 3 values are given"],
    );
    check(
        &with("weight v: f32[N,2]"),
        expect!["3:13: a weight's shape cannot use the batch dimension `N`"],
    );
    let huge = with("weight v: f32[100000,100000]");
    let err =
        text::parse_with_placeholder_weights(&huge, &WeightStore::new()).expect_err("refused");
    expect!["weights: weight `v` (line 3) has 10000000000 elements, too many for placeholder data"]
        .assert_eq(&err.to_string());
}

#[test]
fn declared_types_are_checked_against_inference() {
    let src = "graph g {
  input x: f32[N,8,4,4]
  node s = GlobalAveragePool(x) -> a: f32[N,8,1,1]
  node r = Relu(a) -> b: f32[N,8,1,2]
  node q = Sigmoid(b) -> c: f32[8]
  output c
}";
    let errs = text::parse_verified(src, &WeightStore::new()).expect_err("two bad declarations");
    expect![[r#"
        2 errors
          node `r` (Relu): output `b` is declared f32[N,8,1,2] but infers to f32[N,8,1,1]
          node `q` (Sigmoid): output `c` is declared f32[8] but infers to f32[N,8,1,1]"#]]
    .assert_eq(&errs.to_string());
    // Verifier errors come through too.
    let src = "graph g {\n  input x: f32[2,3]\n  node a = Add(x) -> y\n  output y\n}";
    let errs = text::parse_verified(src, &WeightStore::new()).expect_err("bad arity");
    assert!(errs.to_string().contains("node `a` (Add)"), "{errs}");
}

#[test]
fn graph_level_limits_are_named() {
    let verified = |src: &str| match text::parse_verified(src, &WeightStore::new()) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    // No outputs at all.
    expect![[r#"
        1 error
          the graph has no outputs"#]]
    .assert_eq(&verified("graph g {\n  input x: f32[2]\n}"));
    // A rank over 64 (ONNX Runtime's limit), named by its tensor.
    let ones = "1,".repeat(70);
    let src = format!(
        "graph g {{\n  input x: f32[2]\n  node r = Reshape(x) {{shape=[{ones}2]}} -> y\n  output y\n}}"
    );
    expect![[r#"
        1 error
          tensor `y`: rank 71 is over the limit of 64"#]]
    .assert_eq(&verified(&src));
    // An SE block without hidden units.
    let src = "graph g {
  input x: f32[N,8,4,4]
  weight w1: f32[0,8,1,1] = []
  weight w2: f32[8,0,1,1] = []
  node s = SeBlock(x, w1, w2) {act=Relu, gate=Sigmoid} -> y
  output y
}";
    expect![[r#"
        1 error
          node `s` (SeBlock): needs at least one channel and one hidden unit, got C = 8, Cr = 0"#]]
    .assert_eq(&verified(src));
    // A negative BN epsilon (with a zero variance, every output would be NaN).
    let src = "graph g {
  input x: f32[N,2,4,4]
  weight s: f32[2] = [1, 1]
  weight b: f32[2] = [0, 0]
  weight m: f32[2] = [0, 0]
  weight v: f32[2] = [0, 1]
  node bn = BatchNormalization(x, s, b, m, v) {epsilon=-1} -> y
  output y
}";
    expect![[r#"
        1 error
          node `bn` (BatchNormalization): epsilon -1 must be finite and not negative"#]]
    .assert_eq(&verified(src));
}
