#!/usr/bin/env bash
# GPU benchmark: excite (wgpu, WGSL; `excite bench --backend gpu`) vs PyTorch eager FP32 (timm,
# TF32 off, cudnn.benchmark on) on SE-ResNet-50 and ResNet-50 at batch 1 and 32, 224x224;
# prints one table (scripts/bench_gpu_table.py).
#
#   scripts/bench_gpu.sh --dry-run   # anywhere: builds the release `excite`, writes both zoo
#                                    # networks and compiles each to naga-validated WGSL at
#                                    # batch 1 and 32, checks the Python side. No device.
#   scripts/bench_gpu.sh --build     # here: release `excite` copied to .gl/excite (carried with .gl)
#   scripts/bench_gpu.sh --device    # on the GPU machine (device tool), e.g. with carry [".gl"]:
#     for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; scripts/bench_gpu.sh --device
#   (.gl/*.deb are the Vulkan/EGL loaders: see /work/.library/device/README.md; .gl is ignored.)
#   The networks are written on the device (`excite zoo build`): their weights are too big to carry.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="se-resnet50 resnet50"
BATCHES="1 32"
ITERS="${ITERS:-30}"
WARMUP="${WARMUP:-5}"
EXCITE=.gl/excite
mode="${1:---dry-run}"
jobs() { for b in $BATCHES; do for m in $MODELS; do printf '%s:%s ' "$m" "$b"; done; done; }
build() {
    cargo build --release -p excite --bin excite
    mkdir -p .gl
    rm -f .gl/bench # the former example binary, if an old build left it
    # Stripped (~14 MB instead of ~80 MB with line tables) so .gl fits the device's 64 MiB carry.
    strip -o "$EXCITE" target/release/excite
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
    out="$dir/results.txt"
    for b in $BATCHES; do
        for m in $MODELS; do
            json="$("$EXCITE" bench "$dir/$m.seir" --backend gpu --batch "$b" \
                --iters "$ITERS" --warmup "$WARMUP" --json)"
            echo "excite $m $b $json" | tee -a "$out"
        done
    done
    python3 scripts/bench_gpu_torch.py --iters "$ITERS" $(jobs) | tee -a "$out"
    python3 scripts/bench_gpu_table.py <"$out"
    ;;
*)
    echo "usage: $0 [--dry-run|--build|--device]" >&2
    exit 2
    ;;
esac
