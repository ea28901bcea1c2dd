#!/usr/bin/env bash
# On a lent GPU machine (no package registry): configure and build the CUDA preset against the carried deps/
# (scripts/make_deps.sh makes it here). Prints the build log's tail on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
test -d deps || { echo "deps/ missing: run scripts/make_deps.sh and carry deps" >&2; exit 1; }
# NCCL: the CUDA toolkit's, else the nvidia-nccl wheel that PyTorch brings.
nccl_root="$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)"
# cuDNN: the CUDA toolkit's, else the nvidia-cudnn wheel that PyTorch brings.
cudnn_root="$(python3 -c 'import nvidia.cudnn as n; print(list(n.__path__)[0])' 2>/dev/null || true)"
cmake --preset cuda -DCMAKE_PREFIX_PATH="$PWD/deps" -DGTEST_ROOT="$PWD/deps" -DGDN2_CUDA_ARCHS=90a \
  ${nccl_root:+-DGDN2_NCCL_ROOT="$nccl_root"} ${cudnn_root:+-DGDN2_CUDNN_ROOT="$cudnn_root"} >build-configure.log 2>&1 ||
  { tail -n 40 build-configure.log; exit 1; }
cmake --build --preset cuda -j "$(nproc)" >build-cuda.log 2>&1 || { grep -E "error" build-cuda.log | head -40; exit 1; }
echo "built build/cuda"
