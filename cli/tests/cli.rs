//! The `excite` binary end to end: `run` against ONNX Runtime's outputs, every kind of bad
//! input naming the input at fault, `inspect` formats, and the zoo round trip through files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use excite::{Tensor, npy};
use excite_tests::compare::{MODEL_REL_L2, rel_l2};

fn excite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_excite"))
        .args(args)
        .output()
        .expect("the excite binary starts")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The names of the files in `dir`.
fn file_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn run_matches_onnx_runtime_and_writes_every_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut compared = 0;
    for (model, outputs) in [
        ("se_resnet_stage", 1usize),
        ("inception_module", 2),
        ("mobilenetv3_block", 1),
    ] {
        let f = fixture(model);
        for b in [1, 3] {
            let out = dir.path().join(format!("{model}-b{b}"));
            let input = format!("x={}", s(&f.join(format!("input.x.b{b}.npy"))));
            let o = excite(&[
                "run",
                s(&f.join("model.onnx")),
                "--input",
                &input,
                "--out",
                s(&out),
            ]);
            assert!(o.status.success(), "{model}: {}", stderr(&o));
            let mut written = 0;
            for entry in std::fs::read_dir(&f).expect("fixture dir") {
                let name = entry
                    .expect("entry")
                    .file_name()
                    .into_string()
                    .expect("utf-8");
                let Some(out_name) = name
                    .strip_prefix("output.")
                    .and_then(|n| n.strip_suffix(&format!(".b{b}.npy")))
                else {
                    continue;
                };
                let expected = npy::read(&f.join(&name), out_name).expect("ORT output");
                let got = npy::read(&out.join(format!("{out_name}.npy")), out_name)
                    .expect("excite wrote the output");
                let err = rel_l2(&got, &expected).expect("same shape");
                assert!(err <= MODEL_REL_L2, "{model} b{b} {out_name}: rel L2 {err}");
                written += 1;
                compared += 1;
            }
            assert_eq!(written, outputs, "{model}: outputs compared");
        }
    }
    assert_eq!(compared, 8);
}

#[test]
fn bad_inputs_are_errors_naming_the_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = fixture("se_resnet_stage");
    let model = f.join("model.onnx");
    let good = format!("x={}", s(&f.join("input.x.b1.npy")));

    let wrong_shape = dir.path().join("wrong_shape.npy");
    npy::write(
        &wrong_shape,
        &Tensor::new(vec![1, 3, 4, 4], (0..48).map(|i| i as f32 * 0.1).collect()).expect("tensor"),
    )
    .expect("write");
    let f64_file = dir.path().join("f64.npy");
    npyz::to_file_1d(&f64_file, [1.0f64, 2.0, 3.0]).expect("write f64 npy");
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not an npy file at all").expect("write");

    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (vec![], &["`x`", "missing"]),
        (
            vec![good.clone(), format!("y={}", s(&wrong_shape))],
            &["`y`", "no such input"],
        ),
        (
            vec![format!("x={}", s(&wrong_shape))],
            &["`x`", "expected shape"],
        ),
        (vec![format!("x={}", s(&f64_file))], &["`x`", "f32"]),
        (vec![format!("x={}", s(&garbage))], &["`x`", "not a .npy"]),
        (vec![good.clone(), good.clone()], &["`x`", "twice"]),
        (vec!["x".to_string()], &["NAME=FILE"]),
    ];
    for (inputs, needles) in &cases {
        let mut args = vec!["run", s(&model), "--out", s(dir.path())];
        for i in inputs {
            args.push("--input");
            args.push(i);
        }
        let o = excite(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{inputs:?} should fail");
        for n in *needles {
            assert!(err.contains(n), "{inputs:?}: `{n}` not in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = excite(&["inspect", s(&f.join("input.x.b1.npy"))]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown model format"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_formats_and_zoo_files_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = excite(&[
        "zoo",
        "build",
        "mobilenetv3-large",
        "-o",
        s(dir.path()),
        "--onnx",
        "--input-size",
        "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seir = dir.path().join("mobilenetv3-large.seir");
    let onnx = dir.path().join("mobilenetv3-large.onnx");

    for model in [&seir, &onnx] {
        let o = excite(&[
            "inspect",
            s(model),
            "--format",
            "json",
            "--stage",
            "imported",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert!(j["nodes"].as_u64().expect("nodes") > 100);
        assert!(j["kernels"].as_u64().expect("kernels") > 100);
        assert_eq!(j["se_blocks_fused"], 0);
        assert_eq!(j["ops"]["HardSigmoid"], 8, "8 SE gates");
        assert_eq!(j["params"], 5_483_032);

        let o = excite(&["inspect", s(model), "--format", "json", "--explain"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(j["stage"], "optimized");
        assert!(
            j["planned_peak_bytes"].as_u64().is_some_and(|b| b > 0),
            "{j}"
        );
        assert_eq!(j["se_blocks_fused"], 8);
        assert_eq!(j["ops"]["SeBlock"], 8);
        assert!(j["ops"].get("BatchNormalization").is_none(), "BN folded");
        let (k, k0) = (j["kernels"].as_u64(), j["kernels_before"].as_u64());
        assert!(k < k0, "kernels {k:?} not below {k0:?}");
        let b = j["bytes_moved"].as_u64().expect("bytes");
        assert!(b < j["bytes_moved_before"].as_u64().expect("bytes before"));
        let se_events = j["explain"]
            .as_array()
            .expect("explain")
            .iter()
            .filter(|e| e["rule"].as_str().is_some_and(|r| r.starts_with("se")))
            .count();
        assert_eq!(se_events, 8, "one explain line per fused SE block");
    }
    let o = excite(&[
        "inspect",
        s(&seir),
        "--after",
        "fold-bn",
        "--format",
        "json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(j["stage"], "after fold-bn");
    assert_eq!(j["se_blocks_fused"], 0, "fusion comes later");
    assert!(j["ops"].get("BatchNormalization").is_none());
    let o = excite(&["inspect", s(&seir), "--after", "no-such-pass"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-pass"), "{}", stderr(&o));
    let o = excite(&["inspect", s(&seir), "--format", "dot"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("digraph"));

    // The text form printed by `inspect` is the .seir file itself, behind a commented summary.
    let o = excite(&["inspect", s(&seir), "--stage", "imported"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(body, std::fs::read_to_string(&seir).expect("seir"));

    // The .seir and the ONNX file of one model compute the same logits.
    let x = dir.path().join("x.npy");
    let data = (0..2 * 3 * 64 * 64).map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0);
    npy::write(
        &x,
        &Tensor::new(vec![2, 3, 64, 64], data.collect()).expect("tensor"),
    )
    .expect("write");
    let mut logits = Vec::new();
    for model in [&seir, &onnx] {
        let out = dir.path().join(model.extension().expect("ext"));
        let input = format!("input={}", s(&x));
        let o = excite(&["run", s(model), "--input", &input, "--out", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        logits.push(npy::read(&out.join("logits.npy"), "logits").expect("logits"));
    }
    assert_eq!(logits[0].shape(), &[2, 1000]);
    let err = rel_l2(&logits[0], &logits[1]).expect("same shape");
    assert!(err <= 1e-6, "seir vs onnx rel L2 {err}");
}

/// True when a GPU adapter exists; with `EXCITE_REQUIRE_GPU=1` a missing adapter fails.
fn gpu_present() -> bool {
    let o = excite(&["compile", "--help"]);
    assert!(o.status.success());
    let probe = Command::new(env!("CARGO_BIN_EXE_excite"))
        .args([
            "run",
            s(&fixture("se_resnet_stage").join("model.onnx")),
            "--backend",
            "gpu",
            "--out",
            s(&std::env::temp_dir()),
        ])
        .output()
        .expect("excite starts");
    let no_adapter = String::from_utf8_lossy(&probe.stderr).contains("no GPU adapter");
    if no_adapter {
        assert!(
            std::env::var("EXCITE_REQUIRE_GPU").as_deref() != Ok("1"),
            "EXCITE_REQUIRE_GPU=1 but no GPU adapter was found"
        );
        eprintln!("no GPU adapter: skipping the gpu backend (set EXCITE_REQUIRE_GPU=1 to fail)");
    }
    !no_adapter
}

#[test]
fn compiled_backends_match_onnx_runtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = vec!["cpu"];
    if gpu_present() {
        backends.push("gpu");
    }
    let mut compared = 0;
    for backend in &backends {
        for model in [
            "se_resnet_stage",
            "mobilenetv3_block",
            "efficientnet_mbconv",
        ] {
            let f = fixture(model);
            for b in [1, 3] {
                let out = dir.path().join(format!("{backend}-{model}-b{b}"));
                let input = format!("x={}", s(&f.join(format!("input.x.b{b}.npy"))));
                let o = excite(&[
                    "run",
                    s(&f.join("model.onnx")),
                    "--input",
                    &input,
                    "--out",
                    s(&out),
                    "--backend",
                    backend,
                ]);
                assert!(o.status.success(), "{backend} {model}: {}", stderr(&o));
                for entry in std::fs::read_dir(&f).expect("fixture dir") {
                    let name = entry
                        .expect("entry")
                        .file_name()
                        .into_string()
                        .expect("utf-8");
                    let Some(out_name) = name
                        .strip_prefix("output.")
                        .and_then(|n| n.strip_suffix(&format!(".b{b}.npy")))
                    else {
                        continue;
                    };
                    let expected = npy::read(&f.join(&name), out_name).expect("ORT output");
                    let got = npy::read(&out.join(format!("{out_name}.npy")), out_name)
                        .expect("excite wrote the output");
                    let err = rel_l2(&got, &expected).expect("same shape");
                    assert!(err <= MODEL_REL_L2, "{backend} {model} b{b}: rel L2 {err}");
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 6 * backends.len());
}

#[test]
fn bench_and_compile_emit() {
    let f = fixture("se_resnet_stage").join("model.onnx");
    let o = excite(&[
        "bench",
        s(&f),
        "--backend",
        "cpu",
        "--batch",
        "2",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8_lossy(&o.stdout);
    let j: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    for key in ["median_ms", "min_ms", "max_ms", "images_per_s"] {
        assert!(j[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {j}");
    }
    assert_eq!(j["samples_ms"].as_array().map(Vec::len), Some(3));

    let o = excite(&[
        "bench",
        s(&f),
        "--backend",
        "cpu",
        "--iters",
        "2",
        "--profile",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("SeBlock"));

    let o = excite(&["compile", s(&f), "--target", "cpu", "--emit", "clif"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("function"));

    let dir = tempfile::tempdir().expect("temp dir");
    let o = excite(&[
        "compile",
        s(&f),
        "--target",
        "wgsl",
        "--emit",
        "wgsl",
        "-o",
        s(dir.path()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = file_names(dir.path());
    assert!(files.iter().any(|n| n.ends_with(".wgsl")), "{files:?}");
    // The plan names the SE blocks folded into their conv (the fixture's two bottlenecks).
    let plan = std::fs::read_to_string(dir.path().join("plan.txt")).expect("plan.txt");
    assert_eq!(plan.matches("folded SE block").count(), 2, "{plan}");
    assert!(!files.iter().any(|n| n.contains("wino")), "{files:?}");
    // The GPU tuning knobs in the environment reach `compile` as they reach `bench`: Winograd
    // on and no minimum of tiles, so the bottlenecks' 3x3 convs run by Winograd.
    let wdir = tempfile::tempdir().expect("temp dir");
    let o = Command::new(env!("CARGO_BIN_EXE_excite"))
        .args(["compile", s(&f), "--target", "wgsl", "--emit", "wgsl"])
        .args(["-o", s(wdir.path())])
        .env("EXCITE_GPU_WINOGRAD", "2")
        .env("EXCITE_GPU_MIN_WORKGROUPS", "0")
        .output()
        .expect("the excite binary starts");
    assert!(o.status.success(), "{}", stderr(&o));
    let files = file_names(wdir.path());
    assert!(files.iter().any(|n| n.contains("wino_in")), "{files:?}");

    let o = excite(&["compile", s(&f), "--target", "cpu", "--emit", "wgsl"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--emit clif goes with --target cpu"));
}

/// Models that once crashed, allocated without bound or lost an output (a robustness audit):
/// each now gives a typed error naming the tensor or output at fault, or runs and matches the
/// interpreter, and no message repeats itself.
#[test]
fn hostile_models_and_options_are_errors_not_crashes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write model");
        p
    };
    let x = dir.path().join("x.npy");
    npy::write(
        &x,
        &Tensor::new(
            vec![1, 2, 4, 4],
            (0..32).map(|i| (i as f32 * 0.37).sin()).collect(),
        )
        .expect("tensor"),
    )
    .expect("write");
    let xin = format!("x={}", s(&x));
    let out = dir.path().join("out");
    let weights = "  weight s: f32[2] = [1.0, 2.0]\n  weight b: f32[2] = [0.0, 0.5]\n  \
                   weight m: f32[2] = [0.1, 0.2]\n  weight v: f32[2] = [1.0, 4.0]\n";
    // BatchNormalization after a one-input op (pre-activation order) panicked in BN folding.
    let relu_bn = write(
        "relu_bn.seir",
        &format!(
            "graph g {{\n  input x: f32[N,2,4,4]\n{weights}  node r = Relu(x) -> a\n  \
             node bn = BatchNormalization(a, s, b, m, v) -> y\n  output y\n}}\n"
        ),
    );
    let mut ran = 0;
    for backend in ["interp", "cpu"] {
        let o = excite(&[
            "run",
            s(&relu_bn),
            "--input",
            &xin,
            "--out",
            s(&out),
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let y = npy::read(&out.join("y.npy"), "y").expect("output");
        // Relu then BN, computed here: (max(x, 0) - m) / sqrt(v + 1e-5) * s + b per channel.
        let xs = npy::read(&x, "x").expect("input");
        let (sc, bi, me, va) = ([1.0f32, 2.0], [0.0f32, 0.5], [0.1f32, 0.2], [1.0f32, 4.0]);
        for (i, (&xv, &yv)) in xs.data().iter().zip(y.data()).enumerate() {
            let c = i / 16;
            let want = (xv.max(0.0) - me[c]) / (va[c] + 1e-5).sqrt() * sc[c] + bi[c];
            assert!(
                (want - yv).abs() < 1e-5,
                "{backend} element {i}: {yv} vs {want}"
            );
            ran += 1;
        }
    }
    assert_eq!(ran, 64);
    // An input with an empty batch.
    let empty = dir.path().join("empty.npy");
    npy::write(
        &empty,
        &Tensor::new(vec![0, 2, 4, 4], Vec::new()).expect("tensor"),
    )
    .expect("write");
    let o = excite(&[
        "run",
        s(&relu_bn),
        "--input",
        &format!("x={}", s(&empty)),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("`x`: batch size 0"), "{}", stderr(&o));

    let cases: Vec<(PathBuf, Vec<&str>, &[&str])> = vec![
        // A padded conv whose output needs 640 GB: refused before allocation, on every backend.
        (
            write(
                "huge_pad.seir",
                &format!(
                    "graph g {{\n  input x: f32[N,2,4,4]\n  weight w: f32[4,2,3,3] = [{}]\n  \
                     node c = Conv(x, w) {{pads=[100000,100000,100000,100000]}} -> y\n  \
                     output y\n}}\n",
                    vec!["0.5"; 72].join(", ")
                ),
            ),
            vec!["run"],
            &["`y`", "over the budget"],
        ),
        // Outputs whose names sanitise to one file name would overwrite each other.
        (
            write(
                "collide.seir",
                "graph g {\n  input x: f32[N,2,4,4]\n  node r = Relu(x) -> \"a/b\"\n  \
                 node t = Sigmoid(x) -> a_b\n  output \"a/b\", a_b\n}\n",
            ),
            vec!["run"],
            &["`a/b`", "`a_b`", "a_b.npy"],
        ),
        // A declared output type that disagrees with inference.
        (
            write(
                "declared.seir",
                "graph g {\n  input x: f32[N,2,4,4]\n  node r = Relu(x) -> y: f32[N,2,4,5]\n  \
                 output y\n}\n",
            ),
            vec!["run"],
            &["`r`", "declared f32[N,2,4,5]"],
        ),
        // A rank far over ONNX Runtime's limit of 64 (the .npy writer panicked at ~21k).
        (
            write(
                "rank.seir",
                &format!(
                    "graph g {{\n  input x: f32[N,2,4,4]\n  \
                     node r = Reshape(x) {{shape=[0,{}32]}} -> y\n  output y\n}}\n",
                    "1,".repeat(100)
                ),
            ),
            vec!["run"],
            &["`y`", "rank 102"],
        ),
        (
            relu_bn.clone(),
            vec!["bench", "--batch", "18446744073709551615"],
            &["`x`", "overflows"],
        ),
        (
            relu_bn.clone(),
            vec!["bench", "--batch", "100000000"],
            &["`x`", "over the budget"],
        ),
        (
            relu_bn.clone(),
            vec!["bench", "--threads", "100000"],
            &["threads", "at most 1024"],
        ),
    ];
    for (model, cmd, needles) in &cases {
        let mut args = cmd.clone();
        args.insert(1, s(model));
        if cmd[0] == "run" {
            args.extend(["--input", &xin, "--out", s(&out)]);
        }
        let o = excite(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{args:?}: `{n}` not in: {err}");
        }
        // Each message once: the error text without its first line's repeat.
        let first = err.lines().next().unwrap_or_default();
        let tail = first.rsplit(": ").next().unwrap_or_default();
        assert_eq!(first.matches(tail).count(), 1, "repeated message: {err}");
    }
    assert_eq!(cases.len(), 7);
}
