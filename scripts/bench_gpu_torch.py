#!/usr/bin/env python3
"""PyTorch eager FP32 baseline for scripts/bench_gpu.sh: timm models on CUDA, TF32 off,
cudnn.benchmark on, timed with CUDA events. Prints `torch MODEL BATCH MEDIAN_MS MIN_MS cuda-events`
lines (MODEL in excite's zoo spelling). `--dry-run` only checks what can be checked here."""
import argparse
import sys

TIMM = {"se-resnet50": "seresnet50", "resnet50": "resnet50"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("jobs", nargs="+", help="MODEL:BATCH")
    a = ap.parse_args()
    jobs = [(m, int(b)) for m, b in (j.split(":") for j in a.jobs)]
    for m, _ in jobs:
        if m not in TIMM:
            sys.exit(f"no timm name for {m}")
    try:
        import torch
        import timm
    except ImportError as e:
        if a.dry_run:
            print(f"dry-run torch: not installed here ({e.name}); the device has it")
            return
        raise
    if a.dry_run:
        print(f"dry-run torch {torch.__version__} timm {timm.__version__}: cuda={torch.cuda.is_available()}")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    for m, b in jobs:
        net = timm.create_model(TIMM[m], pretrained=False).cuda().eval()
        x = torch.randn(b, 3, 224, 224, device="cuda")
        times = []
        with torch.inference_mode():
            for _ in range(10):
                net(x)
            torch.cuda.synchronize()
            for _ in range(a.iters):
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                net(x)
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e))
        median = sorted(times)[len(times) // 2]
        print(f"torch {m} {b} {median:.3f} {min(times):.3f} cuda-events", flush=True)


if __name__ == "__main__":
    main()
