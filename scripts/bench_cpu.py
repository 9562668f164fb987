#!/usr/bin/env python3
"""CPU benchmark: excite vs ONNX Runtime on the same ONNX files, same machine, same threads.

Builds ResNet-50 and SE-ResNet-50 from excite's zoo as ONNX (random weights; BN kept as nodes,
which both runtimes fold), then for each batch size and thread count alternates rounds of
ONNX Runtime and `excite bench` over both models (each round: warm-up, then --iters timed
runs) and reports the medians over all rounds, the ratio excite / ORT, and the SE overhead
(SE-ResNet-50 ÷ ResNet-50) of each runtime. Before each round it measures the core-to-core
round trip (scripts/core_latency.c, when `cc` is there): 2-thread times on a VM depend on
whether its vCPUs share a cache, so each cell shows the range it ran under. It also gives
excite's SE overhead from per-kernel minimums (each kernel's fastest time over a few profiled
runs, summed): the models' compute compared with far less VM noise than whole-run medians.

`--placement shared` (round trip under 200 ns) or `--placement split` (300-500 ns: the vCPUs on
cores without a shared cache) keeps only rounds that start and end in that placement, waiting
for it (up to `--placement-wait` seconds per round, then the round runs as it is and the cell's
range shows it), so that the two placements can be measured apart.

    cargo build --release
    python3 scripts/bench_cpu.py --excite target/release/excite [--batches 1,8] [--threads 1,2]
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np


def ort_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_times(sess, x, iters, warmup):
    name = sess.get_inputs()[0].name
    for _ in range(warmup):
        sess.run(None, {name: x})
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, {name: x})
        out.append((time.perf_counter() - t) * 1e3)
    return out


def excite_times(exe, path, batch, threads, iters, warmup):
    r = subprocess.run([exe, "bench", path, "--backend", "cpu", "--batch", str(batch),
                        "--threads", str(threads), "--iters", str(iters),
                        "--warmup", str(warmup), "--json"],
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])["samples_ms"]


def excite_kernel_mins(exe, paths, batch, threads, runs):
    """Per model: the sum over its steps of each step's fastest time in `runs` profiled runs
    (`excite bench --profile --json`, one process per run, the models alternating): a figure
    that VM noise moves far less than a median of whole runs, for comparing two models'
    compute."""
    best = {m: None for m in paths}
    for _ in range(runs):
        for m, path in paths.items():
            r = subprocess.run([exe, "bench", path, "--backend", "cpu", "--batch", str(batch),
                                "--threads", str(threads), "--iters", "1", "--warmup", "2",
                                "--json", "--profile"],
                               check=True, capture_output=True, text=True)
            prof = json.loads(r.stdout.strip().splitlines()[-1])["profile"]
            ms = [p["ms"] for p in prof]
            best[m] = ms if best[m] is None else [min(a, b) for a, b in zip(best[m], ms)]
    return {m: sum(v or []) for m, v in best.items()}


def core_probe(work):
    """A function returning the core-to-core round trip in ns (scripts/core_latency.c, built
    with `cc`), or None when it cannot be built: on this VM the two vCPUs sometimes land on
    cores without a shared cache (~400 ns instead of 70-230), and 2-thread times then rise."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_latency.c")
    exe = os.path.join(work, "core_latency")
    try:
        subprocess.run(["cc", "-O2", "-pthread", src, "-o", exe], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return lambda: None

    def probe():
        r = subprocess.run([exe], capture_output=True, text=True)
        return float(r.stdout) if r.returncode == 0 else None
    return probe


def in_placement(ns, placement):
    """Whether a core-to-core round trip `ns` belongs to `placement` ("any" always)."""
    if placement == "any":
        return True
    if ns is None:
        return False
    return ns < 200 if placement == "shared" else 300 <= ns < 500


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--excite", default="target/release/excite")
    ap.add_argument("--work", default="/tmp/excite-bench")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=10, help="timed runs per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (iters*rounds >= 20)")
    ap.add_argument("--models", default="resnet50,se-resnet50")
    ap.add_argument("--placement", choices=["any", "shared", "split"], default="any",
                    help="keep only rounds in this vCPU placement (see above)")
    ap.add_argument("--placement-wait", type=float, default=600,
                    help="seconds a round may wait for the placement")
    ap.add_argument("--profile-runs", type=int, default=6,
                    help="profiled runs per model for the per-kernel-minimum SE overhead "
                         "(0: skip)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    models = args.models.split(",")
    for m in models:
        path = os.path.join(args.work, f"{m}.onnx")
        if not os.path.exists(path):
            subprocess.run([args.excite, "zoo", "build", m, "-o", args.work, "--onnx"], check=True,
                           capture_output=True)
    probe = core_probe(args.work)
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch in [int(b) for b in args.batches.split(",")]:
            res = {}
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            paths = {m: os.path.join(args.work, f"{m}.onnx") for m in models}
            sessions = {m: ort_session(paths[m], threads) for m in models}
            o = {m: [] for m in models}
            e = {m: [] for m in models}
            lat = []
            # Rounds outermost: every model and runtime gets one round in turn, so the SE
            # overhead compares runs of the same minutes (this VM drifts by a few percent).
            for _ in range(args.rounds):
                deadline = time.time() + args.placement_wait
                while True:
                    before = probe()
                    while not in_placement(before, args.placement) and time.time() < deadline:
                        time.sleep(5)
                        before = probe()
                    ro = {m: ort_times(sessions[m], x, args.iters, warmup=3) for m in models}
                    re = {m: excite_times(args.excite, paths[m], batch, threads, args.iters,
                                          warmup=3) for m in models}
                    after = probe()
                    kept = in_placement(before, args.placement) and in_placement(
                        after, args.placement)
                    if kept or time.time() >= deadline:
                        break
                    print(f"  round discarded: placement changed ({before} -> {after} ns)",
                          flush=True)
                lat += [before, after]
                for m in models:
                    o[m] += ro[m]
                    e[m] += re[m]
            lat = [v for v in lat if v is not None]
            rt = f"{min(lat):.0f}-{max(lat):.0f}" if lat else "n/a"
            print(f"core-to-core round trip before and after each round: {rt} ns", flush=True)
            for m in models:
                res[m] = (statistics.median(o[m]), statistics.median(e[m]))
                rows.append((m, batch, threads, *res[m], rt))
                print(f"{m:<12} batch {batch:<2} threads {threads}: ORT {res[m][0]:8.1f} ms  "
                      f"excite {res[m][1]:8.1f} ms  ratio {res[m][1] / res[m][0]:.2f}", flush=True)
            if "resnet50" in res and "se-resnet50" in res:
                so = res["se-resnet50"][0] / res["resnet50"][0]
                se = res["se-resnet50"][1] / res["resnet50"][1]
                print(f"  SE overhead (SE-ResNet-50 / ResNet-50): ORT {so:.3f}, excite {se:.3f}")
                if args.profile_runs > 0:
                    pair = {m: paths[m] for m in ("resnet50", "se-resnet50")}
                    k = excite_kernel_mins(args.excite, pair, batch, threads, args.profile_runs)
                    print(f"  excite SE overhead by per-kernel minimums ({args.profile_runs} "
                          f"profiled runs each): {k['se-resnet50'] / k['resnet50']:.3f} "
                          f"({k['se-resnet50']:.2f} / {k['resnet50']:.2f} ms)", flush=True)
    print("\n| model | batch | threads | ORT median ms | excite median ms | excite / ORT "
          "| core round trip ns |")
    print("|---|---|---|---|---|---|---|")
    for m, b, t, o, e, rt in rows:
        print(f"| {m} | {b} | {t} | {o:.1f} | {e:.1f} | {e / o:.2f} | {rt} |")


if __name__ == "__main__":
    main()
