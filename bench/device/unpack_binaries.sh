#!/usr/bin/env bash
# On the device: lays out what bench/device/pack_binaries.sh packed (DIR, carried) as a build would leave it, so that
# build/cuda/gdn2 and build/cuda/tests/test_cuda run here without building:
#   - the two binaries into build/cuda, with the timeline's tracer library where it was packed;
#   - the test data they read, joined and unpacked into build/cuda/tests/data as tests/CMakeLists.txt does;
#   - a link from the source root they were built in to this tree (their paths to the test data and the CLI);
#   - build/cuda/env.sh, which sets LD_LIBRARY_PATH to the CUDA toolkit's and PyTorch's cuDNN and NCCL libraries.
# Then:  . build/cuda/env.sh && (cd build/cuda/tests && ./test_cuda)   and any command that runs build/cuda/gdn2.
# Usage: bench/device/unpack_binaries.sh [DIR]   (DIR: build-pack unless given)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-build-pack}"
for f in gdn2.xz test_cuda.xz source_root; do
  test -f "$dir/$f" || { echo "unpack_binaries.sh: $dir/$f missing: run pack_binaries.sh off the device and carry $dir" >&2; exit 1; }
done
mkdir -p build/cuda/tests/data/tokenizers
xz -dc "$dir/gdn2.xz" >build/cuda/gdn2
xz -dc "$dir/test_cuda.xz" >build/cuda/tests/test_cuda
chmod +x build/cuda/gdn2 build/cuda/tests/test_cuda
if [ -f "$dir/libgdn2_kernel_trace.so" ]; then cp "$dir/libgdn2_kernel_trace.so" build/cuda/; fi
cat tests/data/gdn2_ops.safetensors.part1 tests/data/gdn2_ops.safetensors.part2 >build/cuda/tests/data/gdn2_ops.safetensors
want="$(sed -n 's/^set(GDN2_GOLDEN_SHA256 "\([0-9a-f]*\)")$/\1/p' tests/CMakeLists.txt)"
test "$(sha256sum build/cuda/tests/data/gdn2_ops.safetensors | cut -d' ' -f1)" = "$want" ||
  { echo "unpack_binaries.sh: the golden file's parts do not join into the recorded file" >&2; exit 1; }
tar -xJf tests/data/tokenizers/qwen3.json.tar.xz -C build/cuda/tests/data/tokenizers
root="$(cat "$dir/source_root")"
if [ "$root" != "$PWD" ]; then
  mkdir -p "$(dirname "$root")"
  if [ -e "$root" ] && [ ! -L "$root" ]; then
    echo "unpack_binaries.sh: $root exists here and is not a link; the binaries' paths would read it" >&2
    exit 1
  fi
  ln -sfn "$PWD" "$root"
fi
libs=/usr/local/cuda/lib64:/usr/local/cuda/lib
for m in cudnn nccl; do
  d="$(python3 -c "import nvidia.$m as n, os; print(os.path.join(list(n.__path__)[0], 'lib'))" 2>/dev/null)" &&
    libs="$libs:$d"
done
echo "export LD_LIBRARY_PATH=$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" >build/cuda/env.sh
. build/cuda/env.sh
if ldd build/cuda/gdn2 | grep -q "not found"; then
  ldd build/cuda/gdn2 | grep "not found" >&2
  exit 1
fi
echo "unpacked $(cat "$dir/commit" 2>/dev/null || echo '(commit unknown)') into build/cuda"
