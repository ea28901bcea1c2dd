#!/usr/bin/env bash
# Off the device: brings the CUDA build up to date, then packs its gdn2 and CUDA test binary (stripped, xz) and the
# timeline's tracer library (bench/device/gpu_timeline.sh) into DIR with the source root they were built in and the
# commit, so that a device command runs them without building
# (bench/device/unpack_binaries.sh there; carry DIR). The build must target sm_90a, as the device's does:
#   cmake --preset cuda -DCMAKE_PREFIX_PATH=$PWD/deps -DGDN2_CUDA_ARCHS=90a
# Usage: bench/device/pack_binaries.sh [DIR]   (DIR: build-pack unless given; about 17 MB)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-build-pack}"
grep -q '^GDN2_CUDA_ARCHS:STRING=90a$' build/cuda/CMakeCache.txt 2>/dev/null ||
  { echo "pack_binaries.sh: build/cuda is not configured for sm_90a alone (GDN2_CUDA_ARCHS=90a)" >&2; exit 1; }
git diff --quiet HEAD -- src include tests tools CMakeLists.txt ||
  echo "pack_binaries.sh: note: the tree has uncommitted changes; the binaries hold them" >&2
cmake --build --preset cuda -j "$(nproc)" >/dev/null
mkdir -p "$dir"
for b in gdn2 tests/test_cuda; do
  strip -o "$dir/.stripped" "build/cuda/$b"
  xz -T0 -6 -c "$dir/.stripped" >"$dir/$(basename "$b").xz.part"
  mv "$dir/$(basename "$b").xz.part" "$dir/$(basename "$b").xz"
done
rm -f "$dir/.stripped"
if [ -f build/cuda/libgdn2_kernel_trace.so ]; then cp build/cuda/libgdn2_kernel_trace.so "$dir/"; fi
echo "$PWD" >"$dir/source_root"
git rev-parse HEAD >"$dir/commit"
du -sh "$dir"
