//! Times the optimisation pipeline on zoo networks (the number BENCHMARKS.md records):
//! `cargo run --release -p excite-passes --example optimize_zoo [NAME ...]`.
//!
//! Each network is built once per run (not timed), then `optimize` runs on a fresh build;
//! prints the median of 5 runs, the slowest pass, and the kernel counts before and after.

use std::time::{Duration, Instant};

use excite_passes::metrics::{kernel_count, se_blocks};
use excite_passes::{Options, optimize};
use excite_zoo::{BuildOptions, build, list};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<String> = if names.is_empty() {
        vec![
            "se-resnet50".into(),
            "senet154".into(),
            "efficientnet-b0".into(),
        ]
    } else if names == ["all"] {
        list().iter().map(|m| m.name.to_string()).collect()
    } else {
        names
    };
    let opts = Options {
        verify_each: false,
        ..Options::default()
    };
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>9} {:>9} {:>5}  slowest pass",
        "network", "median ms", "min ms", "max ms", "kernels", "after", "SE"
    );
    for name in &names {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let g = build(name, &BuildOptions::default())?;
            let before = kernel_count(&g);
            let t = Instant::now();
            let o = optimize(g, &opts)?;
            times.push(t.elapsed());
            last = Some((before, o));
        }
        times.sort();
        let Some((before, o)) = last else { continue };
        let slowest = o
            .timings
            .iter()
            .max_by_key(|(_, t)| *t)
            .map_or(String::new(), |(p, t)| format!("{p} {:.1} ms", ms(*t)));
        println!(
            "{:<24} {:>10.1} {:>10.1} {:>10.1} {:>9} {:>9} {:>5}  {slowest}",
            name,
            ms(times[2]),
            ms(times[0]),
            ms(times[4]),
            before,
            kernel_count(&o.graph),
            se_blocks(&o.graph)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
