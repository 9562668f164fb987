//! The `fuse` pass alone on every zoo network: the number of `SeBlock` nodes equals the
//! network's SE block count, the kernel count drops, and on the smaller SE networks the fused
//! graph computes what the unfused one does. The zoo graphs are canonical except for their
//! BatchNorms, which block conv epilogues but not the SE blocks (their FCs are biased 1x1
//! convolutions). Also times SENet-154 (run with `--release --nocapture` for the number that
//! counts).

mod fuse_support;

use std::time::Instant;

use excite_passes::{Pass, PassContext, fuse::Fuse};
use excite_zoo::{BuildOptions, build, list};
use fuse_support::{compare, op_count};

/// Input size for a network: small, but large enough for its unpadded stems.
fn size(name: &str) -> usize {
    if name.contains("inception-resnet") {
        96
    } else {
        64
    }
}

#[test]
fn every_zoo_network_fuses_each_se_block() {
    let mut checked = 0;
    let mut report = String::new();
    for info in list() {
        let opts = BuildOptions {
            input_size: Some(size(info.name)),
            ..BuildOptions::default()
        };
        let g = build(info.name, &opts).expect("zoo network builds");
        let mut fused = g.clone();
        let mut cx = PassContext::default();
        let t = Instant::now();
        Fuse.run(&mut fused, &mut cx).expect("fuse succeeds");
        let took = t.elapsed();
        excite_ir::verify::verify(&mut fused).expect("the fused graph verifies");
        let se = op_count(&fused, "SeBlock");
        assert_eq!(se, info.se_blocks, "{}", info.name);
        assert_eq!(
            cx.events
                .iter()
                .filter(|e| e.rule.starts_with("se-"))
                .count(),
            se,
            "{}: one event per SE block",
            info.name
        );
        for r in &cx.eqsat {
            assert_eq!(r.stop_reason, "Saturated", "{} / {}", info.name, r.rule_set);
        }
        if info.se_blocks > 0 {
            assert!(fused.node_count() < g.node_count(), "{}", info.name);
        }
        report.push_str(&format!(
            "{:<24} SE {:>2}  nodes {:>4} -> {:>4}  {:?}\n",
            info.name,
            se,
            g.node_count(),
            fused.node_count(),
            took
        ));
        checked += 1;
    }
    eprintln!("{report}");
    assert_eq!(checked, list().len());
    assert!(checked >= 20);
}

/// The fused graph of the small SE networks computes the same as the unfused one.
#[test]
fn fused_zoo_networks_match_the_unfused_ones() {
    let mut compared = 0;
    for (name, size) in [
        ("mobilenetv3-large", 32),
        ("se-resnet50", 32),
        ("efficientnet-b0", 32),
    ] {
        let opts = BuildOptions {
            input_size: Some(size),
            classes: 10,
            ..BuildOptions::default()
        };
        let g = build(name, &opts).expect("zoo network builds");
        let mut fused = g.clone();
        Fuse.run(&mut fused, &mut PassContext::default())
            .expect("fuse succeeds");
        excite_ir::verify::verify(&mut fused).expect("the fused graph verifies");
        assert!(op_count(&fused, "SeBlock") > 0, "{name}");
        compared += compare(&g, &fused);
    }
    assert_eq!(
        compared,
        3 * fuse_support::BATCH * 10 * fuse_support::SEEDS as usize
    );
}

#[test]
fn senet154_fuses_quickly() {
    let g = build("senet154", &BuildOptions::default()).expect("senet154 builds");
    let mut fused = g.clone();
    let mut cx = PassContext::default();
    let t = Instant::now();
    Fuse.run(&mut fused, &mut cx).expect("fuse succeeds");
    let took = t.elapsed();
    assert_eq!(op_count(&fused, "SeBlock"), 50);
    eprintln!(
        "senet154: {} nodes -> {}, fuse took {took:?}; {:?}",
        g.node_count(),
        fused.node_count(),
        cx.eqsat
    );
}
