#!/usr/bin/env bash
# One device command: build, gdn2's CUDA benchmark (gated), fla's kernels at the same shapes (the carried
# .anchors/fla), gdn2 on fla's accuracy inputs, and the joined table. Results land in $OUT.
# Usage: bench/device/bench.sh [--quick]   (--quick: B4xT4096 only for the forward and forward+backward rows)
# fla's Triton kernels compile into .triton-cache/ (git-ignored). Packed without their intermediate IR, they come back as
# $OUT/triton-cache.tar.xz when that is under 16 MB; saved in the repository root as .triton-cache.tar.xz (git-ignored)
# and carried, it is unpacked here and fla's compiling is skipped.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
bench/device/build.sh || exit 1
build/cuda/gdn2 ops cuda-bench ${1:+"$1"} --json "$out/gdn2_rows.json" 2>&1 | tee "$out/gdn2_bench.log"
export TRITON_CACHE_DIR="$PWD/.triton-cache"
[ -d .triton-cache ] || [ ! -f .triton-cache.tar.xz ] || tar -xJf .triton-cache.tar.xz
PYTHONPATH="$PWD/.anchors:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 timeout 420 python3 bench/fla_anchor.py "$out" ${1:+"$1"} 2>&1 | grep --line-buffered -v Warning | tee "$out/fla.log" | tail -n 12
python3 bench/device/pack_triton_cache.py .triton-cache "$out/triton-cache.tar.xz"
build/cuda/gdn2 ops check "$out/fla_gate.safetensors" --backend cuda --budget 1 2>&1 | tee "$out/gate_check.txt"
rm -f "$out/fla_gate.safetensors"  # too large to come back; $OUT returns at most 8 files
python3 bench/compare.py "$out/gdn2_rows.json" "$out/fla_anchor.json" "$out/gate_check.txt" "$out/cuda_ops.json" "$out/cuda_ops.md"
