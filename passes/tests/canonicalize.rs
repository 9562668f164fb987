//! `canonicalize` on every source form of the fusion contract, one small graph each, plus the
//! forms it must leave alone. Each test prints the result with its events (expect-test) and
//! compares it with the original in the interpreter, asserting how many elements it compared.

mod common;

use common::{Outcome, elems, run};
use excite_ir::text::print;
use excite_passes::canonicalize::Canonicalize;
use excite_passes::const_fold::ConstFold;
use excite_passes::dce::Dce;
use excite_passes::fold_bn::FoldBatchNorm;
use excite_passes::remove_identity::RemoveIdentity;
use expect_test::expect;

/// `canonicalize` then `dce`, as the pipeline runs them.
fn canon(src: &str) -> Outcome {
    run(&[&Canonicalize, &Dce], src)
}

/// Asserts that `canonicalize` changes nothing; returns the elements compared.
fn unchanged(src: &str) -> usize {
    let o = run(&[&Canonicalize], src);
    assert_eq!(o.text, print(&o.before), "nothing is rewritten");
    o.compared
}

fn reduce_mean(keepdims: bool) -> String {
    format!(
        r"graph g {{
  input x: f32[N,8,3,3]
  node sq = ReduceMean(x) {{axes=[2,3], keepdims={keepdims}}} -> s
  output s
}}"
    )
}

#[test]
fn reduce_mean_keepdims_becomes_global_average_pool() {
    let o = canon(&reduce_mean(true));
    expect![[r#"
        graph g {
          input x: f32[N,8,3,3]
          node sq = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          output s
        }
        # canonicalize/reducemean-as-pool @sq: keepdims=1 -> GlobalAveragePool
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 8, 1, 1]));
}

#[test]
fn reduce_mean_without_keepdims_becomes_pool_and_flatten() {
    let o = canon(&reduce_mean(false));
    expect![[r#"
        graph g {
          input x: f32[N,8,3,3]
          node sq = GlobalAveragePool(x) -> s.4d: f32[N,8,1,1]
          node sq.flatten = Flatten(s.4d) {axis=1} -> s: f32[N,8]
          output s
        }
        # canonicalize/reducemean-as-pool @sq: keepdims=0 -> GlobalAveragePool + sq.flatten
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 8]));
}

#[test]
fn reduce_mean_over_other_axes_stays() {
    let src = reduce_mean(true).replace("axes=[2,3]", "axes=[1,2]");
    assert_eq!(unchanged(&src), elems(&[2, 1, 1, 3]));
}

/// Squeeze, Flatten, then a Gemm (`transB`, with or without C) on the `[N,8]` features.
fn flatten_gemm(trans_b: bool, bias: bool) -> String {
    let (b_shape, c) = (
        if trans_b { "[4,8]" } else { "[8,4]" },
        if bias { ", fc.c" } else { "" },
    );
    format!(
        r"graph g {{
  input x: f32[N,8,3,3]
  weight fc.w: f32{b_shape}
  weight fc.c: f32[4]
  node pool = GlobalAveragePool(x) -> s
  node flat = Flatten(s) {{axis=1}} -> f
  node fc = Gemm(f, fc.w{c}) {{alpha=0.5, beta=2, transB={trans_b}}} -> h
  output h
}}"
    )
}

#[test]
fn flatten_gemm_becomes_a_1x1_conv() {
    let o = canon(&flatten_gemm(true, true));
    expect![[r#"
        graph g {
          input x: f32[N,8,3,3]
          weight fc.weight: f32[4,8,1,1]
          weight fc.bias: f32[4]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node fc = Conv(s, fc.weight, fc.bias) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> h.4d: f32[N,4,1,1]
          node fc.flatten = Flatten(h.4d) {axis=1} -> h: f32[N,4]
          output h
        }
        # canonicalize/fc-as-conv @fc: 1x1 Conv on the [N,8,1,1] map, then fc.flatten
        # dce/unread-weights @(weights): dropped 2 unread weights (36 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4]));
}

#[test]
fn flatten_gemm_every_transposition_and_bias() {
    let mut compared = 0;
    for trans_b in [false, true] {
        for bias in [false, true] {
            let o = canon(&flatten_gemm(trans_b, bias));
            assert!(
                !o.text.contains("Gemm("),
                "transB={trans_b} bias={bias}:\n{}",
                o.text
            );
            assert!(o.text.contains("# canonicalize/fc-as-conv @fc: "));
            assert_eq!(o.text.contains("fc.bias"), bias);
            compared += o.compared;
        }
    }
    assert_eq!(compared, 4 * elems(&[2, 4]));
}

#[test]
fn gemm_with_a_non_constant_b_stays() {
    let src = flatten_gemm(true, false).replace("weight fc.w: f32[4,8]", "input fc.w: f32[4,8]");
    assert_eq!(unchanged(&src), elems(&[2, 4]));
}

#[test]
fn reshape_matmul_add_reshape_becomes_a_conv_with_bias() {
    let src = r"graph g {
  input x: f32[N,8,3,3]
  weight fc.w: f32[8,4]
  weight fc.b: f32[4]
  node pool = GlobalAveragePool(x) -> s
  node r1 = Reshape(s) {shape=[0,-1]} -> f
  node fc = MatMul(f, fc.w) -> m
  node bias = Add(fc.b, m) -> h
  node r2 = Reshape(h) {shape=[0,4,1,1]} -> h4
  node act = Relu(h4) -> a
  output a
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,8,3,3]
          weight fc.weight: f32[4,8,1,1]
          weight fc.bias: f32[4]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node fc = Conv(s, fc.weight, fc.bias) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> m.4d: f32[N,4,1,1]
          node act = Relu(m.4d) -> a: f32[N,4,1,1]
          output a
        }
        # canonicalize/fc-as-conv @fc: 1x1 Conv on the [N,8,1,1] map, then fc.flatten (bias Add `bias` absorbed)
        # canonicalize/reshape-of-reshape @r2: merged with `fc.flatten`
        # canonicalize/act-before-reshape @act: moved before `r2`
        # canonicalize/reshape-noop @act.reshape: to its input's shape [N,4,1,1]
        # dce/unread-weights @(weights): dropped 2 unread weights (36 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4, 1, 1]));
}

#[test]
fn expand_before_mul_is_dropped_when_broadcasting_gives_the_same_shape() {
    let src = r"graph g {
  input x: f32[N,8,3,3]
  node pool = GlobalAveragePool(x) -> s
  node gate = Sigmoid(s) -> g
  node e = Expand(g) {shape=[1,8,3,3]} -> ge
  node scale = Mul(ge, x) -> y
  output y
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,8,3,3]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node gate = Sigmoid(s) -> g: f32[N,8,1,1]
          node scale = Mul(g, x) -> y: f32[N,8,3,3]
          output y
        }
        # canonicalize/expand-mul @scale: broadcasts without `e`
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 8, 3, 3]));
}

#[test]
fn expand_that_changes_the_result_shape_stays() {
    let src = r"graph g {
  input x: f32[N,8,1,1]
  node gate = Sigmoid(x) -> g
  node e = Expand(g) {shape=[1,8,3,3]} -> ge
  node scale = Mul(x, ge) -> y
  output y
}";
    assert_eq!(unchanged(src), elems(&[2, 8, 3, 3]));
}

#[test]
fn x_times_sigmoid_x_becomes_silu_either_order() {
    let src = r"graph g {
  input x: f32[N,4,2,2]
  node s1 = Sigmoid(x) -> g1
  node m1 = Mul(x, g1) -> y1
  node s2 = Sigmoid(y1) -> g2
  node m2 = Mul(g2, y1) -> y2
  output y2
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,4,2,2]
          node m1 = Silu(x) -> y1: f32[N,4,2,2]
          node m2 = Silu(y1) -> y2: f32[N,4,2,2]
          output y2
        }
        # canonicalize/silu @m1: Silu of `s1`
        # canonicalize/silu @m2: Silu of `s2`
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4, 2, 2]));
}

#[test]
fn x_times_hard_sigmoid_x_becomes_hard_swish() {
    let src = r"graph g {
  input x: f32[N,4,2,2]
  node hs = HardSigmoid(x) {alpha=0.16666667, beta=0.5} -> g
  node act = Mul(g, x) -> y
  node hs2 = HardSigmoid(y) {alpha=0.2, beta=0.5} -> g2
  node act2 = Mul(y, g2) -> z
  output z
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,4,2,2]
          node act = HardSwish(x) -> y: f32[N,4,2,2]
          node hs2 = HardSigmoid(y) {alpha=0.2, beta=0.5} -> g2: f32[N,4,2,2]
          node act2 = Mul(y, g2) -> z: f32[N,4,2,2]
          output z
        }
        # canonicalize/hardswish @act: HardSwish of `hs`
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4, 2, 2]));
}

#[test]
fn clip_based_hard_swish_and_hard_sigmoid() {
    // y = x * Clip(x + 3, 0, 6) / 6; z = y * (Clip(3 + y, 0, 6) * (1/6)); w = z * Clip(z + 3) * (1/6).
    let src = r"graph g {
  input x: f32[N,4,2,2]
  weight three: f32[] = [3]
  weight six: f32[1] = [6]
  weight sixth: f32[] = [0.16666667]
  node a1 = Add(x, three) -> p1
  node c1 = Clip(p1) {min=0, max=6} -> r1
  node m1 = Mul(x, r1) -> q1
  node hswish = Div(q1, six) -> y
  node a2 = Add(three, y) -> p2
  node c2 = Clip(p2) {min=0, max=6} -> r2
  node hsig = Mul(r2, sixth) -> g2
  node m2 = Mul(y, g2) -> z
  node a3 = Add(z, three) -> p3
  node c3 = Clip(p3) {min=0, max=6} -> r3
  node m3 = Mul(r3, z) -> q3
  node hswish3 = Mul(sixth, q3) -> w
  output w
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,4,2,2]
          node hswish = HardSwish(x) -> y: f32[N,4,2,2]
          node m2 = HardSwish(y) -> z: f32[N,4,2,2]
          node hswish3 = HardSwish(z) -> w: f32[N,4,2,2]
          output w
        }
        # canonicalize/hardswish-from-clip @hswish: x * Clip(x + 3, 0, 6) / 6
        # canonicalize/hardsigmoid-from-clip @hsig: Clip(x + 3, 0, 6) / 6
        # canonicalize/hardswish @m2: HardSwish of `hsig`
        # canonicalize/hardswish-from-clip @hswish3: x * Clip(x + 3, 0, 6) / 6
        # dce/unread-weights @(weights): dropped 3 unread weights (3 parameters)
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4, 2, 2]));
}

#[test]
fn clip_with_other_bounds_stays() {
    let src = r"graph g {
  input x: f32[N,4,2,2]
  weight three: f32[] = [3]
  weight six: f32[] = [6]
  node a1 = Add(x, three) -> p1
  node c1 = Clip(p1) {min=0, max=5} -> r1
  node m1 = Mul(x, r1) -> q1
  node d = Div(q1, six) -> y
  output y
}";
    assert_eq!(unchanged(src), elems(&[2, 4, 2, 2]));
}

/// An SE block as an old exporter wrote it: BN after the stem conv, Dropout, ReduceMean
/// without keepdims, Gemm + Relu + Gemm, decomposed hard-sigmoid, Reshape back, Expand + Mul.
const SE_AS_EXPORTED: &str = r"graph se {
  input x: f32[N,8,4,4]
  weight conv.w: f32[8,8,3,3]
  weight bn.s: f32[8]
  weight bn.b: f32[8]
  weight bn.m: f32[8]
  weight bn.v: f32[8]
  weight fc1.w: f32[2,8]
  weight fc1.b: f32[2]
  weight fc2.w: f32[2,8]
  weight three: f32[] = [3]
  weight six: f32[] = [6]
  node conv = Conv(x, conv.w) {pads=[1,1,1,1]} -> c
  node bn = BatchNormalization(c, bn.s, bn.b, bn.m, bn.v) {epsilon=0.00001} -> b
  node drop = Dropout(b) -> u
  node sq = ReduceMean(u) {axes=[2,3], keepdims=false} -> s
  node fc1 = Gemm(s, fc1.w, fc1.b) {transB=true} -> h
  node relu = Relu(h) -> a
  node fc2 = MatMul(a, fc2.w) -> e
  node plus3 = Add(e, three) -> e3
  node clip = Clip(e3) {min=0, max=6} -> ec
  node gate = Div(ec, six) -> g
  node back = Reshape(g) {shape=[-1,8,1,1]} -> g4
  node ex = Expand(g4) {shape=[1,8,4,4]} -> ge
  node scale = Mul(u, ge) -> y
  output y
}";

#[test]
fn an_exported_se_block_reaches_the_canonical_form() {
    let o = run(
        &[
            &RemoveIdentity,
            &ConstFold,
            &FoldBatchNorm,
            &Canonicalize,
            &Dce,
        ],
        SE_AS_EXPORTED,
    );
    expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          weight conv.weight: f32[8,8,3,3]
          weight conv.bias: f32[8]
          weight fc1.weight: f32[2,8,1,1]
          weight fc1.bias: f32[2]
          weight fc2.weight: f32[8,2,1,1]
          node conv = Conv(x, conv.weight, conv.bias) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} -> b: f32[N,8,4,4]
          node sq = GlobalAveragePool(b) -> s.4d: f32[N,8,1,1]
          node fc1 = Conv(s.4d, fc1.weight, fc1.bias) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> h.4d: f32[N,2,1,1]
          node relu = Relu(h.4d) -> a.4d: f32[N,2,1,1]
          node fc2 = Conv(a.4d, fc2.weight) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> e.4d: f32[N,8,1,1]
          node gate = HardSigmoid(e.4d) {alpha=0.16666667, beta=0.5} -> g.4d: f32[N,8,1,1]
          node scale = Mul(b, g.4d) -> y: f32[N,8,4,4]
          output y
        }
        # remove-identity/dropout @drop: readers now read `b`
        # fold-bn/bn-into-conv @bn: into conv
        # canonicalize/reducemean-as-pool @sq: keepdims=0 -> GlobalAveragePool + sq.flatten
        # canonicalize/fc-as-conv @fc1: 1x1 Conv on the [N,8,1,1] map, then fc1.flatten
        # canonicalize/act-before-reshape @relu: moved before `fc1.flatten`
        # canonicalize/fc-as-conv @fc2: 1x1 Conv on the [N,2,1,1] map, then fc2.flatten
        # canonicalize/hardsigmoid-from-clip @gate: Clip(x + 3, 0, 6) / 6
        # canonicalize/expand-mul @scale: broadcasts without `ex`
        # canonicalize/act-before-reshape @gate: moved before `fc2.flatten`
        # canonicalize/reshape-of-reshape @back: merged with `gate.flatten`
        # canonicalize/reshape-noop @back: to its input's shape [N,8,1,1]
        # dce/unread-weights @(weights): dropped 9 unread weights (68 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 8, 4, 4]));
}

#[test]
fn rewrites_keep_graph_output_names() {
    // `y` must stay the name of the first output after the Reshape back disappears; `z`
    // reshapes a graph input to its own shape and has to stay, since `x` cannot be renamed.
    let src = r"graph g {
  input x: f32[N,4,1,1]
  node f = Flatten(x) {axis=1} -> f
  node act = Relu(f) -> a
  node back = Reshape(a) {shape=[0,4,1,1]} -> y
  node same = Reshape(x) {shape=[0,4,1,1]} -> z
  output y, z
}";
    let o = canon(src);
    expect![[r#"
        graph g {
          input x: f32[N,4,1,1]
          node act = Relu(x) -> y: f32[N,4,1,1]
          node same = Reshape(x) {shape=[0,4,1,1], allowzero=false} -> z: f32[N,4,1,1]
          output y
          output z
        }
        # canonicalize/act-before-reshape @act: moved before `f`
        # canonicalize/reshape-of-reshape @back: merged with `act.flatten`
        # canonicalize/reshape-noop @back: to its input's shape [N,4,1,1]
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, 2 * elems(&[2, 4, 1, 1]));
}
