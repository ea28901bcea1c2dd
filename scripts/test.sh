#!/usr/bin/env bash
# Builds gdn2 and runs the whole test suite (ctest). Where nvcc exists, also compiles the CUDA backend, and runs
# its tests only when a GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(scripts/setup.sh | tail -n 1)"
jobs="$(nproc 2>/dev/null || echo 2)"
if [ "$build" = "build/cpu" ] && command -v nvcc >/dev/null 2>&1; then
  echo "test: compiling the CUDA backend (no GPU here: its tests do not run)"
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$jobs" --target gdn2_cli
fi
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
