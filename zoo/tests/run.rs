//! Zoo networks run through the reference interpreter on random inputs (small resolutions,
//! batch 2): the seeded weights must keep activations healthy through every block, so logits
//! are finite with a standard deviation in [1e-2, 1e2], and they depend on the input.

use std::collections::HashMap;

use excite_ir::{Tensor, interp};
use excite_zoo::{BuildOptions, build};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn input(batch: usize, size: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = batch * 3 * size * size;
    let data = (0..n).map(|_| rng.random_range(-1.7f32..1.7)).collect();
    Tensor::new(vec![batch, 3, size, size], data).expect("input shape")
}

fn logits(name: &str, x: Tensor) -> Tensor {
    let size = x.shape()[2];
    let opts = BuildOptions {
        seed: 3,
        input_size: Some(size),
        ..BuildOptions::default()
    };
    let g = build(name, &opts).expect("builds");
    let out = interp::run(&g, &HashMap::from([("input".to_string(), x)])).expect("runs");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "logits");
    out.into_iter().next().map(|(_, t)| t).expect("one output")
}

/// Runs `name` at `size` on a batch of two and checks the logits' health.
fn check_healthy(name: &str, size: usize) {
    let y = logits(name, input(2, size, 11));
    assert_eq!(y.shape(), &[2, 1000], "{name}");
    let d = y.data();
    assert!(d.iter().all(|v| v.is_finite()), "{name}: non-finite logits");
    let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
    let var = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d.len() as f64;
    let std = var.sqrt();
    assert!((1e-2..=1e2).contains(&std), "{name}: logits std {std}");
    // The two samples' logits differ by a visible fraction of their spread.
    let diff = d[..1000]
        .iter()
        .zip(&d[1000..])
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    assert!(
        diff > 1e-2 * std,
        "{name}: logits do not depend on the input ({diff})"
    );
}

#[test]
fn se_resnet50_is_healthy() {
    check_healthy("se-resnet50", 64);
}

#[test]
fn deep_resnets_are_healthy() {
    check_healthy("resnet152", 32);
    check_healthy("senet154", 32);
}

#[test]
fn inception_networks_are_healthy() {
    check_healthy("se-bn-inception", 64);
    // Inception-ResNet-v2's unpadded stem needs at least ~75 pixels.
    check_healthy("se-inception-resnet-v2", 96);
}

#[test]
fn mobile_networks_are_healthy() {
    check_healthy("efficientnet-b0", 64);
    check_healthy("mobilenetv3-large", 64);
    check_healthy("regnety-800mf", 64);
}

#[test]
fn samples_do_not_mix_across_the_batch() {
    let pair = input(2, 32, 5);
    let first =
        Tensor::new(vec![1, 3, 32, 32], pair.data()[..3 * 32 * 32].to_vec()).expect("slice");
    let both = logits("se-resnext50-32x4d", pair);
    let alone = logits("se-resnext50-32x4d", first);
    let worst = alone
        .data()
        .iter()
        .zip(&both.data()[..1000])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "sample 0 alone vs in a batch: {worst}");
}
