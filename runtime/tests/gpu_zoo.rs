//! Zoo SE networks at 64x64, batch 2, after the full pass pipeline: the GPU (lavapipe in CI)
//! agrees with the reference interpreter, and every SE block ran as a fused kernel.

mod gpu_common;

use std::collections::HashMap;

use excite_ir::Op;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn check_model(name: &str, seed: u64) -> bool {
    let opts = excite_zoo::BuildOptions {
        input_size: Some(64),
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
    assert!(ses > 0, "{name}: no SE block was fused");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..2 * 3 * 64 * 64)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let x = excite_ir::Tensor::new(vec![2, 3, 64, 64], data).expect("input tensor");
    let inputs = HashMap::from([("input".to_string(), x)]);
    let ran = gpu_common::check(&g, &inputs, 2, 1e-4);
    if ran {
        eprintln!("{name}: matched the interpreter with {ses} fused SE blocks");
    }
    ran
}

#[test]
fn se_resnet50_matches_the_interpreter() {
    check_model("se-resnet50", 1);
}

#[test]
fn se_resnext50_matches_the_interpreter() {
    check_model("se-resnext50-32x4d", 2);
}

#[test]
fn mobile_se_networks_match_the_interpreter() {
    let ran = ["efficientnet-b0", "mobilenetv3-large", "regnety-800mf"]
        .iter()
        .enumerate()
        .filter(|&(i, m)| check_model(m, 10 + i as u64))
        .count();
    eprintln!("compared {ran} mobile networks");
}

#[test]
fn se_bn_inception_matches_the_interpreter() {
    check_model("se-bn-inception", 3);
}
