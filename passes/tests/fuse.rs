//! The `fuse` pass on hand-written canonical graphs: every SE variant fuses into one `SeBlock`
//! (with its residual add and activation when they follow), convolution epilogues fuse into
//! `FusedConv` (the look-alikes that must not fuse are in `fuse_negative.rs`). Each case prints the
//! fused graph with its `--explain` events and compares it with the unfused graph in the
//! reference interpreter on seeded random inputs.

mod fuse_support;

use excite_ir::{Act, Op, SeBlock};
use excite_passes::pass::EqsatLimits;
use excite_passes::{Pass, PassContext, fuse::Fuse};
use expect_test::{Expect, expect};
use fuse_support::{CONV1X1, fuse, fuse_with, op_count, parse, se_src};

fn check(src: &str, want: Expect) {
    let o = fuse(src);
    want.assert_eq(&o.text);
}

#[test]
fn se_block_with_biases_relu_and_sigmoid() {
    check(
        &format!(
            r#"graph se {{
  input x: f32[N,8,4,4]
  weight w1: f32[2,8,1,1]
  weight b1: f32[2]
  weight w2: f32[8,2,1,1]
  weight b2: f32[8]
  node pool = GlobalAveragePool(x) -> s
  node fc1 = Conv(s, w1, b1) {CONV1X1} -> z
  node act = Relu(z) -> za
  node fc2 = Conv(za, w2, b2) {CONV1X1} -> e
  node gate = Sigmoid(e) -> g
  node scale = Mul(x, g) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph se {
              input x: f32[N,8,4,4]
              weight w1: f32[2,8,1,1]
              weight b1: f32[2]
              weight w2: f32[8,2,1,1]
              weight b2: f32[8]
              node scale = SeBlock(x, w1, b1, w2, b2) {act=Relu, gate=Sigmoid, bias1=true, bias2=true, residual=false} -> y: f32[N,8,4,4]
              output y
            }
            # fuse/se-scale @scale: absorbed: pool, fc1, act, fc2, gate
            # SeBlock 1, FusedConv 0, nodes 6 -> 1, compared 768
        "#]],
    );
}

/// Every inner activation, gate, bias placement, operand order and tail fuses into exactly
/// one SeBlock node with the right attributes, computing what the unfused block computed.
#[test]
fn every_se_variant_fuses_into_one_se_block() {
    let acts = [
        ("Relu", Act::Relu),
        ("Silu", Act::Silu),
        ("HardSwish", Act::HardSwish),
    ];
    let hs = Act::HardSigmoid {
        alpha: 0.2,
        beta: 0.5,
    };
    let gates = [
        ("Sigmoid", Act::Sigmoid),
        ("HardSigmoid {alpha=0.2, beta=0.5}", hs),
    ];
    // (tail text, residual, post act, root name)
    let tails = [
        ("", false, None, "scale"),
        ("  node sum = Add(y, r) -> z2", true, None, "sum"),
        (
            "  node sum = Add(r, y) -> z2\n  node out = Relu(z2) -> o",
            true,
            Some(Act::Relu),
            "out",
        ),
        (
            "  node sum = Add(y, r) -> z2\n  node out = Silu(z2) -> o",
            true,
            Some(Act::Silu),
            "out",
        ),
    ];
    let mut cases = 0;
    let mut compared = 0;
    for (act_text, act) in acts {
        for (gate_text, gate) in gates {
            for bias in [(true, true), (false, false), (true, false), (false, true)] {
                for scale in ["x, g", "g, x"] {
                    for (tail, residual, post_act, root) in tails {
                        let src = se_src(act_text, gate_text, bias, scale, tail);
                        let o = fuse(&src);
                        let want = Op::SeBlock(SeBlock {
                            act,
                            gate,
                            bias1: bias.0,
                            bias2: bias.1,
                            residual,
                            post_act,
                        });
                        let nodes: Vec<_> = o.after.node_ids().map(|n| o.after.node(n)).collect();
                        assert_eq!(nodes.len(), 1, "{src}\n{}", o.text);
                        assert_eq!(nodes[0].op, want, "{src}");
                        assert_eq!(nodes[0].name, root);
                        assert_eq!(o.cx.events.len(), 1);
                        compared += o.compared;
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 3 * 2 * 4 * 2 * 4);
    assert_eq!(compared, cases * 3 * 2 * 8 * 16);
}

#[test]
fn unbiased_se_block_with_hard_swish_and_hard_sigmoid_gate_first() {
    let src = se_src(
        "HardSwish",
        "HardSigmoid {alpha=0.16666667, beta=0.5}",
        (false, false),
        "g, x",
        "",
    );
    check(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node scale = SeBlock(x, w1, w2) {act=HardSwish, gate=HardSigmoid, gate_alpha=0.16666667, gate_beta=0.5, bias1=false, bias2=false, residual=false} -> y: f32[N,8,4,4]
          output y
        }
        # fuse/se-scale-rev @scale: absorbed: pool, fc1, act, fc2, gate
        # SeBlock 1, FusedConv 0, nodes 6 -> 1, compared 768
    "#]],
    );
}

#[test]
fn se_block_absorbs_residual_add_and_relu() {
    let src = se_src(
        "Relu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node sum = Add(r, y) -> z2\n  node out = Relu(z2) -> o",
    );
    check(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node out = SeBlock(x, w1, b1, w2, b2, r) {act=Relu, gate=Sigmoid, bias1=true, bias2=true, residual=true, post_act=Relu} -> o: f32[N,8,4,4]
          output o
        }
        # fuse/se-residual-act @out: absorbed: pool, fc1, act, fc2, gate, scale, sum
        # SeBlock 1, FusedConv 0, nodes 8 -> 1, compared 768
    "#]],
    );
}

#[test]
fn se_block_absorbs_residual_add_without_activation() {
    let src = se_src(
        "Silu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node sum = Add(y, r) -> z2",
    );
    check(
        &src,
        expect![[r#"
        graph se {
          input x: f32[N,8,4,4]
          input r: f32[N,8,4,4]
          weight w1: f32[2,8,1,1]
          weight b1: f32[2]
          weight w2: f32[8,2,1,1]
          weight b2: f32[8]
          node sum = SeBlock(x, w1, b1, w2, b2, r) {act=Silu, gate=Sigmoid, bias1=true, bias2=true, residual=true} -> z2: f32[N,8,4,4]
          output z2
        }
        # fuse/se-residual @sum: absorbed: pool, fc1, act, fc2, gate, scale
        # SeBlock 1, FusedConv 0, nodes 7 -> 1, compared 768
    "#]],
    );
}

#[test]
fn conv_and_relu_fuse() {
    check(
        r#"graph conv_relu {
  input x: f32[N,3,6,6]
  weight w: f32[4,3,3,3]
  weight b: f32[4]
  node conv = Conv(x, w, b) {strides=[2,2], pads=[1,1,1,1], dilations=[1,1], group=1} -> c
  node relu = Relu(c) -> y
  output y
}"#,
        expect![[r#"
            graph conv_relu {
              input x: f32[N,3,6,6]
              weight w: f32[4,3,3,3]
              weight b: f32[4]
              node relu = FusedConv(x, w, b) {strides=[2,2], pads=[1,1,1,1], dilations=[1,1], group=1, bias=true, act=Relu, residual=false} -> y: f32[N,4,3,3]
              output y
            }
            # fuse/conv-act @relu: absorbed: conv
            # SeBlock 0, FusedConv 1, nodes 2 -> 1, compared 216
        "#]],
    );
}

/// A ResNet basic-block tail after BatchNorm folding: conv, relu, conv, add the block input,
/// relu.
#[test]
fn resnet_tail_fuses_into_two_fused_convs() {
    check(
        r#"graph resnet_tail {
  input x: f32[N,4,5,5]
  weight w1: f32[4,4,3,3]
  weight b1: f32[4]
  weight w2: f32[4,4,3,3]
  weight b2: f32[4]
  node conv1 = Conv(x, w1, b1) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} -> c1
  node relu1 = Relu(c1) -> a1
  node conv2 = Conv(a1, w2, b2) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1} -> c2
  node add = Add(c2, x) -> s
  node relu2 = Relu(s) -> y
  output y
}"#,
        expect![[r#"
            graph resnet_tail {
              input x: f32[N,4,5,5]
              weight w1: f32[4,4,3,3]
              weight b1: f32[4]
              weight w2: f32[4,4,3,3]
              weight b2: f32[4]
              node relu1 = FusedConv(x, w1, b1) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1, bias=true, act=Relu, residual=false} -> a1: f32[N,4,5,5]
              node relu2 = FusedConv(a1, w2, b2, x) {strides=[1,1], pads=[1,1,1,1], dilations=[1,1], group=1, bias=true, residual=true, post_act=Relu} -> y: f32[N,4,5,5]
              output y
            }
            # fuse/conv-act @relu1: absorbed: conv1
            # fuse/conv-residual-act @relu2: absorbed: conv2, add
            # SeBlock 0, FusedConv 2, nodes 5 -> 2, compared 600
        "#]],
    );
}

/// Conv + act + residual add, no activation after the add (MobileNet-style projection
/// with a ReLU6 inside), operands of the add swapped.
#[test]
fn conv_act_residual_without_post_act() {
    check(
        &format!(
            r#"graph proj {{
  input x: f32[N,4,3,3]
  weight w: f32[4,4,1,1]
  node conv = Conv(x, w) {CONV1X1} -> c
  node clip = Clip(c) {{min=0.0, max=6.0}} -> a
  node add = Add(x, a) -> y
  output y
}}"#
        ),
        expect![[r#"
            graph proj {
              input x: f32[N,4,3,3]
              weight w: f32[4,4,1,1]
              node add = FusedConv(x, w, x) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1, bias=false, act=Clip, act_min=0.0, act_max=6.0, residual=true} -> y: f32[N,4,3,3]
              output y
            }
            # fuse/conv-residual-rev @add: absorbed: conv, clip
            # SeBlock 0, FusedConv 1, nodes 3 -> 1, compared 216
        "#]],
    );
}

/// Two SE blocks in a row, with identical shapes: each keeps its own weights and node.
#[test]
fn two_se_blocks_stay_two() {
    let one = |p: &str, x: &str, y: &str| {
        format!(
            r#"  node {p}.pool = GlobalAveragePool({x}) -> {p}.s
  node {p}.fc1 = Conv({p}.s, {p}.w1, {p}.b1) {CONV1X1} -> {p}.z
  node {p}.act = Relu({p}.z) -> {p}.za
  node {p}.fc2 = Conv({p}.za, {p}.w2, {p}.b2) {CONV1X1} -> {p}.e
  node {p}.gate = Sigmoid({p}.e) -> {p}.g
  node {p}.scale = Mul({x}, {p}.g) -> {y}
"#
        )
    };
    let weights = |p: &str| {
        format!(
            "  weight {p}.w1: f32[2,8,1,1]\n  weight {p}.b1: f32[2]\n  weight {p}.w2: f32[8,2,1,1]\n  weight {p}.b2: f32[8]\n"
        )
    };
    let src = format!(
        "graph two {{\n  input x: f32[N,8,4,4]\n{}{}{}{}  output y2\n}}",
        weights("a"),
        weights("b"),
        one("a", "x", "y1"),
        one("b", "y1", "y2")
    );
    let o = fuse(&src);
    assert_eq!(op_count(&o.after, "SeBlock"), 2, "{}", o.text);
    assert_eq!(o.after.node_count(), 2);
    expect![[r#"
        graph two {
          input x: f32[N,8,4,4]
          weight a.w1: f32[2,8,1,1]
          weight a.b1: f32[2]
          weight a.w2: f32[8,2,1,1]
          weight a.b2: f32[8]
          weight b.w1: f32[2,8,1,1]
          weight b.b1: f32[2]
          weight b.w2: f32[8,2,1,1]
          weight b.b2: f32[8]
          node a.scale = SeBlock(x, a.w1, a.b1, a.w2, a.b2) {act=Relu, gate=Sigmoid, bias1=true, bias2=true, residual=false} -> y1: f32[N,8,4,4]
          node b.scale = SeBlock(y1, b.w1, b.b1, b.w2, b.b2) {act=Relu, gate=Sigmoid, bias1=true, bias2=true, residual=false} -> y2: f32[N,8,4,4]
          output y2
        }
        # fuse/se-scale @a.scale: absorbed: a.pool, a.fc1, a.act, a.fc2, a.gate
        # fuse/se-scale @b.scale: absorbed: b.pool, b.fc1, b.act, b.fc2, b.gate
        # SeBlock 2, FusedConv 0, nodes 12 -> 2, compared 768
    "#]].assert_eq(&o.text);
}

/// Every runner's stop reason is reported; a run cut short still leaves a correct graph.
#[test]
fn eqsat_reports_each_rule_set_and_its_stop_reason() {
    let src = se_src(
        "Relu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node sum = Add(y, r) -> z2",
    );
    let o = fuse(&src);
    let reports: Vec<_> =
        o.cx.eqsat
            .iter()
            .map(|r| {
                format!(
                    "{} {} after {} iterations",
                    r.rule_set, r.stop_reason, r.iterations
                )
            })
            .collect();
    expect![[r#"
        [
            "se Saturated after 4 iterations",
            "epilogue Saturated after 3 iterations",
        ]
    "#]]
    .assert_debug_eq(&reports);
    let cx = PassContext {
        limits: EqsatLimits {
            iter_limit: 2,
            ..EqsatLimits::default()
        },
        ..PassContext::default()
    };
    let o = fuse_with(&src, cx);
    assert_eq!(o.cx.eqsat[0].stop_reason, "IterationLimit(2)");
    // Two iterations compose the gate and the scale but not the residual add.
    assert_eq!(op_count(&o.after, "SeBlock"), 1);
    assert_eq!(op_count(&o.after, "Add"), 1, "{}", o.text);
}

/// A graph with nothing to fuse comes back unchanged, dead nodes included.
#[test]
fn nothing_to_fuse_leaves_the_graph_alone() {
    let src = r#"graph plain {
  input x: f32[N,4,3,3]
  node pool = MaxPool(x) {kernel_shape=[2,2], strides=[1,1], pads=[0,0,0,0], dilations=[1,1], ceil_mode=false, count_include_pad=false} -> p
  node dead = Sigmoid(x) -> d
  output p
}"#;
    let g = parse(src);
    let mut after = g.clone();
    let mut cx = PassContext::default();
    Fuse.run(&mut after, &mut cx).expect("fuse succeeds");
    assert_eq!(excite_ir::text::print(&after), excite_ir::text::print(&g));
    assert_eq!(after.node_count(), 2);
    assert!(cx.events.is_empty());
}

/// A dead node survives fusion (removing it is `dce`'s job), and the fused node sits where
/// the root stood.
#[test]
fn dead_nodes_and_untouched_nodes_are_kept() {
    let src = se_src(
        "Relu",
        "Sigmoid",
        (true, true),
        "x, g",
        "  node after = Sigmoid(y) -> o",
    )
    .replace(
        "  node pool",
        "  node dead = HardSwish(r) -> d\n  node pool",
    );
    let o = fuse(&src);
    let names: Vec<String> = o
        .after
        .topo_order()
        .expect("acyclic")
        .into_iter()
        .map(|n| format!("{} {}", o.after.node(n).name, o.after.node(n).op))
        .collect();
    assert_eq!(names, ["dead HardSwish", "scale SeBlock", "after Sigmoid"]);
}

/// A graph input that is also an output stays one; fusing a fused graph again changes nothing.
#[test]
fn input_outputs_survive_and_fusing_twice_is_a_no_op() {
    let src = se_src("Relu", "Sigmoid", (true, true), "x, g", "")
        .replace("output y", "output y\n  output r");
    let o = fuse(&src);
    let outs: Vec<&str> = o
        .after
        .outputs()
        .iter()
        .map(|&v| o.after.value(v).name.as_str())
        .collect();
    assert_eq!(outs, ["y", "r"]);
    let mut again = o.after.clone();
    let mut cx = PassContext::default();
    Fuse.run(&mut again, &mut cx).expect("fuse succeeds");
    assert!(cx.events.is_empty());
    assert_eq!(
        excite_ir::text::print(&again),
        excite_ir::text::print(&o.after)
    );
}

/// A chain of 64 residual blocks, each value read twice: summing child costs as a tree would
/// count the input 2^64 times. Extraction still fuses every block, and builds each once.
#[test]
fn deep_residual_chain_fuses_every_block_once() {
    let mut src = String::from("graph chain {\n  input y0: f32[N,2,2,2]\n");
    for i in 0..64 {
        src.push_str(&format!("  weight w{i}: f32[2,2,1,1]\n"));
    }
    for i in 0..64 {
        let j = i + 1;
        src.push_str(&format!(
            "  node conv{i} = Conv(y{i}, w{i}) {CONV1X1} -> c{i}\n  node add{i} = Add(c{i}, y{i}) -> s{i}\n  node relu{i} = Relu(s{i}) -> y{j}\n"
        ));
    }
    src.push_str("  output y64\n}\n");
    let o = fuse(&src);
    assert_eq!(op_count(&o.after, "FusedConv"), 64, "{}", o.text);
    assert_eq!(o.after.node_count(), 64);
    assert!(o.cx.events.iter().all(|e| e.rule == "conv-residual-act"));
}
