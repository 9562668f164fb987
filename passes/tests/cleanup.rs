//! The clean-up passes on small graphs: `remove-identity`, `const-fold`, `dce` and `fold-bn`.
//! Each test prints the rewritten graph with its events (expect-test) and compares it with the
//! original in the interpreter (`common::run`), asserting how many elements it compared.

mod common;

use common::{elems, run};
use excite_passes::const_fold::ConstFold;
use excite_passes::dce::Dce;
use excite_passes::fold_bn::FoldBatchNorm;
use excite_passes::remove_identity::RemoveIdentity;
use expect_test::expect;

#[test]
fn identity_chain_is_removed_and_the_output_keeps_its_name() {
    let o = run(
        &[&RemoveIdentity],
        r"graph g {
  input x: f32[N,3]
  node i1 = Identity(x) -> a
  node d = Dropout(a) -> b
  node r = Relu(b) -> c
  node i2 = Identity(c) -> y
  output y
}",
    );
    expect![[r#"
        graph g {
          input x: f32[N,3]
          node r = Relu(x) -> y: f32[N,3]
          output y
        }
        # remove-identity/identity @i1: readers now read `x`
        # remove-identity/dropout @d: readers now read `x`
        # remove-identity/identity @i2: the producer of `c` now defines output `y`
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 3]));
}

#[test]
fn identities_that_keep_an_output_distinct_stay() {
    // `y` copies the graph input; `z` copies another graph output.
    let src = r"graph g {
  input x: f32[N,3]
  node i1 = Identity(x) -> y
  node r = Relu(x) -> a
  node i2 = Dropout(a) -> z
  output y, a, z
}";
    let o = run(&[&RemoveIdentity], src);
    expect![[r#"
        graph g {
          input x: f32[N,3]
          node i1 = Identity(x) -> y: f32[N,3]
          node r = Relu(x) -> a: f32[N,3]
          node i2 = Dropout(a) -> z: f32[N,3]
          output y
          output a
          output z
        }
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, 3 * elems(&[2, 3]));
}

#[test]
fn constant_chain_folds_into_one_weight_and_dce_drops_the_rest() {
    let src = r"graph g {
  input x: f32[N,4]
  weight k: f32[4]
  weight two: f32[] = [2]
  node m = Mul(k, two) -> k2
  node r = Reshape(k2) {shape=[1,4]} -> k3
  node y = Add(x, k3) -> y
  output y
}";
    let o = run(&[&ConstFold, &Dce], src);
    expect![[r#"
        graph g {
          input x: f32[N,4]
          weight k3: f32[1,4]
          node y = Add(x, k3) -> y: f32[N,4]
          output y
        }
        # const-fold/fold @m: Mul -> weight `k2` [4]
        # const-fold/fold @r: Reshape -> weight `k3` [1, 4]
        # dce/unread-weights @(weights): dropped 3 unread weights (9 parameters)
    "#]]
    .assert_eq(&o.text);
    assert_eq!((o.before.param_count(), o.after.param_count()), (5, 4));
    assert_eq!(o.compared, elems(&[2, 4]));
}

#[test]
fn const_fold_does_not_inflate_the_model() {
    let src = r"graph g {
  input x: f32[N,64,32,32]
  weight k: f32[] = [0.5]
  node e = Expand(k) {shape=[1,64,32,32]} -> ke
  node y = Mul(x, ke) -> y
  output y
}";
    let o = run(&[&ConstFold], src);
    assert_eq!(o.text, excite_ir::text::print(&o.before), "nothing folds");
    assert_eq!(o.compared, elems(&[2, 64, 32, 32]));
}

#[test]
fn dce_removes_a_dead_branch_and_its_weights() {
    let src = r"graph g {
  input x: f32[N,4]
  weight w: f32[4]
  weight used: f32[4]
  node a = Add(x, used) -> a
  node s = Sigmoid(a) -> s
  node dead = Mul(s, w) -> d
  node dead2 = Relu(d) -> d2
  output a
}";
    let o = run(&[&Dce], src);
    expect![[r#"
        graph g {
          input x: f32[N,4]
          weight used: f32[4]
          node a = Add(x, used) -> a: f32[N,4]
          output a
        }
        # dce/dead-node @dead2: read by nothing
        # dce/dead-node @dead: read by nothing
        # dce/dead-node @s: read by nothing
        # dce/unread-weights @(weights): dropped 1 unread weights (4 parameters)
    "#]]
    .assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 4]));
}

const BN: &str = "{epsilon=0.001}";

/// A Conv (`bias`: with a bias) followed by BatchNormalization, `group` groups.
fn conv_bn(bias: bool, group: usize) -> String {
    let b = if bias { ", conv.b" } else { "" };
    let cin = 4 / group;
    format!(
        r"graph g {{
  input x: f32[N,4,5,5]
  weight conv.w: f32[6,{cin},3,3]
  weight conv.b: f32[6]
  node conv = Conv(x, conv.w{b}) {{pads=[1,1,1,1], group={group}}} -> c
  node bn = BatchNormalization(c, bn.s, bn.b, bn.m, bn.v) {BN} -> y
  weight bn.s: f32[6]
  weight bn.b: f32[6]
  weight bn.m: f32[6]
  weight bn.v: f32[6]
  output y
}}"
    )
}

#[test]
fn bn_folds_into_a_conv_without_bias() {
    let o = run(&[&FoldBatchNorm, &Dce], &conv_bn(false, 1));
    expect![[r#"
        graph g {
          input x: f32[N,4,5,5]
          weight conv.weight: f32[6,4,3,3]
          weight conv.bias: f32[6]
          node conv = Conv(x, conv.weight, conv.bias) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} -> y: f32[N,6,5,5]
          output y
        }
        # fold-bn/bn-into-conv @bn: into conv
        # dce/unread-weights @(weights): dropped 5 unread weights (30 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 6, 5, 5]));
}

#[test]
fn bn_folds_into_a_conv_with_bias() {
    let o = run(&[&FoldBatchNorm, &Dce], &conv_bn(true, 1));
    expect![[r#"
        graph g {
          input x: f32[N,4,5,5]
          weight conv.weight: f32[6,4,3,3]
          weight conv.bias: f32[6]
          node conv = Conv(x, conv.weight, conv.bias) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} -> y: f32[N,6,5,5]
          output y
        }
        # fold-bn/bn-into-conv @bn: into conv
        # dce/unread-weights @(weights): dropped 5 unread weights (30 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 6, 5, 5]));
}

#[test]
fn bn_folds_into_a_grouped_conv() {
    let o = run(&[&FoldBatchNorm, &Dce], &conv_bn(true, 2));
    expect![[r#"
        graph g {
          input x: f32[N,4,5,5]
          weight conv.weight: f32[6,2,3,3]
          weight conv.bias: f32[6]
          node conv = Conv(x, conv.weight, conv.bias) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=2} -> y: f32[N,6,5,5]
          output y
        }
        # fold-bn/bn-into-conv @bn: into conv
        # dce/unread-weights @(weights): dropped 5 unread weights (30 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, elems(&[2, 6, 5, 5]));
}

#[test]
fn bn_does_not_fold_when_the_conv_output_is_read_elsewhere() {
    let src = conv_bn(false, 1).replace(
        "  output y\n",
        "  node r = Relu(c) -> r\n  node sum = Add(y, r) -> z\n  output z\n",
    );
    let o = run(&[&FoldBatchNorm], &src);
    assert_eq!(o.text, excite_ir::text::print(&o.before), "nothing folds");
    assert_eq!(o.compared, elems(&[2, 6, 5, 5]));
}

#[test]
fn standalone_bn_stays() {
    let src = r"graph g {
  input x: f32[N,3,2,2]
  node bn = BatchNormalization(x, s, b, m, v) {epsilon=0.00001} -> y
  weight s: f32[3]
  weight b: f32[3]
  weight m: f32[3]
  weight v: f32[3]
  output y
}";
    let o = run(&[&FoldBatchNorm], src);
    assert_eq!(o.text, excite_ir::text::print(&o.before), "nothing folds");
    assert_eq!(o.compared, elems(&[2, 3, 2, 2]));
}

#[test]
fn bn_after_a_one_input_op_stays() {
    // Pre-activation order (ReLU, then BN): the producer has no weight input to fold into.
    for op in ["Relu", "Sigmoid"] {
        let src = format!(
            r"graph g {{
  input x: f32[N,3,2,2]
  node a = {op}(x) -> a
  node bn = BatchNormalization(a, s, b, m, v) {{epsilon=0.00001}} -> y
  weight s: f32[3]
  weight b: f32[3]
  weight m: f32[3]
  weight v: f32[3]
  output y
}}"
        );
        let o = run(&[&FoldBatchNorm], &src);
        assert_eq!(
            o.text,
            excite_ir::text::print(&o.before),
            "nothing folds after {op}"
        );
        assert_eq!(o.compared, elems(&[2, 3, 2, 2]));
    }
}

/// A Gemm (B transposed or not, C of shape `c` or none) followed by BatchNormalization.
fn gemm_bn(trans_b: bool, c: Option<&str>) -> String {
    let b_shape = if trans_b { "[5,3]" } else { "[3,5]" };
    let (c_in, c_decl) = match c {
        Some(shape) => (", fc.c".to_string(), format!("  weight fc.c: f32{shape}\n")),
        None => (String::new(), String::new()),
    };
    format!(
        r"graph g {{
  input x: f32[N,3]
  weight fc.w: f32{b_shape}
{c_decl}  node fc = Gemm(x, fc.w{c_in}) {{alpha=0.5, beta=2, transB={trans_b}}} -> h
  node bn = BatchNormalization(h, bn.s, bn.b, bn.m, bn.v) {BN} -> y
  weight bn.s: f32[5]
  weight bn.b: f32[5]
  weight bn.m: f32[5]
  weight bn.v: f32[5]
  output y
}}"
    )
}

#[test]
fn bn_folds_into_gemm_either_transposition() {
    let mut compared = 0;
    for (trans_b, c) in [(false, Some("[5]")), (true, Some("[1,5]")), (true, None)] {
        let o = run(&[&FoldBatchNorm, &Dce], &gemm_bn(trans_b, c));
        let bn_left = o.text.contains("BatchNormalization(");
        assert!(!bn_left, "transB={trans_b} C={c:?}:\n{}", o.text);
        assert!(o.text.contains("# fold-bn/bn-into-conv @bn: into fc"));
        compared += o.compared;
    }
    assert_eq!(compared, 3 * elems(&[2, 5]));
}

#[test]
fn bn_fold_gives_fresh_names_and_leaves_a_shared_weight_alone() {
    // `conv.weight` is also read by `conv2`, so the folded copy needs a name of its own.
    let src = r"graph g {
  input x: f32[N,2,3,3]
  weight conv.weight: f32[2,2,1,1]
  node conv = Conv(x, conv.weight) -> c
  node bn = BatchNormalization(c, bn.s, bn.b, bn.m, bn.v) {epsilon=0.001} -> y
  node conv2 = Conv(x, conv.weight) -> y2
  weight bn.s: f32[2]
  weight bn.b: f32[2]
  weight bn.m: f32[2]
  weight bn.v: f32[2]
  output y, y2
}";
    let o = run(&[&FoldBatchNorm, &Dce], src);
    expect![[r#"
        graph g {
          input x: f32[N,2,3,3]
          weight conv.weight: f32[2,2,1,1]
          weight conv.weight.1: f32[2,2,1,1]
          weight conv.bias: f32[2]
          node conv = Conv(x, conv.weight.1, conv.bias) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> y: f32[N,2,3,3]
          node conv2 = Conv(x, conv.weight) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> y2: f32[N,2,3,3]
          output y
          output y2
        }
        # fold-bn/bn-into-conv @bn: into conv
        # dce/unread-weights @(weights): dropped 4 unread weights (8 parameters)
    "#]].assert_eq(&o.text);
    assert_eq!(o.compared, 2 * elems(&[2, 2, 3, 3]));
}
