//! Runs zoo models through the reference interpreter on random input and prints logit
//! statistics: `cargo run -p excite-zoo --example zoo_run -- [size] [names...]`.

use std::collections::HashMap;

use excite_ir::{Tensor, interp};
use excite_zoo::{BuildOptions, build, list};
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let names: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(String::as_str).collect()
    } else {
        list().iter().map(|m| m.name).collect()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for name in names {
        let t = std::time::Instant::now();
        let opts = BuildOptions {
            input_size: Some(size),
            ..BuildOptions::default()
        };
        let g = build(name, &opts)?;
        let n = 2 * 3 * size * size;
        let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.7f32..1.7)).collect();
        let x = Tensor::new(vec![2, 3, size, size], data)?;
        let out = interp::run(&g, &HashMap::from([("input".to_string(), x)]))?;
        let y = out[0].1.data();
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let std =
            (y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        println!(
            "{name:24} size {size} mean {mean:9.4} std {std:9.4} finite {} {:?}",
            y.iter().all(|v| v.is_finite()),
            t.elapsed()
        );
    }
    Ok(())
}
