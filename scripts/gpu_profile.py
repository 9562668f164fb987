#!/usr/bin/env python3
"""Summarises the per-dispatch GPU profile that `excite bench --backend gpu --json --profile`
writes (scripts/bench_gpu.sh keeps one per network and batch): time by kernel template and the
slowest dispatches. Usage: gpu_profile.py PROFILE.json [TOP]"""
import json
import sys


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    with open(path) as f:
        j = json.load(f)
    prof = j.get("profile", [])
    total = sum(p["ms"] for p in prof)
    print(f"profile {path}: {len(prof)} dispatches, {total:.3f} ms summed "
          f"(timed median {j['median_ms']:.3f} ms)")
    by = {}
    for p in prof:
        n, t = by.get(p["kernel"], (0, 0.0))
        by[p["kernel"]] = (n + 1, t + p["ms"])
    for k, (n, t) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"  {k:<18} {n:>4} dispatches {t:>9.3f} ms {100 * t / max(total, 1e-12):5.1f}%")
    for p in sorted(prof, key=lambda p: -p["ms"])[:top]:
        print(f"    {p['node']:<40} {p['kernel']:<16} {p['ms']:8.3f} ms")


if __name__ == "__main__":
    main()
