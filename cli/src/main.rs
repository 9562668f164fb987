//! The `excite` command line: `zoo`, `inspect`, `run`, `demo`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use excite::{Backend, Session, Tensor, inspect, npy, zoo};

#[derive(Parser)]
#[command(
    name = "excite",
    version,
    about = "A compiler for Squeeze-and-Excitation networks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show a model, as imported or optimised: its .seir text (with a summary), a JSON
    /// report, Graphviz DOT or SVG.
    Inspect {
        /// A .onnx file, or a .seir file with its .safetensors beside it.
        model: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Which graph to show.
        #[arg(long, value_enum, default_value = "optimized")]
        stage: Stage,
        /// Show the graph right after this pass (implies the passes run).
        #[arg(long, value_name = "PASS")]
        after: Option<String>,
        /// List which rules fired where, by node name.
        #[arg(long)]
        explain: bool,
    },
    /// Run a model on .npy inputs and write every output as DIR/<output name>.npy.
    Run {
        model: PathBuf,
        /// An input as NAME=FILE.npy (repeat for several inputs).
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Directory for the outputs.
        #[arg(long)]
        out: PathBuf,
        /// Where to run: interp (the reference interpreter), cpu or gpu.
        #[arg(long, default_value = "interp")]
        backend: String,
        /// Run the graph as imported, without the optimisation passes.
        #[arg(long)]
        no_optimize: bool,
    },
    /// Compile a model for a target and show what was generated.
    Compile {
        model: PathBuf,
        /// cpu (Cranelift) or wgsl (WGSL compute shaders).
        #[arg(long, value_enum)]
        target: Target,
        /// What to write: clif (cpu) or wgsl (wgsl).
        #[arg(long, value_enum)]
        emit: Emit,
        /// Directory for the files (default: print to stdout).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Batch size to compile for.
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
    /// Time a model on random input of its input shape (warm-up first).
    Bench {
        model: PathBuf,
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// The batch size (the model's symbolic batch is set to it).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// CPU worker threads (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// One JSON line: median_ms, min_ms, max_ms, images_per_s, samples_ms (and, with
        /// --profile, `profile`: every kernel's node, op, kernel and ms in execution order).
        #[arg(long)]
        json: bool,
        /// Also time every kernel once (cpu: wall clock per step; gpu: timestamp queries
        /// around each dispatch) and list those that take the most time.
        #[arg(long)]
        profile: bool,
    },
    /// The model zoo: SE networks and their baselines with seeded random weights.
    Zoo {
        #[command(subcommand)]
        cmd: ZooCmd,
    },
    /// Build SE-ResNet-50 from the zoo, show its summary and run it once.
    Demo {
        /// Input resolution (224 is the network's own).
        #[arg(long, default_value_t = 224)]
        input_size: usize,
    },
}

#[derive(Subcommand)]
enum ZooCmd {
    /// List every network with parameters, GMACs and SE blocks.
    List,
    /// Write NAME as DIR/NAME.seir + DIR/NAME.safetensors (and DIR/NAME.onnx with --onnx).
    Build {
        name: String,
        #[arg(short, long)]
        out: PathBuf,
        /// Also write an ONNX file.
        #[arg(long)]
        onnx: bool,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Input resolution (default: the network's own).
        #[arg(long)]
        input_size: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
    Svg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Cpu,
    Wgsl,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Emit {
    Clif,
    Wgsl,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stage {
    Imported,
    Optimized,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// The error and its causes joined by ": ", leaving out each cause whose text the message
/// before it already shows (excite's library errors include their source in their own text;
/// the CLI's `context` messages do not).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Inspect {
            model,
            format,
            stage,
            after,
            explain,
        } => inspect_cmd(&model, format, stage, after, explain)?,
        Cmd::Run {
            model,
            inputs,
            out,
            backend,
            no_optimize,
        } => run(&model, &inputs, &out, &backend, !no_optimize)?,
        Cmd::Compile {
            model,
            target,
            emit,
            out,
            batch,
        } => compile(&model, target, emit, out.as_deref(), batch)?,
        Cmd::Bench {
            model,
            backend,
            batch,
            threads,
            iters,
            warmup,
            json,
            profile,
        } => bench(
            &model,
            &BenchArgs {
                backend,
                batch,
                threads,
                iters,
                warmup,
                json,
                profile,
            },
        )?,
        Cmd::Zoo { cmd } => match cmd {
            ZooCmd::List => zoo_list()?,
            ZooCmd::Build {
                name,
                out,
                onnx,
                seed,
                input_size,
            } => {
                let opts = zoo::BuildOptions {
                    seed,
                    input_size,
                    ..zoo::BuildOptions::default()
                };
                let g = zoo::build(&name, &opts)?;
                let seir = excite::save_seir(&g, &out, &name)?;
                println!("wrote {}", seir.display());
                if onnx {
                    let path = out.join(format!("{name}.onnx"));
                    std::fs::write(&path, excite::onnx::export(&g)?)?;
                    println!("wrote {}", path.display());
                }
            }
        },
        Cmd::Demo { input_size } => demo(input_size)?,
    }
    Ok(())
}

/// True when every pass of the pipeline ran (not stopped early by `--after`).
fn opts_complete(timings: &[(&'static str, std::time::Duration)]) -> bool {
    timings.len() == excite_passes::passes().len()
}

fn inspect_cmd(
    model: &Path,
    format: Format,
    stage: Stage,
    after: Option<String>,
    explain: bool,
) -> anyhow::Result<()> {
    let g = excite::load(model)?;
    let no_events = excite_passes::PassContext::default();
    let (graph, before, cx, timings, stage_name) = if stage == Stage::Imported && after.is_none() {
        (g, None, no_events, Vec::new(), "imported".to_string())
    } else {
        let before = inspect::Cost::of(&g);
        let name = after
            .as_ref()
            .map_or("optimized".to_string(), |p| format!("after {p}"));
        let opts = excite_passes::Options {
            after,
            ..excite_passes::Options::default()
        };
        let o = excite_passes::optimize(g, &opts)?;
        (o.graph, Some(before), o.context, o.timings, name)
    };
    // The CPU memory plan at batch 1 (only for graphs the passes have prepared).
    let planned_peak_bytes = if stage == Stage::Optimized && opts_complete(&timings) {
        excite_runtime::cpu::compile(&graph, 1, 1)
            .ok()
            .map(|p| p.planned_peak_bytes())
    } else {
        None
    };
    let report = inspect::Report {
        stage: stage_name,
        graph: &graph,
        before,
        events: &cx.events,
        eqsat: &cx.eqsat,
        timings: &timings,
        planned_peak_bytes,
    };
    let text = match format {
        Format::Text => {
            let mut s: String = inspect::summary(&report)
                .lines()
                .map(|l| format!("# {l}\n"))
                .collect();
            if explain {
                s.push_str("# rewrites:\n");
                for l in inspect::explain(report.events).lines() {
                    s.push_str(&format!("#   {l}\n"));
                }
            }
            s.push_str(&excite::ir::text::print(&graph));
            s
        }
        Format::Json => format!("{:#}\n", inspect::to_json(&report, explain)),
        Format::Dot => inspect::to_dot(&graph),
        Format::Svg => inspect::to_svg(&inspect::to_dot(&graph))?,
    };
    print!("{text}");
    if explain && !matches!(format, Format::Text | Format::Json) {
        eprint!("{}", inspect::explain(report.events));
    }
    Ok(())
}

fn compile(
    model: &Path,
    target: Target,
    emit: Emit,
    out: Option<&Path>,
    batch: usize,
) -> anyhow::Result<()> {
    let g = excite::load(model)?;
    let g = excite_passes::optimize(g, &excite_passes::Options::default())?.graph;
    let files: Vec<(String, String)> = match (target, emit) {
        (Target::Cpu, Emit::Clif) => excite_runtime::cpu::compile(&g, batch, 1)?
            .clif()
            .into_iter()
            .map(|(k, text)| (format!("{}.clif", sanitize(&k)), text))
            .collect(),
        (Target::Wgsl, Emit::Wgsl) => {
            // The tuning knobs from the environment, as `excite bench --backend gpu` takes them.
            let limits = excite_wgsl::Limits::default().with_env_knobs();
            excite_wgsl::compile(&g, batch, &limits)?.files()
        }
        (Target::Cpu, Emit::Wgsl) | (Target::Wgsl, Emit::Clif) => {
            bail!("--emit clif goes with --target cpu, --emit wgsl with --target wgsl")
        }
    };
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, text) in &files {
                std::fs::write(dir.join(name), text)
                    .with_context(|| format!("cannot write {name}"))?;
            }
            println!("wrote {} files to {}", files.len(), dir.display());
        }
        None => {
            for (name, text) in &files {
                println!("; ---- {name} ----\n{text}");
            }
        }
    }
    Ok(())
}

struct BenchArgs {
    backend: String,
    batch: usize,
    threads: usize,
    iters: usize,
    warmup: usize,
    json: bool,
    profile: bool,
}

fn bench(model: &Path, a: &BenchArgs) -> anyhow::Result<()> {
    if a.batch == 0 || a.iters == 0 {
        bail!("--batch and --iters must be at least 1");
    }
    let backend = Backend::from_name(&a.backend)?;
    let g = excite::load(model)?;
    let mut shapes = Vec::new();
    for &v in g.inputs() {
        let val = g.value(v);
        let ty = val
            .ty
            .as_ref()
            .with_context(|| format!("input `{}` has no type", val.name))?;
        shapes.push((val.name.clone(), ty.shape.resolve(a.batch)));
    }
    let t0 = Instant::now();
    let session = excite_runtime::Session::with_options(
        g,
        &excite_runtime::SessionOptions {
            backend,
            optimize: true,
            threads: a.threads,
            ..Default::default()
        },
    )?;
    // Compiles, and checks every tensor's size at this batch, before the inputs are made.
    session.prepare(a.batch)?;
    let compile_s = t0.elapsed().as_secs_f64();
    let mut feeds = HashMap::new();
    for (name, shape) in shapes {
        let x = random_input(&shape).with_context(|| format!("input `{name}`"))?;
        feeds.insert(name, x);
    }
    let (samples, clock) = match session.gpu_timing(&feeds, a.warmup, a.iters)? {
        Some(t) => {
            let clock = match t.source {
                excite_runtime::gpu::TimingSource::GpuTimestamps => "gpu-timestamps",
                excite_runtime::gpu::TimingSource::WallClock => "wall-clock",
            };
            (t.seconds.iter().map(|s| s * 1e3).collect::<Vec<_>>(), clock)
        }
        None => {
            for _ in 0..a.warmup {
                session.run(&feeds)?;
            }
            let mut samples = Vec::with_capacity(a.iters);
            for _ in 0..a.iters {
                let t = Instant::now();
                session.run(&feeds)?;
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
            (samples, "wall-clock")
        }
    };
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let ips = a.batch as f64 / (median / 1e3);
    let times = if a.profile {
        session.profile(&feeds)?
    } else {
        Vec::new()
    };
    if a.json {
        let mut j = serde_json::json!({
            "median_ms": median, "min_ms": min, "max_ms": max, "images_per_s": ips,
            "samples_ms": samples, "compile_s": compile_s,
            "backend": backend.name(), "batch": a.batch, "threads": session.threads(),
            "clock": clock,
        });
        if a.profile {
            j["profile"] = times
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "node": t.node, "op": t.op, "kernel": t.kernel, "ms": t.seconds * 1e3,
                    })
                })
                .collect();
        }
        println!("{j}");
        return Ok(());
    } else {
        println!(
            "{} on {backend} (batch {}, {} threads): median {median:.2} ms, min {min:.2} ms, \
             max {max:.2} ms, {ips:.1} images/s ({} runs after {} warm-up, {clock}; compiled in {:.2} s)",
            model.display(),
            a.batch,
            session.threads(),
            a.iters,
            a.warmup,
            compile_s
        );
    }
    if a.profile {
        let total: f64 = times.iter().map(|t| t.seconds).sum();
        let mut by_op: HashMap<&str, (f64, usize)> = HashMap::new();
        for t in &times {
            let e = by_op.entry(t.op).or_default();
            e.0 += t.seconds;
            e.1 += 1;
        }
        let mut ops: Vec<_> = by_op.into_iter().collect();
        ops.sort_by(|x, y| y.1.0.total_cmp(&x.1.0));
        println!("time by op ({:.2} ms in all):", total * 1e3);
        for (op, (s, n)) in &ops {
            println!(
                "  {op:<20} {n:>4} kernels {:>8.2} ms {:>5.1}%",
                s * 1e3,
                100.0 * s / total
            );
        }
        let mut top: Vec<_> = times.iter().collect();
        top.sort_by(|x, y| y.seconds.total_cmp(&x.seconds));
        println!("top kernels:");
        for t in top.iter().take(10) {
            println!(
                "  {:<32} {:<12} {:>8.3} ms {:>5.1}%",
                t.node,
                t.op,
                t.seconds * 1e3,
                100.0 * t.seconds / total
            );
        }
    }
    Ok(())
}

fn run(
    model: &Path,
    inputs: &[String],
    out: &Path,
    backend: &str,
    optimize: bool,
) -> anyhow::Result<()> {
    let backend = Backend::from_name(backend)?;
    let g = excite::load(model)?;
    // Two outputs whose names sanitise to one file name would overwrite each other.
    let mut files: HashMap<String, String> = HashMap::new();
    for &v in g.outputs() {
        let name = &g.value(v).name;
        let file = format!("{}.npy", sanitize(name));
        if let Some(other) = files.insert(file.clone(), name.clone()) {
            bail!("outputs `{other}` and `{name}` would both be written to {file}");
        }
    }
    let mut feeds = HashMap::new();
    for spec in inputs {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--input `{spec}`: expected NAME=FILE.npy"))?;
        let t = npy::read(Path::new(file), name)?;
        if feeds.insert(name.to_string(), t).is_some() {
            bail!("input `{name}` is given twice");
        }
    }
    let session = if optimize {
        Session::new(g, backend)?
    } else {
        Session::unoptimized(g, backend)?
    };
    let outputs = session.run(&feeds)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, t) in &outputs {
        let file = out.join(format!("{}.npy", sanitize(name)));
        npy::write(&file, t)?;
        println!("{name}: {:?} -> {}", t.shape(), file.display());
    }
    Ok(())
}

/// Output names become file names: keep them to a safe alphabet (an empty name becomes `_`).
fn sanitize(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn zoo_list() -> anyhow::Result<()> {
    println!(
        "{:<26} {:>12} {:>8} {:>10}  description",
        "name", "params", "GMACs", "SE blocks"
    );
    for info in zoo::list() {
        let g = zoo::build(info.name, &zoo::BuildOptions::default())?;
        let params = excite::ir::stats::trainable_params(&g);
        let gmacs = excite::ir::stats::macs(&g, 1)? as f64 / 1e9;
        println!(
            "{:<26} {:>12} {:>8.2} {:>10}  {}",
            info.name, params, gmacs, info.se_blocks, info.description
        );
    }
    Ok(())
}

fn demo(input_size: usize) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let opts = zoo::BuildOptions {
        input_size: Some(input_size),
        ..zoo::BuildOptions::default()
    };
    let g = zoo::build("se-resnet50", &opts)?;
    println!(
        "built se-resnet50 from the zoo in {:.2} s\n",
        t0.elapsed().as_secs_f64()
    );
    let before = inspect::Cost::of(&g);
    let reference = g.clone();
    let backend = Backend::best_available();
    let t_opt = Instant::now();
    let session = Session::new(g, backend)?;
    let report = inspect::Report {
        stage: format!("optimized in {:.0} ms", t_opt.elapsed().as_secs_f64() * 1e3),
        graph: session.graph(),
        before: Some(before),
        events: &[],
        eqsat: &[],
        timings: &[],
        planned_peak_bytes: None,
    };
    print!("{}", inspect::summary(&report));
    let feeds = HashMap::from([(
        "input".to_string(),
        random_input(&[1, 3, input_size, input_size])?,
    )]);
    let t1 = Instant::now();
    session.prepare(1)?;
    println!(
        "
compiled for the `{backend}` backend in {:.0} ms",
        t1.elapsed().as_secs_f64() * 1e3
    );
    let mut times = Vec::new();
    let mut outputs = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        outputs = session.run(&feeds)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "ran batch 1: median {:.1} ms over {} runs ({} threads)",
        times[times.len() / 2],
        times.len(),
        session.threads()
    );
    let t2 = Instant::now();
    let want = Session::unoptimized(reference, Backend::Interp)?.run(&feeds)?;
    for ((name, t), (_, w)) in outputs.iter().zip(&want) {
        let mut top: Vec<(usize, f32)> = t.data().iter().copied().enumerate().collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = top
            .iter()
            .take(5)
            .map(|(i, v)| format!("{i}:{v:.3}"))
            .collect();
        println!("{name} {:?}: top-5 {}", t.shape(), top.join(" "));
        let (num, den) = t
            .data()
            .iter()
            .zip(w.data())
            .fold((0f64, 0f64), |(n, d), (&a, &b)| {
                let (a, b) = (f64::from(a), f64::from(b));
                (n + (a - b) * (a - b), d + b * b)
            });
        println!(
            "matches the reference interpreter on the unfused graph ({:.1} s): relative L2 error {:.1e}",
            t2.elapsed().as_secs_f64(),
            (num / den.max(f64::MIN_POSITIVE)).sqrt()
        );
    }
    Ok(())
}

/// A seeded uniform input in [-1, 1): never constant, the same on every run.
fn random_input(shape: &[usize]) -> anyhow::Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .with_context(|| format!("shape {shape:?} overflows"))?;
    let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::new(shape.to_vec(), data)?)
}
