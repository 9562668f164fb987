//! Fusion of every zoo network: after `excite_passes::optimize` the number of fused SE blocks
//! equals the network's SE block count (`ModelInfo::se_blocks`, from SPEC.md), and the kernel
//! count drops. For a representative subset the optimised graph is also run in the interpreter
//! against the unfused one (relative L2 <= 1e-4 on random inputs). Networks are built small
//! (64x64, 96x96 for the Inception-ResNets, whose unpadded stem needs more) to keep CI fast.

use std::time::Instant;

use excite_ir::Graph;
use excite_passes::metrics::{bytes_moved, kernel_count, se_blocks};
use excite_passes::{Options, optimize};
use excite_tests::compare::{MODEL_REL_L2, rel_l2};
use excite_tests::filetest::random_inputs;
use excite_zoo::{BuildOptions, build, list};

/// Networks whose outputs are compared, with the batch size (2 where the run is cheap, so
/// that per-sample gates are checked too).
const COMPARED: [(&str, usize); 9] = [
    ("resnet50", 1),
    ("se-resnet50", 1),
    ("se-resnext50-32x4d", 1),
    ("efficientnet-b0", 2),
    ("mobilenetv3-large", 2),
    ("regnety-800mf", 2),
    ("se-bn-inception", 1),
    ("se-inception-resnet-v2", 1),
    ("senet154", 1),
];

fn input_size(name: &str) -> usize {
    if name.contains("inception-resnet") {
        96
    } else {
        64
    }
}

fn build_small(name: &str) -> Graph {
    let opts = BuildOptions {
        input_size: Some(input_size(name)),
        ..BuildOptions::default()
    };
    build(name, &opts).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_zoo_network_fuses_its_se_blocks() {
    let mut table = format!(
        "{:<24} {:>11} {:>8} {:>16} {:>20} {:>10}\n",
        "network", "SE expected", "fused", "kernels", "MB moved (batch 1)", "optimize"
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for m in list() {
        let g = build_small(m.name);
        let (before, bytes_before) = (kernel_count(&g), bytes_moved(&g, 1));
        let t = Instant::now();
        let opt = match optimize(g, &Options::default()) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{}: optimize: {e}", m.name));
                continue;
            }
        };
        let time = t.elapsed();
        let (fused, after) = (se_blocks(&opt.graph), kernel_count(&opt.graph));
        let bytes_after = bytes_moved(&opt.graph, 1);
        table += &format!(
            "{:<24} {:>11} {:>8} {:>7} -> {:<6} {:>9.2} -> {:<7.2} {:>8.1?}\n",
            m.name,
            m.se_blocks,
            fused,
            before,
            after,
            bytes_before as f64 / 1e6,
            bytes_after as f64 / 1e6,
            time
        );
        if fused != m.se_blocks {
            failures.push(format!(
                "{}: {fused} SE blocks fused, expected {}",
                m.name, m.se_blocks
            ));
        }
        if after >= before {
            failures.push(format!(
                "{}: kernel count did not drop ({before} -> {after})",
                m.name
            ));
        }
        if bytes_after > bytes_before {
            failures.push(format!(
                "{}: estimated bytes moved grew ({bytes_before} -> {bytes_after})",
                m.name
            ));
        }
        checked += 1;
    }
    println!("{table}{checked} networks optimised");
    assert!(checked > 0, "no network optimised");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn fused_zoo_networks_compute_the_same() {
    let mut compared = 0;
    for (name, batch) in COMPARED {
        let g = build_small(name);
        let opt = optimize(g.clone(), &Options::default())
            .unwrap_or_else(|e| panic!("{name}: optimize: {e}"));
        let inputs = random_inputs(&g, batch, 0x200).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = excite_ir::interp::run(&g, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = excite_ir::interp::run(&opt.graph, &inputs)
            .unwrap_or_else(|e| panic!("{name}: optimised: {e}"));
        assert_eq!(want.len(), got.len(), "{name}: number of outputs");
        for ((wn, w), (gn, a)) in want.iter().zip(&got) {
            assert_eq!(wn, gn, "{name}: output names");
            let err = rel_l2(a, w).unwrap_or_else(|e| panic!("{name}: `{wn}`: {e}"));
            println!(
                "{name:<24} batch {batch} `{wn}` {:?} rel L2 {err:.2e}",
                w.shape()
            );
            assert!(
                err <= MODEL_REL_L2,
                "{name}: output `{wn}` has relative L2 error {err:.3e} > {MODEL_REL_L2:e}"
            );
            compared += 1;
        }
    }
    println!(
        "{compared} outputs compared over {} networks",
        COMPARED.len()
    );
    assert_eq!(compared, COMPARED.len());
}
