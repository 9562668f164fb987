//! Mutated bytes of a valid model never panic the importer: each mutant imports or returns an
//! error. The seed model exercises initializers, a folded shape subgraph, Conv and pooling so
//! that mutations reach deep into the importer rather than failing at the first byte.

mod common;

use common::*;
use excite_onnx::{ImportOptions, import};
use proptest::prelude::*;

fn seed_model() -> Vec<u8> {
    M::new(13)
        .input("x", &[-1, 2, 6, 6])
        .output("y")
        .init(f32_raw("w", &[4, 2, 3, 3], &data(72, 1)))
        .init(f32_typed("b", &[4], &data(4, 2)))
        .init(i64_init("i0", &[1], &[0]))
        .init(i64_init("m1", &[1], &[-1]))
        .init(f32_raw("six", &[], &[6.0]))
        .node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            &["c"],
            vec![a_ints("pads", &[1, 1, 1, 1]), a_ints("strides", &[2, 2])],
        )
        .node("Clip", "clip", &["c", "", "six"], &["r"], vec![])
        .node(
            "MaxPool",
            "pool",
            &["r"],
            &["p"],
            vec![a_ints("kernel_shape", &[2, 2]), a_int("ceil_mode", 1)],
        )
        .node("Shape", "shape", &["p"], &["s"], vec![])
        .node("Gather", "gather", &["s", "i0"], &["n"], vec![])
        .node(
            "Concat",
            "cat",
            &["n", "m1"],
            &["t"],
            vec![a_int("axis", 0)],
        )
        .node("Reshape", "flat", &["p", "t"], &["y"], vec![])
        .bytes()
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match *m {
        Mutation::Set(i, b) if !bytes.is_empty() => bytes[i % n] = b,
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Mutation::Remove(i) if !bytes.is_empty() => {
            bytes.remove(i % n);
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        _ => {}
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

#[test]
fn the_seed_model_imports() {
    let g = import(&seed_model(), &ImportOptions::default()).expect("seed imports");
    assert_eq!(g.node_count(), 4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_models_never_panic(muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = seed_model();
        for m in &muts {
            apply(&mut bytes, m);
        }
        // A small budget keeps any mutant's declared sizes from allocating much.
        let opts = ImportOptions { memory_budget: 1 << 24 };
        let _ = import(&bytes, &opts);
    }
}

/// Every byte position set to a few values: deterministic, and it shows the mutants reach
/// many different checks (not just the protobuf decoder).
#[test]
fn every_single_byte_mutation_is_handled() {
    let seed = seed_model();
    let opts = ImportOptions {
        memory_budget: 1 << 24,
    };
    let mut kinds = std::collections::BTreeMap::new();
    let mut total = 0;
    for i in 0..seed.len() {
        for v in [0x00, 0xff, seed[i] ^ 0x01, seed[i].wrapping_add(0x40)] {
            let mut b = seed.clone();
            b[i] = v;
            let kind = match import(&b, &opts) {
                Ok(_) => "Ok",
                Err(e) => e.kind(),
            };
            *kinds.entry(kind).or_insert(0usize) += 1;
            total += 1;
        }
    }
    println!("{total} mutants: {kinds:?}");
    assert_eq!(total, 4 * seed.len());
    assert!(kinds.len() >= 8, "mutants reached only {kinds:?}");
    assert!(kinds.contains_key("Ok") && kinds.contains_key("Decode"));
}
