#!/usr/bin/env bash
# One device command: build, gdn2's CUDA benchmark (gated), fla's kernels at the same shapes (the carried
# .anchors/fla), gdn2 on fla's accuracy inputs, and the joined table. Results land in $OUT.
# Usage: bench/device/bench.sh [--quick]   (--quick: B4xT4096 only for the forward and forward+backward rows)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
bench/device/build.sh || exit 1
build/cuda/gdn2 ops cuda-bench ${1:+"$1"} --json "$out/gdn2_rows.json" 2>&1 | tee "$out/gdn2_bench.log"
PYTHONPATH="$PWD/.anchors:${PYTHONPATH:-}" timeout 420 python3 bench/fla_anchor.py "$out" ${1:+"$1"} 2>&1 | grep -v Warning | tee "$out/fla.log" | tail -n 12
build/cuda/gdn2 ops check "$out/fla_gate.safetensors" --backend cuda --budget 1 2>&1 | tee "$out/gate_check.txt"
python3 bench/compare.py "$out/gdn2_rows.json" "$out/fla_anchor.json" "$out/gate_check.txt" "$out/cuda_ops.json" "$out/cuda_ops.md"
