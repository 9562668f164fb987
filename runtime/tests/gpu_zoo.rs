//! Every zoo network at a small input (64x64; 96x96 for the Inception-ResNets), batch 2, after
//! the full pass pipeline: the GPU (lavapipe in CI) agrees with the reference interpreter, and
//! every SE block ran as a fused kernel (in the bottleneck networks, folded into its conv).

mod gpu_common;

use std::collections::HashMap;

use excite_ir::Op;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Checks zoo network `name`; `folded`: the SE blocks the WGSL backend must fold into the
/// conv feeding them (`None`: not checked).
fn check_model(name: &str, seed: u64, folded: Option<usize>) -> bool {
    let size = if name.contains("inception-resnet") {
        96
    } else {
        64
    };
    let opts = excite_zoo::BuildOptions {
        input_size: Some(size),
        classes: 10,
        seed,
    };
    let g = excite_zoo::build(name, &opts).unwrap_or_else(|e| panic!("{e}"));
    let g = excite_passes::optimize(g, &excite_passes::Options::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .graph;
    let ses = g
        .node_ids()
        .filter(|&n| matches!(g.node(n).op, Op::SeBlock(_)))
        .count();
    let expected = excite_zoo::list()
        .iter()
        .find(|m| m.name == name)
        .map_or(0, |m| m.se_blocks);
    assert_eq!(ses, expected, "{name}: fused SE blocks");
    let p = excite_wgsl::compile(&g, 2, &excite_wgsl::Limits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    if let Some(f) = folded {
        assert_eq!(
            p.folded_se.len(),
            f,
            "{name}: SE blocks folded into their conv"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..2 * 3 * size * size)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let x = excite_ir::Tensor::new(vec![2, 3, size, size], data).expect("input tensor");
    let inputs = HashMap::from([("input".to_string(), x)]);
    let ran = gpu_common::check(&g, &inputs, 2, 1e-4);
    if ran {
        eprintln!(
            "{name}: matched the interpreter with {ses} fused SE blocks, {} folded",
            p.folded_se.len()
        );
    }
    ran
}

#[test]
fn se_resnet50_matches_the_interpreter() {
    check_model("se-resnet50", 1, Some(16));
}

#[test]
fn se_resnext50_matches_the_interpreter() {
    check_model("se-resnext50-32x4d", 2, Some(16));
}

#[test]
fn mobile_se_networks_match_the_interpreter() {
    let ran = ["efficientnet-b0", "mobilenetv3-large", "regnety-800mf"]
        .iter()
        .enumerate()
        .filter(|&(i, m)| check_model(m, 10 + i as u64, None))
        .count();
    eprintln!("compared {ran} mobile networks");
}

#[test]
fn se_bn_inception_matches_the_interpreter() {
    check_model("se-bn-inception", 3, None);
}

/// The networks the tests above do not cover, baselines included.
#[test]
fn every_other_zoo_network_matches_the_interpreter() {
    let covered = [
        "se-resnet50",
        "se-resnext50-32x4d",
        "efficientnet-b0",
        "mobilenetv3-large",
        "regnety-800mf",
        "se-bn-inception",
    ];
    let rest: Vec<_> = excite_zoo::list()
        .iter()
        .filter(|m| !covered.contains(&m.name))
        .collect();
    let ran = rest
        .iter()
        .enumerate()
        .filter(|&(i, m)| check_model(m.name, 100 + i as u64, None))
        .count();
    eprintln!("compared {ran} of {} further networks", rest.len());
    assert!(
        ran == rest.len() || ran == 0,
        "some networks ran, some did not"
    );
}
