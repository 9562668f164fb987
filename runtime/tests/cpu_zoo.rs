//! Every zoo network, optimised by `excite_passes::optimize`, compiled for the CPU backend and
//! compared with the reference interpreter on the same optimised graph (relative L2 ≤ 1e-4) at a
//! reduced input size and batch 2.

use std::collections::HashMap;

use excite_ir::{Graph, Tensor, interp};
use excite_runtime::cpu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_inputs(g: &Graph, batch: usize, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.inputs()
        .iter()
        .map(|&v| {
            let shape = g
                .value(v)
                .ty
                .as_ref()
                .expect("typed input")
                .shape
                .resolve(batch);
            let n = shape.iter().product();
            let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            (
                g.value(v).name.clone(),
                Tensor::new(shape, data).expect("sized"),
            )
        })
        .collect()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Zoo network `model` at `size` x `size` (10 classes), optimised.
fn optimized(model: &str, size: usize) -> Graph {
    let opts = excite_zoo::BuildOptions {
        input_size: Some(size),
        classes: 10,
        ..Default::default()
    };
    let g = excite_zoo::build(model, &opts).expect("zoo build");
    excite_passes::optimize(g, &excite_passes::Options::default())
        .expect("optimize")
        .graph
}

/// Compiles `model` at `size`, runs both backends, returns the worst relative L2 error. (Two
/// images on two threads: the per-image mode.)
fn check(model: &str, size: usize, batch: usize) -> f64 {
    check_threads(model, size, batch, 2, true).0
}

/// As [`check`] on `threads` threads, the per-image mode allowed or not (asserting whether it
/// ran); also returns the program's `(node, op, kernel)` steps.
fn check_threads(
    model: &str,
    size: usize,
    batch: usize,
    threads: usize,
    per_image: bool,
) -> (f64, Vec<(String, &'static str, String)>) {
    let g = optimized(model, size);
    let prog = cpu::compile_with(&g, batch, threads, per_image).expect("compile");
    let expect_per_image = per_image && batch > 1 && batch.is_multiple_of(threads);
    assert_eq!(
        prog.per_image(),
        expect_per_image,
        "{model}: per-image mode"
    );
    let inputs = random_inputs(&g, batch, 7);
    let want = interp::run(&g, &inputs).expect("interp");
    let got = prog.run(&inputs).expect("cpu run");
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for ((gn, gt), (wn, wt)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_eq!(gt.shape(), wt.shape(), "{model}: output {gn}");
        assert!(
            wt.data().iter().any(|v| *v != 0.0),
            "{model}: all-zero reference"
        );
        worst = worst.max(rel_l2(gt.data(), wt.data()));
    }
    assert!(worst <= 1e-4, "{model}: relative L2 {worst:e}");
    (worst, prog.steps())
}

#[test]
fn se_blocks_fold_into_or_squeeze_in_the_producing_conv() {
    // Without the per-image mode, one thread runs all images in one kernel call, and two
    // threads one image per task. With three images on two threads, each convolution runs two
    // images side by side and the third split across both threads; one image on two threads
    // takes the split paths (SE gates by row ranges, SE blocks by channel ranges). Four
    // images on two threads run in the per-image mode (each image's program on one thread).
    let cases = [
        (1, 2, false),
        (2, 2, false),
        (2, 3, true),
        (2, 1, true),
        (2, 4, true),
    ];
    for (threads, batch, per_image) in cases {
        let (e, steps) = check_threads("se-resnet50", 64, batch, threads, per_image);
        // Every SE block of SE-ResNet-50 reads a linear 1x1 conv (conv3, BN folded): all 16
        // fold into it, so none keeps a step of its own; each gate reads the channel means
        // the 3x3 conv before (conv2) wrote in its epilogue (`_presq`, `_means`).
        let folded = steps.iter().filter(|s| s.2.contains("se_gate_")).count();
        let gated = steps.iter().filter(|s| s.2.contains("_gate_add")).count();
        let presq = steps.iter().filter(|s| s.2.contains("_presq")).count();
        let means = steps.iter().filter(|s| s.2.contains("_means")).count();
        let se_steps = steps.iter().filter(|s| s.1 == "SeBlock").count();
        let fused_se = steps.iter().filter(|s| s.1 == "FusedConv+SeBlock").count();
        assert_eq!(fused_se, folded, "{threads} threads: {steps:?}");
        let counts = (folded, gated, presq, means, se_steps);
        assert_eq!(counts, (16, 16, 16, 16, 0), "{threads} threads: {steps:?}");
        // At 64x64 the first stage's 3x3 convolutions (16x16 outputs) run by Winograd.
        let wino = steps.iter().filter(|s| s.2.contains("winograd")).count();
        assert_eq!(wino, 3, "{threads} threads: {steps:?}");
        assert!(e <= 1e-4);
    }
}

/// Batch 1 on 2 threads with the threads taken as far apart (every GEMM reading its operands
/// in memory order first, pooling split by halves) and as sharing a cache, against the
/// interpreter: the two code paths the per-run placement probe chooses between.
#[test]
fn both_placements_match_the_interpreter() {
    let g = optimized("se-resnet50", 64);
    let inputs = random_inputs(&g, 1, 11);
    let want = interp::run(&g, &inputs).expect("interp");
    let mut compared = 0;
    for placement in [cpu::Placement::Far, cpu::Placement::Shared] {
        let mut prog = cpu::compile_with(&g, 1, 2, true).expect("compile");
        prog.set_placement(placement);
        let got = prog.run(&inputs).expect("cpu run");
        for ((gn, gt), (wn, wt)) in got.iter().zip(&want) {
            assert_eq!(gn, wn);
            let e = rel_l2(gt.data(), wt.data());
            assert!(e <= 1e-4, "{placement:?}: output {gn}: relative L2 {e:e}");
            compared += 1;
        }
    }
    assert_eq!(compared, 2);
}

#[test]
fn every_zoo_network_matches_the_interpreter() {
    let mut checked = 0;
    for info in excite_zoo::list() {
        let size = if info.name.contains("inception-resnet") {
            96
        } else {
            64
        };
        let e = check(info.name, size, 2);
        eprintln!("{}: rel L2 {e:e}", info.name);
        checked += 1;
    }
    assert_eq!(checked, excite_zoo::list().len());
    assert!(checked >= 20, "only {checked} networks");
}
