//! Graphs that look like SE blocks but are not, or not entirely: the `fuse` pass must leave
//! them unfused (the convolution epilogues inside may still fuse), and the result must still
//! compute what the original did.

mod fuse_support;

use expect_test::{Expect, expect};
use fuse_support::{CONV1X1, fuse, op_count, se_src};

/// A look-alike: fuses no SeBlock, and its outputs still match the unfused graph.
fn check_not_se(src: &str, want: Expect) {
    let o = fuse(src);
    assert_eq!(op_count(&o.after, "SeBlock"), 0, "{}", o.text);
    want.assert_eq(&o.text);
}

#[test]
fn pool_of_a_different_tensor_than_the_one_scaled_does_not_fuse() {
    let src = se_src("Relu", "Sigmoid", (true, true), "r, g", "");
    check_not_se(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node act = FusedConv(s, w1, b1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Relu, residual=false} -> za: f32[N,2,1,1]
          node gate = FusedConv(za, w2, b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Sigmoid, residual=false} -> g: f32[N,8,1,1]
          node scale = Mul(r, g) -> y: f32[N,8,4,4]
          output y
        }
        # fuse/conv-act @act: absorbed: fc1
        # fuse/conv-act @gate: absorbed: fc2
        # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 768
    "#]],
    );
}

/// Padding the first FC makes it produce a 3x3 map from the pooled 1x1 one, so the gate is
/// per pixel ([N,8,3,3]); everything else is SE-shaped.
#[test]
fn per_pixel_gate_does_not_fuse() {
    check_not_se(
        &format!(
            r#"graph per_pixel {{
  input x: f32[N,8,3,3]
  weight w1: f32[2,8,1,1]
  weight w2: f32[8,2,1,1]
  node pool = GlobalAveragePool(x) -> s
  node fc1 = Conv(s, w1) {{strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1}} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2) {CONV1X1} -> e
  node gate = Sigmoid(e) -> g
  node scale = Mul(x, g) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph per_pixel {
              input x: f32[N,8,3,3]
              weight w1: f32[2,8,1,1]
              weight w2: f32[8,2,1,1]
              node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
              node act = FusedConv(s, w1) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1, bias=false, act=Relu, residual=false} -> za: f32[N,2,3,3]
              node gate = FusedConv(za, w2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Sigmoid, residual=false} -> g: f32[N,8,3,3]
              node scale = Mul(x, g) -> y: f32[N,8,3,3]
              output y
            }
            # fuse/conv-act @act: absorbed: fc1
            # fuse/conv-act @gate: absorbed: fc2
            # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 432
        "#]],
    );
}

/// The squeeze averages over W only (ReduceMean on axis 3): a per-row gate.
#[test]
fn reduce_mean_over_the_wrong_axes_does_not_fuse() {
    check_not_se(
        &format!(
            r#"graph rows {{
  input x: f32[N,8,4,4]
  weight w1: f32[2,8,1,1]
  weight w2: f32[8,2,1,1]
  node pool = ReduceMean(x) {{axes=[3], keepdims=true}} -> s
  node fc1 = Conv(s, w1) {CONV1X1} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2) {CONV1X1} -> e
  node gate = Sigmoid(e) -> g
  node scale = Mul(x, g) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph rows {
              input x: f32[N,8,4,4]
              weight w1: f32[2,8,1,1]
              weight w2: f32[8,2,1,1]
              node pool = ReduceMean(x) {axes=[3], keepdims=true} -> s: f32[N,8,4,1]
              node act = FusedConv(s, w1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Relu, residual=false} -> za: f32[N,2,4,1]
              node gate = FusedConv(za, w2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Sigmoid, residual=false} -> g: f32[N,8,4,1]
              node scale = Mul(x, g) -> y: f32[N,8,4,4]
              output y
            }
            # fuse/conv-act @act: absorbed: fc1
            # fuse/conv-act @gate: absorbed: fc2
            # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 768
        "#]],
    );
}

/// The global pool replaced by a 4x1 average pool: the mean over H only, a per-column gate.
#[test]
fn average_pool_instead_of_global_pool_does_not_fuse() {
    check_not_se(
        &format!(
            r#"graph columns {{
  input x: f32[N,8,4,4]
  weight w1: f32[2,8,1,1]
  weight w2: f32[8,2,1,1]
  node pool = AveragePool(x) {{kernel_shape=[4,1], strides=[1,1], pads=[0,0,0,0], dilations=[1,1], ceil_mode=false, count_include_pad=false}} -> s
  node fc1 = Conv(s, w1) {CONV1X1} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2) {CONV1X1} -> e
  node gate = Sigmoid(e) -> g
  node scale = Mul(x, g) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph columns {
              input x: f32[N,8,4,4]
              weight w1: f32[2,8,1,1]
              weight w2: f32[8,2,1,1]
              node pool = AveragePool(x) {kernel_shape=[4,1], strides=[1,1], pads=[0,0,0,0], dilations=[1,1], ceil_mode=false, count_include_pad=false} -> s: f32[N,8,1,4]
              node act = FusedConv(s, w1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Relu, residual=false} -> za: f32[N,2,1,4]
              node gate = FusedConv(za, w2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Sigmoid, residual=false} -> g: f32[N,8,1,4]
              node scale = Mul(x, g) -> y: f32[N,8,4,4]
              output y
            }
            # fuse/conv-act @act: absorbed: fc1
            # fuse/conv-act @gate: absorbed: fc2
            # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 768
        "#]],
    );
}

/// The gate is also a graph output: the SE kernel would lose it. The FC epilogues still fuse.
#[test]
fn shared_gate_does_not_fuse() {
    let src = se_src("Relu", "Sigmoid", (true, true), "x, g", "")
        .replace("output y", "output y\n  output g");
    check_not_se(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node act = FusedConv(s, w1, b1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Relu, residual=false} -> za: f32[N,2,1,1]
          node gate = FusedConv(za, w2, b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Sigmoid, residual=false} -> g: f32[N,8,1,1]
          node scale = Mul(x, g) -> y: f32[N,8,4,4]
          output y
          output g
        }
        # fuse/conv-act @act: absorbed: fc1
        # fuse/conv-act @gate: absorbed: fc2
        # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 816
    "#]],
    );
}

/// The inner activation is also read by another node.
#[test]
fn shared_inner_activation_does_not_fuse() {
    let src = se_src(
        "Relu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node other = Sigmoid(za) -> o",
    )
    .replace("output o", "output y\n  output o");
    check_not_se(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
          node act = FusedConv(s, w1, b1) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Relu, residual=false} -> za: f32[N,2,1,1]
          node gate = FusedConv(za, w2, b2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=true, act=Sigmoid, residual=false} -> g: f32[N,8,1,1]
          node scale = Mul(x, g) -> y: f32[N,8,4,4]
          node other = Sigmoid(za) -> o: f32[N,2,1,1]
          output y
          output o
        }
        # fuse/conv-act @act: absorbed: fc1
        # fuse/conv-act @gate: absorbed: fc2
        # SeBlock 0, FusedConv 2, nodes 7 -> 5, compared 780
    "#]],
    );
}

/// The first FC is a padded 3x3 convolution on the pooled map: same output shape, but not
/// the 1x1 FC the SE kernel computes.
#[test]
fn three_by_three_conv_as_fc_does_not_fuse() {
    check_not_se(
        &format!(
            r#"graph fc3x3 {{
  input x: f32[N,8,4,4]
  weight w1: f32[2,8,3,3]
  weight w2: f32[8,2,1,1]
  node pool = GlobalAveragePool(x) -> s
  node fc1 = Conv(s, w1) {{strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1}} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2) {CONV1X1} -> e
  node gate = Sigmoid(e) -> g
  node scale = Mul(x, g) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph fc3x3 {
              input x: f32[N,8,4,4]
              weight w1: f32[2,8,3,3]
              weight w2: f32[8,2,1,1]
              node pool = GlobalAveragePool(x) -> s: f32[N,8,1,1]
              node act = FusedConv(s, w1) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1, bias=false, act=Relu, residual=false} -> za: f32[N,2,1,1]
              node gate = FusedConv(za, w2) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Sigmoid, residual=false} -> g: f32[N,8,1,1]
              node scale = Mul(x, g) -> y: f32[N,8,4,4]
              output y
            }
            # fuse/conv-act @act: absorbed: fc1
            # fuse/conv-act @gate: absorbed: fc2
            # SeBlock 0, FusedConv 2, nodes 6 -> 4, compared 768
        "#]],
    );
}

/// A residual that broadcasts ([N,8,1,1] onto [N,8,4,4]) is not absorbed; the block still is.
#[test]
fn broadcasting_residual_is_not_absorbed() {
    let src = se_src(
        "Relu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node sum = Add(y, s) -> z2",
    );
    let o = fuse(&src);
    assert_eq!(
        op_count(&o.after, "SeBlock"),
        0,
        "the pool output is shared"
    );
    let src = src.replace("Add(y, s)", "Add(y, shift)").replace(
        "  weight b2: f32[8]",
        "  weight b2: f32[8]\n  weight shift: f32[8,1,1]",
    );
    let o = fuse(&src);
    assert_eq!(op_count(&o.after, "SeBlock"), 1);
    assert_eq!(op_count(&o.after, "Add"), 1, "{}", o.text);
}
