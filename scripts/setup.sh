#!/usr/bin/env bash
# Installs what the build needs (Debian packages; with nvcc, the cuDNN frontend's headers) and the training corpus (scripts/get_corpus.sh), and builds gdn2:
# the CUDA preset where nvcc and a GPU exist, else the CPU preset. Prints the build folder's name on its last line.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake g++ make git nlohmann-json3-dev libcli11-dev libgtest-dev libpng-dev libpcre2-dev libutf8proc-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# The header-only cuDNN frontend for the CUDA build's fused attention (without it, gdn2's own attention kernels).
if command -v nvcc >/dev/null 2>&1; then
  scripts/get_cudnn_frontend.sh >/dev/null ||
    echo "setup: the cuDNN frontend was not fetched: the CUDA build uses gdn2's own attention kernels only" >&2
fi

corpus="$(scripts/get_corpus.sh | tail -n 1)"  # the training corpus (docs/data.md)
echo "setup: corpus in $corpus" >&2

preset="${GDN2_PRESET:-}"
if [ -z "$preset" ]; then
  preset=cpu
  if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    preset=cuda
  fi
fi
jobs="$(nproc 2>/dev/null || echo 2)"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" 2>&1 | grep -E "error|warning: unused|Error" >&2 || true
test -x "build/$preset/gdn2" || { echo "setup: build failed (see: cmake --build --preset $preset)" >&2; exit 1; }
echo "build/$preset"
