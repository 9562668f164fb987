//! Compares the CPU runtime's two cache-placement modes ([`cpu::Placement`]: `Shared` and
//! `Far`, whichever the vCPUs really are) on one zoo network, runs alternating one by one so
//! that a machine whose speed drifts from minute to minute slows both alike: `cargo run
//! --release -p excite-runtime --example placement_ab -- [MODEL] [BATCH] [THREADS] [RUNS]`.
//! Prints each mode's median, quartiles and minimum.

mod common;

use std::time::Instant;

use excite_runtime::cpu::{self, Placement};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map_or("se-resnet50", String::as_str);
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (batch, threads, runs) = (num(1, 1), num(2, 2), num(3, 60));
    let g = excite_zoo::build(model, &excite_zoo::BuildOptions::default())?;
    let g = excite_passes::optimize(g, &excite_passes::Options::default())?.graph;
    let modes = [Placement::Shared, Placement::Far];
    let mut progs = Vec::new();
    for mode in modes {
        let mut p = cpu::compile(&g, batch, threads)?;
        p.set_placement(mode);
        progs.push(p);
    }
    let inputs = common::inputs(&g, batch)?;
    for p in &progs {
        for _ in 0..3 {
            p.run(&inputs)?;
        }
    }
    let mut times = vec![Vec::with_capacity(runs); progs.len()];
    for _ in 0..runs {
        for (p, t) in progs.iter().zip(&mut times) {
            let t0 = Instant::now();
            p.run(&inputs)?;
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    for (mode, mut t) in modes.into_iter().zip(times) {
        t.sort_by(f64::total_cmp);
        let q = |f: f64| t[((t.len() - 1) as f64 * f) as usize];
        println!(
            "{model} batch {batch} threads {threads} {mode:?}: median {:.2} ms (quartiles {:.2}-{:.2}), min {:.2}, {runs} runs",
            q(0.5),
            q(0.25),
            q(0.75),
            t[0]
        );
    }
    Ok(())
}
