//! Prints every zoo model's trainable parameters, GMACs and SE blocks next to the expected
//! numbers: `cargo run -p excite-zoo --example zoo_table --release`.

use excite_ir::stats;
use excite_zoo::{BuildOptions, build, list};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for m in list() {
        let t = std::time::Instant::now();
        let g = build(m.name, &BuildOptions::default())?;
        let params = stats::trainable_params(&g);
        let gmacs = stats::macs(&g, 1)? as f64 / 1e9;
        println!(
            "{:24} params {:>11} (expected {:>11}) GMACs {:7.3} (expected {:>6}) nodes {:5} {:?}",
            m.name,
            params,
            m.expected_params.map_or("-".to_string(), |p| p.to_string()),
            gmacs,
            m.expected_gmacs.map_or("-".to_string(), |p| p.to_string()),
            g.node_count(),
            t.elapsed()
        );
    }
    Ok(())
}
