//! Every zoo network survives the `.seir` text form: print(parse(print(g))) == print(g), with
//! the weights going through safetensors bytes, and the re-parsed graph verifies.

use excite_ir::text::{self, WeightStore};
use excite_zoo::{BuildOptions, build, list};

#[test]
fn every_zoo_model_round_trips_through_seir() {
    let mut checked = 0;
    for info in list() {
        // Parameters do not depend on the input size; a small one keeps the test quick.
        let opts = BuildOptions {
            input_size: Some(if info.name.contains("inception-resnet") {
                96
            } else {
                64
            }),
            ..BuildOptions::default()
        };
        let g = build(info.name, &opts).expect("zoo model builds");
        let printed = text::print(&g);
        let bytes = WeightStore::from_graph(&g)
            .to_safetensors()
            .expect("weights serialise");
        let store = WeightStore::from_safetensors(&bytes).expect("weights deserialise");
        let back = text::parse_verified(&printed, &store)
            .unwrap_or_else(|e| panic!("{}: re-parse failed: {e}", info.name));
        assert_eq!(text::print(&back), printed, "{}: text differs", info.name);
        assert_eq!(back.param_count(), g.param_count(), "{}", info.name);
        for (v, t) in g.weights() {
            let name = &g.value(v).name;
            let other = back
                .find_value(name)
                .and_then(|w| back.value(w).weight().cloned());
            assert_eq!(other.as_deref(), Some(&**t), "{}: weight {name}", info.name);
        }
        checked += 1;
    }
    assert_eq!(checked, list().len());
    assert!(checked >= 20, "only {checked} zoo models checked");
}
