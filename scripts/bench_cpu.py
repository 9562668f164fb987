#!/usr/bin/env python3
"""CPU benchmark: excite vs ONNX Runtime on the same ONNX files, same machine, same threads.

Builds ResNet-50 and SE-ResNet-50 from excite's zoo as ONNX (random weights; BN kept as nodes,
which both runtimes fold), then for each batch size and thread count alternates rounds of
ONNX Runtime and `excite bench` over both models (each round: warm-up, then --iters timed
runs) and reports the medians over all rounds, the ratio excite / ORT, and the SE overhead (SE-ResNet-50 ÷
ResNet-50) of each runtime.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--excite", default="target/release/excite")
    ap.add_argument("--work", default="/tmp/excite-bench")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=10, help="timed runs per round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (iters*rounds >= 20)")
    ap.add_argument("--models", default="resnet50,se-resnet50")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    models = args.models.split(",")
    for m in models:
        path = os.path.join(args.work, f"{m}.onnx")
        if not os.path.exists(path):
            subprocess.run([args.excite, "zoo", "build", m, "-o", args.work, "--onnx"], check=True,
                           capture_output=True)
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch in [int(b) for b in args.batches.split(",")]:
            res = {}
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            paths = {m: os.path.join(args.work, f"{m}.onnx") for m in models}
            sessions = {m: ort_session(paths[m], threads) for m in models}
            o = {m: [] for m in models}
            e = {m: [] for m in models}
            # Rounds outermost: every model and runtime gets one round in turn, so the SE
            # overhead compares runs of the same minutes (this VM drifts by a few percent).
            for _ in range(args.rounds):
                for m in models:
                    o[m] += ort_times(sessions[m], x, args.iters, warmup=3)
                    e[m] += excite_times(args.excite, paths[m], batch, threads, args.iters,
                                         warmup=3)
            for m in models:
                res[m] = (statistics.median(o[m]), statistics.median(e[m]))
                rows.append((m, batch, threads, *res[m]))
                print(f"{m:<12} batch {batch:<2} threads {threads}: ORT {res[m][0]:8.1f} ms  "
                      f"excite {res[m][1]:8.1f} ms  ratio {res[m][1] / res[m][0]:.2f}", flush=True)
            if "resnet50" in res and "se-resnet50" in res:
                so = res["se-resnet50"][0] / res["resnet50"][0]
                se = res["se-resnet50"][1] / res["resnet50"][1]
                print(f"  SE overhead (SE-ResNet-50 / ResNet-50): ORT {so:.3f}, excite {se:.3f}")
    print("\n| model | batch | threads | ORT median ms | excite median ms | excite / ORT |")
    print("|---|---|---|---|---|---|")
    for m, b, t, o, e in rows:
        print(f"| {m} | {b} | {t} | {o:.1f} | {e:.1f} | {e / o:.2f} |")


if __name__ == "__main__":
    main()
