#!/usr/bin/env bash
# The test command: installs the Python oracles, regenerates ONNX's node test data, runs every
# Rust test. Safe to run on a fresh machine (needs cargo and python3 with pip).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -r scripts/requirements.txt
python3 scripts/gen_node_tests.py
cargo test --workspace --all-targets
cargo test --workspace --doc
