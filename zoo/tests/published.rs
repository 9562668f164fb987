//! Every zoo network against its published numbers: trainable parameters (exactly), GMACs
//! (within 3%), and the number of SE blocks, counted from the graph's structure rather than
//! taken from the zoo's own table. All networks are built once, here, at their default input
//! size; the other test files use small inputs.

use std::collections::HashMap;

use excite_ir::stats::{macs, op_histogram, trainable_params};
use excite_ir::{Dim, Graph, Op, ValueId};
use excite_zoo::{BuildOptions, build, list};

/// Counts squeeze-and-excitation blocks by shape: a `Mul` of some `x` by a gate (`Sigmoid` or
/// `HardSigmoid`) whose input chain leads back, through single-input activations and 1x1
/// convolutions, to a `GlobalAveragePool` of that same `x`.
fn structural_se_blocks(g: &Graph) -> usize {
    let producer_op = |v: ValueId| g.producer(v).map(|n| g.node(n));
    g.node_ids()
        .map(|id| g.node(id))
        .filter(|n| matches!(n.op, Op::Mul) && n.inputs.len() == 2)
        .filter(|mul| {
            (0..2).any(|gi| {
                let x = mul.inputs[1 - gi];
                let Some(gate) = producer_op(mul.inputs[gi]) else {
                    return false;
                };
                if !matches!(gate.op, Op::Sigmoid | Op::HardSigmoid { .. }) {
                    return false;
                }
                let mut v = gate.inputs[0];
                for _ in 0..8 {
                    let Some(n) = producer_op(v) else {
                        return false;
                    };
                    match n.op {
                        Op::GlobalAveragePool => return n.inputs[0] == x,
                        Op::Conv(_) | Op::Relu | Op::Silu | Op::HardSwish => v = n.inputs[0],
                        _ => return false,
                    }
                }
                false
            })
        })
        .count()
}

/// `(baseline, SE variant)` pairs: SE adds parameters and under 1% of the computation (the
/// seed's claim).
const SE_PAIRS: [(&str, &str); 8] = [
    ("resnet50", "se-resnet50"),
    ("resnet50-v1", "se-resnet50-v1"),
    ("resnet101", "se-resnet101"),
    ("resnet152", "se-resnet152"),
    ("resnext50-32x4d", "se-resnext50-32x4d"),
    ("resnext101-32x4d", "se-resnext101-32x4d"),
    ("inception-resnet-v2", "se-inception-resnet-v2"),
    ("bn-inception", "se-bn-inception"),
];

#[test]
fn every_network_matches_its_published_numbers() {
    let mut measured: HashMap<&str, (u64, u64)> = HashMap::new();
    let (mut params_checked, mut gmacs_checked) = (0, 0);
    for m in list() {
        let g = build(m.name, &BuildOptions::default()).expect("builds and verifies");
        let params = trainable_params(&g);
        let mac = macs(&g, 1).expect("typed graph");
        if let Some(want) = m.expected_params {
            assert_eq!(params, want, "{}: trainable parameters", m.name);
            params_checked += 1;
        }
        if let Some(want) = m.expected_gmacs {
            let got = mac as f64 / 1e9;
            assert!(
                (got / want - 1.0).abs() <= 0.03,
                "{}: {got:.3} GMACs, published {want}",
                m.name
            );
            gmacs_checked += 1;
        }
        assert_eq!(
            structural_se_blocks(&g),
            m.se_blocks,
            "{}: SE blocks in the graph",
            m.name
        );
        // The SE count of the table is also the number of sigmoid-family gates: no other gate.
        let h = op_histogram(&g);
        let gates = h.get("Sigmoid").unwrap_or(&0) + h.get("HardSigmoid").unwrap_or(&0);
        assert_eq!(gates, m.se_blocks, "{}: gates", m.name);
        // Input and output as documented.
        let input = g.value(g.inputs()[0]);
        assert_eq!(input.name, "input");
        let s = m.input_size;
        let want_in = vec![Dim::Batch, Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)];
        assert_eq!(input.ty.as_ref().map(|t| t.shape.0.clone()), Some(want_in));
        let out = g.value(g.outputs()[0]);
        assert_eq!(out.name, "logits");
        let want_out = vec![Dim::Batch, Dim::Fixed(1000)];
        assert_eq!(
            out.ty.as_ref().map(|t| t.shape.0.clone()),
            Some(want_out),
            "{}",
            m.name
        );
        measured.insert(m.name, (params, mac));
    }
    // Every network in SPEC.md's table with a parameter count, plus the two v1 ResNet-50s.
    assert_eq!(params_checked, 17);
    assert_eq!(gmacs_checked, 19);
    for (base, se) in SE_PAIRS {
        let (bp, bm) = measured[base];
        let (sp, sm) = measured[se];
        assert!(sp > bp, "{se} has more parameters than {base}");
        assert!(
            sm > bm && (sm as f64) < bm as f64 * 1.01,
            "{se}: {sm} MACs vs {bm}"
        );
    }
}

#[test]
fn weights_use_timm_state_dict_names() {
    let opts = BuildOptions {
        input_size: Some(96),
        ..BuildOptions::default()
    };
    let cases = [
        ("se-resnet50", "layer1.0.se.fc1.weight", vec![16, 256, 1, 1]),
        ("se-resnet50", "layer4.2.bn3.running_var", vec![2048]),
        (
            "se-resnet50",
            "layer2.0.downsample.0.weight",
            vec![512, 256, 1, 1],
        ),
        ("se-resnet50", "fc.weight", vec![1000, 2048]),
        (
            "senet154",
            "layer3.0.downsample.0.weight",
            vec![1024, 512, 3, 3],
        ),
        ("senet154", "layer1.0.conv2.weight", vec![256, 2, 3, 3]),
        (
            "efficientnet-b0",
            "blocks.1.0.se.conv_reduce.weight",
            vec![4, 96, 1, 1],
        ),
        (
            "mobilenetv3-large",
            "blocks.2.0.se.conv_reduce.weight",
            vec![24, 72, 1, 1],
        ),
        ("regnety-800mf", "s2.b1.se.fc1.weight", vec![16, 128, 1, 1]),
        (
            "regnety-800mf",
            "s2.b1.conv2.conv.weight",
            vec![128, 16, 3, 3],
        ),
        (
            "se-inception-resnet-v2",
            "repeat_1.0.se.fc2.bias",
            vec![1088],
        ),
        (
            "se-bn-inception",
            "inception_5b_se.fc1.weight",
            vec![64, 1024, 1, 1],
        ),
    ];
    let mut graphs: HashMap<&str, Graph> = HashMap::new();
    for (model, weight, shape) in &cases {
        let g = graphs
            .entry(model)
            .or_insert_with(|| build(model, &opts).expect("builds"));
        let v = g
            .find_value(weight)
            .unwrap_or_else(|| panic!("{model} has no `{weight}`"));
        let t = g
            .value(v)
            .weight()
            .unwrap_or_else(|| panic!("`{weight}` is not a weight"));
        assert_eq!(t.shape(), shape.as_slice(), "{model}: {weight}");
    }
    assert_eq!(graphs.len(), 7);
}
