//! Runs the importer on every file of `tests/corpus/onnx/` (written by
//! `scripts/gen_bad_onnx.py`) and checks each error against the table below: its kind and a
//! substring naming the node or tensor at fault. A file without a table entry, or an entry
//! without a file, fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use excite_onnx::{ImportOptions, import};

/// case -> (error kind as `OnnxError::kind` spells it, substring of the message).
const TABLE: &[(&str, &str, &str)] = &[
    (
        "batchnorm_extra_outputs",
        "Unsupported",
        "`bn` (BatchNormalization): the running mean",
    ),
    (
        "batchnorm_training",
        "UnsupportedAttribute",
        "`bn` (BatchNormalization): attribute `training_mode`",
    ),
    (
        "clip_runtime_bound",
        "Unsupported",
        "`clip_rt` (Clip): input `min` must be a constant",
    ),
    (
        "constant_of_shape_over_budget",
        "OverBudget",
        "tensor `big` needs 4398046511104 bytes",
    ),
    (
        "conv_1d",
        "Unsupported",
        "`conv1d` (Conv): only 2-D convolution",
    ),
    (
        "custom_domain_op",
        "UnsupportedOp",
        "`custom`: op `com.example.Relu`",
    ),
    ("cycle", "Ir.Cycle", "node `first` is part of a cycle"),
    (
        "dropout_mask_used",
        "Unsupported",
        "`drop` (Dropout): the mask output `mask` is used",
    ),
    (
        "duplicate_output",
        "Ir.DuplicateOutput",
        "graph output `y` is listed twice",
    ),
    (
        "duplicate_value",
        "Ir.DuplicateValue",
        "value `y` is defined twice (second definition: two)",
    ),
    (
        "external_data",
        "ExternalData",
        "tensor `w` keeps its data in an external file",
    ),
    (
        "float_data_short",
        "Initializer",
        "tensor `b`: float_data has 2 elements",
    ),
    (
        "gather_out_of_range",
        "Fold",
        "`gather_bad` (Gather): cannot fold to a constant: index 7 out of range",
    ),
    (
        "gather_runtime_data",
        "Unsupported",
        "`gather_rt` (Gather): input `data` is computed at run time",
    ),
    (
        "group_not_dividing",
        "Ir.Node",
        "`conv_g` (Conv): group 3 does not divide",
    ),
    (
        "initializer_long",
        "Initializer",
        "tensor `b`: raw_data has 20 bytes",
    ),
    (
        "initializer_over_budget",
        "OverBudget",
        "tensor `big` needs 8589934592 bytes",
    ),
    (
        "initializer_short",
        "Initializer",
        "tensor `b`: raw_data has 12 bytes",
    ),
    (
        "input_over_budget",
        "OverBudget",
        "tensor `x` needs 4398046511104 bytes",
    ),
    ("int_input", "Value", "`x`: element type 7 is not supported"),
    (
        "kernel_shape_mismatch",
        "UnsupportedAttribute",
        "`conv` (Conv): attribute `kernel_shape`",
    ),
    (
        "matmul_mismatch",
        "Ir.Node",
        "`mm` (MatMul): inner dimensions differ",
    ),
    (
        "maxpool_indices",
        "Unsupported",
        "`pool_idx` (MaxPool): the Indices output",
    ),
    (
        "maxpool_storage_order",
        "UnsupportedAttribute",
        "`pool_so` (MaxPool): attribute `storage_order`",
    ),
    ("negative_input_dim", "Value", "`x`: dimension 1 is -3"),
    (
        "negative_pads",
        "UnsupportedAttribute",
        "`conv` (Conv): attribute `pads`",
    ),
    (
        "no_default_opset",
        "Opset",
        "imports no opset of the default domain",
    ),
    ("no_graph", "Model", "the model has no graph"),
    (
        "opset_too_new",
        "Opset",
        "version 26: supported opsets are 11 to 25",
    ),
    (
        "opset_too_old",
        "Opset",
        "version 9: supported opsets are 11 to 25",
    ),
    (
        "overflowing_dims",
        "Initializer",
        "tensor `big`: dimensions [4611686018427387904, 4611686018427387904, 4611686018427387904] overflow",
    ),
    (
        "pool_pads_too_big",
        "Ir.Node",
        "`pool_pad` (MaxPool): pads [3, 3, 3, 3] must be smaller",
    ),
    ("random_bytes", "Decode", "invalid wire type"),
    ("range_over_budget", "OverBudget", "tensor `r` needs"),
    (
        "reducemean_runtime_axes",
        "Unsupported",
        "`mean_rt` (ReduceMean): input `axes` must be a constant",
    ),
    (
        "reshape_batch_moved",
        "Fold",
        "`reshape_n` (Reshape): cannot fold to a constant: target entry 1 is the symbolic batch",
    ),
    (
        "reshape_runtime_shape",
        "Unsupported",
        "`reshape_rt` (Reshape): input `shape` is computed at run time",
    ),
    (
        "reshape_two_inferred",
        "Ir.Node",
        "`reshape_bad` (Reshape): more than one -1",
    ),
    (
        "slice_zero_step",
        "Fold",
        "`slicer` (Slice): cannot fold to a constant: step is 0",
    ),
    (
        "softmax_legacy_axis",
        "Unsupported",
        "`softmax_old` (Softmax): opset 11 Softmax flattens",
    ),
    (
        "string_initializer",
        "Initializer",
        "tensor `s`: data type STRING is not supported",
    ),
    (
        "symbolic_batch_squeezed",
        "Fold",
        "`squeeze_n` (Squeeze): cannot fold to a constant: the value depends on the symbolic batch",
    ),
    (
        "symbolic_inner_dim",
        "Value",
        "`x`: dimension 1 is symbolic (`C`)",
    ),
    ("truncated", "Decode", "buffer underflow"),
    (
        "undefined_graph_output",
        "Ir.UndefinedOutput",
        "graph output `nowhere` is not defined",
    ),
    (
        "undefined_input",
        "Ir.UndefinedValue",
        "node `adder` reads `ghost`",
    ),
    (
        "unknown_attribute",
        "UnsupportedAttribute",
        "`relu_attr` (Relu): attribute `alpha`: unknown attribute",
    ),
    (
        "unsupported_op",
        "UnsupportedOp",
        "`tanh_1`: op `Tanh` (opset 17) is not supported",
    ),
    (
        "wrong_attribute_type",
        "UnsupportedAttribute",
        "`flat` (Flatten): attribute `axis`: expected type INT, got FLOAT",
    ),
    (
        "zero_strides",
        "UnsupportedAttribute",
        "`conv` (Conv): attribute `strides`: must be two positive",
    ),
];

#[test]
fn corpus_errors_match_the_table() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/onnx");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("corpus dir exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().is_some_and(|e| e == "onnx") {
            let case = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            files.insert(case, path);
        }
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (case, kind, needle) in TABLE {
        let Some(path) = files.remove(*case) else {
            failures.push(format!("{case}: in the table but no file {case}.onnx"));
            continue;
        };
        let bytes = std::fs::read(&path).expect("readable corpus file");
        match import(&bytes, &ImportOptions::default()) {
            Ok(_) => failures.push(format!("{case}: imported without error")),
            Err(e) => {
                let msg = e.to_string();
                if e.kind() != *kind || !msg.contains(needle) {
                    failures.push(format!(
                        "{case}: expected {kind} containing {needle:?}, got {}: {msg}",
                        e.kind()
                    ));
                }
            }
        }
        checked += 1;
    }
    for case in files.keys() {
        failures.push(format!("{case}.onnx has no table entry"));
    }
    println!("checked {checked} corpus files");
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(checked, TABLE.len());
    assert!(checked >= 40, "the corpus shrank to {checked} cases");
}
