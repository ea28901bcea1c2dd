#!/usr/bin/env bash
# On a lent GPU machine (no package registry): configure and build the CUDA preset against the carried deps/
# (scripts/make_deps.sh makes it here). Prints the build log's tail on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
test -d deps || { echo "deps/ missing: run scripts/make_deps.sh and carry deps" >&2; exit 1; }
cmake --preset cuda -DCMAKE_PREFIX_PATH="$PWD/deps" -DGTEST_ROOT="$PWD/deps" -DGDN2_CUDA_ARCHS=90a >build-configure.log 2>&1 ||
  { tail -n 40 build-configure.log; exit 1; }
cmake --build --preset cuda -j "$(nproc)" >build-cuda.log 2>&1 || { grep -E "error" build-cuda.log | head -40; exit 1; }
echo "built build/cuda"
