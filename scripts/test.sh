#!/usr/bin/env bash
# Builds gdn2 and runs the whole test suite (ctest). Where nvcc exists, also compiles the CUDA backend, and runs
# its tests only when a GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(scripts/setup.sh | tail -n 1)"
jobs="$(nproc 2>/dev/null || echo 2)"
if [ "$build" = "build/cpu" ] && command -v nvcc >/dev/null 2>&1; then
  echo "test: compiling the CUDA backend and its tests (no GPU here: they do not run)"
  cmake --preset cuda >/dev/null
  if ! cmake --build --preset cuda -j "$jobs" >build/cuda-build.log 2>&1; then
    grep -E "error" build/cuda-build.log >&2 || tail -n 30 build/cuda-build.log >&2
    echo "test: the CUDA build failed (build/cuda-build.log)" >&2
    exit 1
  fi
fi
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
