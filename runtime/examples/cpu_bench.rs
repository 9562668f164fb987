//! Times a zoo network on the CPU backend: `cargo run --release -p excite-runtime --example
//! cpu_bench -- MODEL [BATCH] [THREADS] [ITERS] [SIZE]`. Builds the network, optimises it,
//! compiles it (timed), warms up, then prints the median, min and max of ITERS runs and the
//! top step families of a profile (fastest of 10 runs per step), grouped by kernel family.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use excite_runtime::cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args.first().map_or("se-resnet50", String::as_str);
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (batch, threads, iters, size) = (num(1, 1), num(2, 1), num(3, 20), num(4, 224));
    let opts = excite_zoo::BuildOptions {
        input_size: Some(size),
        ..Default::default()
    };
    let g = excite_zoo::build(model, &opts)?;
    let g = excite_passes::optimize(g, &excite_passes::Options::default())?.graph;
    let t0 = Instant::now();
    let prog = cpu::compile(&g, batch, threads)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let inputs = common::inputs(&g, batch)?;
    for _ in 0..3 {
        prog.run(&inputs)?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        prog.run(&inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{model} batch {batch} threads {threads}: median {median:.2} ms, min {:.2}, max {:.2} ({iters} runs); compile {compile_ms:.0} ms; planned peak {:.1} MiB",
        times[0],
        times[times.len() - 1],
        prog.planned_peak_bytes() as f64 / (1 << 20) as f64
    );
    // Per step, the fastest of 10 profiled runs (robust to other load on the machine).
    let (_, mut prof) = prog.run_profiled(&inputs)?;
    for _ in 0..9 {
        let (_, again) = prog.run_profiled(&inputs)?;
        for (p, a) in prof.iter_mut().zip(again) {
            p.seconds = p.seconds.min(a.seconds);
        }
    }
    let total: f64 = prof.iter().map(|s| s.seconds).sum();
    println!(
        "  profile (min per step over 10 runs): {:.2} ms",
        total * 1e3
    );
    let mut by: HashMap<String, f64> = HashMap::new();
    for s in &prof {
        let family = s
            .kernel
            .split(" + ")
            .next()
            .unwrap_or("")
            .split("_c")
            .next()
            .unwrap_or("");
        *by.entry(format!("{} / {family}", s.op)).or_default() += s.seconds;
    }
    let mut by: Vec<_> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (k, t) in by.iter().take(12) {
        println!("  {:5.1}%  {:7.2} ms  {k}", 100.0 * t / total, t * 1e3);
    }
    Ok(())
}
