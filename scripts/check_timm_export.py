#!/usr/bin/env python3
"""Checks `excite run` against ONNX Runtime on real exporter output: timm models exported by
PyTorch with random weights (and randomised BatchNorm statistics, so BN is not an identity).

Needs torch + timm (about 6 GB; never run in CI) and a built excite binary:

    cargo build --release
    python3 scripts/check_timm_export.py --excite target/release/excite --model seresnet50

Writes into --work (default /tmp/excite-timm): MODEL.onnx, inputs, ORT outputs, excite outputs;
prints the relative L2 error per batch size and exits non-zero when one exceeds --tol.
"""
import argparse
import os
import subprocess
import sys

import numpy as np


def export(model_name, path, seed, dynamo):
    import timm
    import torch

    torch.manual_seed(seed)
    m = timm.create_model(model_name, pretrained=False).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
    x = torch.randn(1, 3, 224, 224)
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=17)
    if dynamo:
        torch.onnx.export(m, (x,), path, dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("N", min=1, max=64)}},
                          **kwargs)
    else:
        torch.onnx.export(m, (x,), path, dynamo=False,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **kwargs)


def rel_l2(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--excite", default="target/release/excite")
    ap.add_argument("--model", default="seresnet50")
    ap.add_argument("--work", default="/tmp/excite-timm")
    ap.add_argument("--batches", default="1,3")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--dynamo", action="store_true", help="use the torch.export-based exporter")
    ap.add_argument("--backend", default="interp", help="excite backend: interp, cpu or gpu")
    args = ap.parse_args()
    import onnxruntime as ort

    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, f"{args.model}{'-dynamo' if args.dynamo else ''}.onnx")
    if not os.path.exists(path):
        export(args.model, path, 0, args.dynamo)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    worst = 0.0
    for b in [int(s) for s in args.batches.split(",")]:
        x = np.random.default_rng(b).standard_normal((b, 3, 224, 224)).astype(np.float32)
        xin = os.path.join(args.work, f"input_b{b}.npy")
        np.save(xin, x)
        (ref,) = sess.run(None, {in_name: x})
        out = os.path.join(args.work, f"out_{args.backend}_b{b}")
        subprocess.run([args.excite, "run", path, "--input", f"{in_name}={xin}", "--out", out,
                        "--backend", args.backend], check=True)
        got = np.load(os.path.join(out, f"{sess.get_outputs()[0].name}.npy"))
        assert got.shape == ref.shape, (got.shape, ref.shape)
        err = rel_l2(got, ref)
        worst = max(worst, err)
        print(f"{args.model} [{args.backend}] batch {b}: relative L2 error {err:.3e} over {ref.size} logits "
              f"(ORT |ref| = {np.linalg.norm(ref):.3e})")
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
