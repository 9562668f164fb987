//! The weight store and its safetensors form.

use std::collections::HashMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use excite_ir::text::WeightStore;
use excite_ir::{IrError, Tensor};

fn random_store(rng: &mut ChaCha8Rng, count: usize) -> WeightStore {
    let mut store = WeightStore::new();
    for i in 0..count {
        let shape: Vec<usize> = (0..rng.random_range(0..5))
            .map(|_| rng.random_range(0..6))
            .collect();
        let n = shape.iter().product();
        // Random bit patterns: NaNs with payloads, subnormals, infinities, signed zeros.
        let data = (0..n).map(|_| f32::from_bits(rng.random())).collect();
        let t = Tensor::new(shape, data).expect("sizes agree");
        store.insert(format!("layer{i}/w name"), Arc::new(t));
    }
    store
}

fn bits(store: &WeightStore) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    store
        .iter()
        .map(|(n, t)| {
            let b = t.data().iter().map(|x| x.to_bits()).collect();
            (n.to_string(), t.shape().to_vec(), b)
        })
        .collect()
}

#[test]
fn safetensors_round_trip_is_bit_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut elements = 0;
    for round in 0..20 {
        let store = random_store(&mut rng, round % 7);
        let bytes = store.to_safetensors().expect("serialises");
        let back = WeightStore::from_safetensors(&bytes).expect("reads back");
        assert_eq!(bits(&back), bits(&store));
        // Serialising is deterministic.
        assert_eq!(back.to_safetensors().expect("serialises"), bytes);
        elements += store.iter().map(|(_, t)| t.numel()).sum::<usize>();
    }
    assert!(elements > 300, "only {elements} elements compared");
}

#[test]
fn safetensors_written_by_the_crate_itself_are_read() {
    // Bytes made by the safetensors crate directly, not by WeightStore.
    let data: Vec<u8> = [1.5f32, -2.0, 0.25, 8.0, -0.0, 3.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let view = TensorView::new(Dtype::F32, vec![2, 3], &data).expect("view");
    let bytes = safetensors::serialize([("fc.w", view)], None).expect("serialises");
    let store = WeightStore::from_safetensors(&bytes).expect("reads");
    let t = store.get("fc.w").expect("present");
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.data(), &[1.5, -2.0, 0.25, 8.0, -0.0, 3.0]);
}

#[test]
fn other_dtypes_and_garbage_are_refused() {
    let data = [0u8; 8];
    let view = TensorView::new(Dtype::F16, vec![4], &data).expect("view");
    let f32s: Vec<u8> = [0.5f32, -1.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let w = TensorView::new(Dtype::F32, vec![2], &f32s).expect("view");
    let bytes = safetensors::serialize([("half.w", view), ("w", w)], None).expect("serialises");
    // Read: the F32 tensor, and the F16 one by name and type only.
    let store = WeightStore::from_safetensors(&bytes).expect("reads");
    assert_eq!(store.unsupported("half.w"), Some("F16"));
    assert_eq!(
        store.get("w").map(|t| t.data().to_vec()),
        Some(vec![0.5, -1.0])
    );
    // A graph that does not declare the F16 tensor ignores it; one that does is refused.
    let src = |extra: &str| {
        format!(
            "graph g {{\n  input x: f32[N, 2]\n  weight w: f32[2]\n{extra}  node add = Add(x, w) -> y: f32[N, 2]\n  \
             output y\n}}\n"
        )
    };
    excite_ir::text::parse(&src(""), &store).expect("undeclared F16 tensor ignored");
    let err = excite_ir::text::parse(&src("  weight half.w: f32[4]\n"), &store)
        .expect_err("declared F16 tensor refused");
    assert_eq!(
        err,
        IrError::Weights {
            msg: "weight `half.w` (line 4): the weight store holds it as F16; only F32 is \
                  supported"
                .into()
        }
    );
    let view = TensorView::new(Dtype::I64, vec![1], &data).expect("view");
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize([("idx", view)], Some(meta)).expect("serialises");
    let store = WeightStore::from_safetensors(&bytes).expect("reads");
    assert_eq!(store.unsupported("idx"), Some("I64"));
    for garbage in [
        &b""[..],
        b"\x40\0\0\0\0\0\0\0{}      ",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        let err = WeightStore::from_safetensors(garbage).expect_err("garbage refused");
        assert!(
            err.to_string()
                .starts_with("weights: unreadable safetensors data"),
            "{err}"
        );
    }
    // Data offsets that disagree with the shape: the error names the tensor.
    let mut checked = 0;
    for offsets in ["[0,12]", "[0,20]", "[0,1099511627776]"] {
        let header = format!(
            r#"{{"ok":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}},"b":{{"dtype":"F32","shape":[4],"data_offsets":{offsets}}}}}"#
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 20]);
        let err = WeightStore::from_safetensors(&bytes).expect_err("bad offsets refused");
        assert!(
            err.to_string()
                .contains("tensor `b`: its shape and data type do not match"),
            "{offsets}: {err}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}
