//! Build options and errors: seeds, class counts, input sizes, unknown names.

use excite_ir::Dim;
use excite_ir::stats::trainable_params;
use excite_zoo::{BuildOptions, ZooError, build, list};
use expect_test::expect;

fn small(seed: u64) -> BuildOptions {
    BuildOptions {
        seed,
        input_size: Some(64),
        ..BuildOptions::default()
    }
}

#[test]
fn unknown_name_lists_the_zoo() {
    let err = build("resnet51", &BuildOptions::default()).expect_err("no such model");
    expect![[r#"unknown model `resnet51`; the zoo has: resnet50, se-resnet50, resnet50-v1, se-resnet50-v1, resnet101, se-resnet101, resnet152, se-resnet152, resnext50-32x4d, se-resnext50-32x4d, resnext101-32x4d, se-resnext101-32x4d, senet154, inception-resnet-v2, se-inception-resnet-v2, bn-inception, se-bn-inception, efficientnet-b0, mobilenetv3-large, regnety-800mf"#]]
    .assert_eq(&err.to_string());
    assert_eq!(list().len(), 20);
}

#[test]
fn zero_classes_or_size_is_refused() {
    let opts = BuildOptions {
        classes: 0,
        ..small(0)
    };
    let err = build("efficientnet-b0", &opts).expect_err("no classes");
    expect!["model `efficientnet-b0`: input size (64) and classes (0) must be positive"]
        .assert_eq(&err.to_string());
    let opts = BuildOptions {
        input_size: Some(0),
        ..small(0)
    };
    assert!(matches!(
        build("resnet50", &opts),
        Err(ZooError::Options { .. })
    ));
}

#[test]
fn too_small_an_input_is_a_verify_error_naming_the_layer() {
    let opts = BuildOptions {
        input_size: Some(64),
        ..BuildOptions::default()
    };
    match build("inception-resnet-v2", &opts) {
        Err(ZooError::Verify {
            model,
            input_size,
            source,
        }) => {
            assert_eq!((model.as_str(), input_size), ("inception-resnet-v2", 64));
            let first = source.0.first().map(|e| e.to_string()).unwrap_or_default();
            assert!(first.contains("mixed_7a"), "{first}");
        }
        other => panic!("expected a verify error, got {other:?}"),
    }
}

#[test]
fn classes_resize_only_the_classifier() {
    let opts = BuildOptions {
        classes: 10,
        ..small(0)
    };
    let g = build("efficientnet-b0", &opts).expect("builds");
    let out = g.value(g.outputs()[0]);
    assert_eq!(
        out.ty.as_ref().map(|t| t.shape.0.clone()),
        Some(vec![Dim::Batch, Dim::Fixed(10)])
    );
    // 5,288,548 with 1000 classes; the classifier loses 990 rows of 1280 weights + 1 bias.
    assert_eq!(trainable_params(&g), 5_288_548 - 990 * 1281);
}

#[test]
fn the_seed_picks_the_weights() {
    let a = build("mobilenetv3-large", &small(1)).expect("builds");
    let b = build("mobilenetv3-large", &small(1)).expect("builds");
    let c = build("mobilenetv3-large", &small(2)).expect("builds");
    let (mut same, mut differ) = (0, 0);
    for ((_, ta), ((_, tb), (_, tc))) in a.weights().zip(b.weights().zip(c.weights())) {
        assert_eq!(ta, tb, "same seed, same weights");
        if ta.numel() > 1 {
            same += 1;
            if ta != tc {
                differ += 1;
            }
        }
    }
    assert!(same > 100, "compared {same} tensors");
    assert_eq!(differ, same, "another seed changes every tensor");
}

#[test]
fn input_size_does_not_change_parameters() {
    let at_64 = build("se-resnet50", &small(0)).expect("builds");
    let at_160 = build(
        "se-resnet50",
        &BuildOptions {
            input_size: Some(160),
            ..BuildOptions::default()
        },
    )
    .expect("builds");
    assert_eq!(trainable_params(&at_64), trainable_params(&at_160));
    assert_eq!(trainable_params(&at_64), 28_088_024);
}
