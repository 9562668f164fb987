#!/usr/bin/env bash
# GPU benchmark: excite (wgpu, WGSL; `excite bench --backend gpu`) vs PyTorch eager FP32 (timm,
# TF32 off, cudnn.benchmark on) on SE-ResNet-50 and ResNet-50 at batch 1 and 32, 224x224;
# prints one table (scripts/bench_gpu_table.py).
#
#   scripts/bench_gpu.sh --dry-run   # anywhere: builds the release `excite`, writes both zoo
#                                    # networks and compiles each to naga-validated WGSL at
#                                    # batch 1 and 32, checks the Python side. No device.
#   scripts/bench_gpu.sh --build     # here: release `excite` copied to .gl/excite and the GPU zoo
#                                    # test (every zoo network vs the interpreter) to .gl/gpu_zoo
#   scripts/bench_gpu.sh --device    # on the GPU machine (device tool), e.g. with carry [".gl"]:
#     for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; scripts/bench_gpu.sh --device
#   (.gl/*.deb are the Vulkan/EGL loaders: see /work/.library/device/README.md; .gl is ignored.)
#   The networks are written on the device (`excite zoo build`): their weights are too big to carry.
#   On the device it first runs .gl/gpu_zoo (correctness on that GPU, EXCITE_REQUIRE_GPU=1),
#   then the timings, then one per-dispatch profile (timestamp queries) per network and batch,
#   kept as JSON in $OUT (the device tool's folder; a temporary one elsewhere) and summarised
#   by scripts/gpu_profile.py. SWEEP="0 256 1024" also times each value of the split-K knob
#   EXCITE_GPU_MIN_WORKGROUPS; VARIANTS="EXCITE_GPU_FOLD_SE=0 ..." times the build once per
#   environment setting listed (the GPU backend's A/B knobs; `A=1,B=1` sets both); COMPARE="FILE..." times other
#   builds of excite (e.g. the previous commit's, gzipped into .gl) in the same call.
#   REPEAT=N (default 2) times excite N times, each in a process of its own, and the table keeps
#   each cell's lowest median (a fresh machine's first benchmark has run 2-4x slow throughout).
#   ZOO_FILTER=NAME runs only the gpu_zoo tests matching NAME (the full run takes ~2 minutes
#   of device time, mostly the reference interpreter on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="se-resnet50 resnet50"
BATCHES="1 32"
ITERS="${ITERS:-30}"
WARMUP="${WARMUP:-5}"
REPEAT="${REPEAT:-2}"
EXCITE=.gl/excite
mode="${1:---dry-run}"
jobs() { for b in $BATCHES; do for m in $MODELS; do printf '%s:%s ' "$m" "$b"; done; done; }
build() {
    cargo build --release -p excite --bin excite
    mkdir -p .gl
    rm -f .gl/bench # the former example binary, if an old build left it
    # Stripped (~14 MB instead of ~80 MB with line tables) so .gl fits the device's 64 MiB carry.
    strip -o "$EXCITE" target/release/excite
    local t
    t="$(cargo test --release -p excite-runtime --test gpu_zoo --no-run --message-format=json |
        python3 -c 'import json,sys
for l in sys.stdin:
    j = json.loads(l)
    if j.get("executable") and j.get("target", {}).get("name") == "gpu_zoo":
        print(j["executable"])')"
    strip -o .gl/gpu_zoo "$t"
}
median_ms() { # EXE MODEL BATCH: the median GPU time of `EXE bench`, in ms
    "$1" bench "$2" --backend gpu --batch "$3" --iters "$ITERS" --warmup "$WARMUP" --json |
        python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["median_ms"])'
}
zoo() { # writes every network at 224x224 into $1
    for m in $MODELS; do
        "$EXCITE" zoo build "$m" -o "$1" --input-size 224 >/dev/null
    done
}
case "$mode" in
--dry-run)
    build
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
    zoo "$dir"
    for m in $MODELS; do
        for b in $BATCHES; do
            "$EXCITE" compile "$dir/$m.seir" --target wgsl --emit wgsl --batch "$b" -o "$dir/wgsl-$m-$b" >/dev/null
            n="$(find "$dir/wgsl-$m-$b" -name '*.wgsl' | wc -l)"
            [ "$n" -gt 0 ] || { echo "no WGSL written for $m batch $b" >&2; exit 1; }
            echo "dry-run excite $m batch $b: $n WGSL modules, each validated by naga"
        done
    done
    python3 scripts/bench_gpu_torch.py --dry-run $(jobs)
    python3 -m py_compile scripts/bench_gpu_table.py
    echo "dry-run table: scripts/bench_gpu_table.py compiles"
    ;;
--build)
    build
    ;;
--device)
    [ -x "$EXCITE" ] || { echo "no $EXCITE: run scripts/bench_gpu.sh --build here first" >&2; exit 2; }
    if ! ldconfig -p | grep -q libvulkan; then
        echo "warning: no libvulkan; unpack .gl/*.deb first" >&2
    fi
    [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
    zoo "$dir"
    keep="${OUT:-$dir}"
    if [ -x .gl/gpu_zoo ]; then
        echo "correctness: every zoo network on this GPU vs the interpreter (.gl/gpu_zoo)"
        # shellcheck disable=SC2086
        if EXCITE_REQUIRE_GPU=1 timeout 300 .gl/gpu_zoo ${ZOO_FILTER:-} >"$keep/gpu_zoo.log" 2>&1; then
            grep -E "^test result" "$keep/gpu_zoo.log"
        else
            echo "gpu_zoo FAILED (log in $keep/gpu_zoo.log):"
            grep -E "panicked|FAILED|failed|relative|test result" "$keep/gpu_zoo.log" | head -20
        fi
    fi
    out="$dir/results.txt"
    # A fresh machine's first benchmark ran 2-4x slow throughout (GPU timestamps included: the
    # GPU still at idle clocks); one untimed run first.
    "$EXCITE" bench "$dir/resnet50.seir" --backend gpu --batch 32 --iters 600 --warmup 5 \
        --json >/dev/null || true
    # REPEAT rounds of the excite timings, each a process of its own; the table keeps each
    # cell's lowest median (a process's first benchmark has run 2-4x slow throughout).
    for _ in $(seq "$REPEAT"); do
        for b in $BATCHES; do
            for m in $MODELS; do
                json="$("$EXCITE" bench "$dir/$m.seir" --backend gpu --batch "$b" \
                    --iters "$ITERS" --warmup "$WARMUP" --json)" || {
                    echo "excite $m $b FAILED"
                    continue
                }
                echo "excite $m $b $json" | tee -a "$out"
            done
        done
    done
    for b in $BATCHES; do
        for m in $MODELS; do
            "$EXCITE" bench "$dir/$m.seir" --backend gpu --batch "$b" --iters 3 --warmup 2 \
                --json --profile >"$keep/profile-$m-$b.json" &&
                python3 scripts/gpu_profile.py "$keep/profile-$m-$b.json" ||
                echo "profile $m $b FAILED"
        done
    done
    python3 scripts/bench_gpu_torch.py --iters "$ITERS" $(jobs) | tee -a "$out"
    cp "$out" "$keep/results.txt" 2>/dev/null || true
    python3 scripts/bench_gpu_table.py <"$out"
    # COMPARE=".gl/excite_old.gz ...": the same timings with other builds (gzip allowed), e.g.
    # the previous commit's, measured in the same call.
    for bin in ${COMPARE:-}; do
        exe="$dir/$(basename "$bin" .gz)"
        case "$bin" in *.gz) gunzip -c "$bin" >"$exe" ;; *) cp "$bin" "$exe" ;; esac
        chmod +x "$exe"
        for b in $BATCHES; do
            for m in $MODELS; do
                ms="$(median_ms "$exe" "$dir/$m.seir" "$b")" || ms=FAILED
                echo "compare $(basename "$exe") $m batch $b: $ms ms"
            done
        done
    done
    # VARIANTS="EXCITE_GPU_FOLD_SE=0 A=1,B=1 ...": the same timings under each environment
    # setting listed (comma-separated settings together).
    for v in ${VARIANTS:-}; do
        for b in $BATCHES; do
            for m in $MODELS; do
                # shellcheck disable=SC2086
                ms="$(IFS=,; for kv in $v; do export "${kv?}"; done; median_ms "$EXCITE" "$dir/$m.seir" "$b")" || ms=FAILED
                echo "variant $v $m batch $b: $ms ms"
            done
        done
    done
    # SWEEP="0 256 1024": the same timings at other EXCITE_GPU_MIN_WORKGROUPS (split-K knob).
    for v in ${SWEEP:-}; do
        for b in $BATCHES; do
            for m in $MODELS; do
                ms="$(EXCITE_GPU_MIN_WORKGROUPS=$v median_ms "$EXCITE" "$dir/$m.seir" "$b")" ||
                    ms=FAILED
                echo "sweep min_workgroups=$v $m batch $b: $ms ms"
            done
        done
    done
    ;;
*)
    echo "usage: $0 [--dry-run|--build|--device]" >&2
    exit 2
    ;;
esac
