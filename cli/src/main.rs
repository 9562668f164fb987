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
        /// Where to run: interp (the reference interpreter).
        #[arg(long, default_value = "interp")]
        backend: String,
        /// Run the graph as imported, without the optimisation passes.
        #[arg(long)]
        no_optimize: bool,
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
enum Stage {
    Imported,
    Optimized,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
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
    let report = inspect::Report {
        stage: stage_name,
        graph: &graph,
        before,
        events: &cx.events,
        eqsat: &cx.eqsat,
        timings: &timings,
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

fn run(
    model: &Path,
    inputs: &[String],
    out: &Path,
    backend: &str,
    optimize: bool,
) -> anyhow::Result<()> {
    let backend = Backend::from_name(backend)?;
    let g = excite::load(model)?;
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

/// Output names become file names: keep them to a safe alphabet.
fn sanitize(name: &str) -> String {
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
    };
    print!("{}", inspect::summary(&report));
    let x = random_input(&[1, 3, input_size, input_size])?;
    let t1 = Instant::now();
    let outputs = session.run(&HashMap::from([("input".to_string(), x)]))?;
    println!(
        "\nran batch 1 on the `{backend}` backend in {:.2} s",
        t1.elapsed().as_secs_f64()
    );
    for (name, t) in &outputs {
        let mut top: Vec<(usize, f32)> = t.data().iter().copied().enumerate().collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = top
            .iter()
            .take(5)
            .map(|(i, v)| format!("{i}:{v:.3}"))
            .collect();
        println!("{name} {:?}: top-5 {}", t.shape(), top.join(" "));
    }
    Ok(())
}

/// A seeded uniform input in [-1, 1): never constant, the same on every run.
fn random_input(shape: &[usize]) -> anyhow::Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Ok(Tensor::new(shape.to_vec(), data)?)
}
