#!/usr/bin/env bash
# Fetches the header-only cuDNN frontend (NVIDIA/cudnn-frontend, from its PyPI wheel nvidia-cudnn-frontend) into
# third_party/cudnn_frontend/include (git-ignored), for the CUDA build's fused attention (src/cuda/attention_cudnn.cpp).
# Prints that folder. Safe to run again; a failed fetch leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.32.0
dest=third_party/cudnn_frontend
if [ -f "$dest/include/cudnn_frontend.h" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "$dest/include"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$dest.partial"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "nvidia-cudnn-frontend==$version" >&2
mkdir -p "$dest.partial"
python3 - "$tmp" "$dest.partial" <<'PY'
import glob, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
for name in wheel.namelist():
    if name.startswith("include/"):
        wheel.extract(name, sys.argv[2])
PY
test -f "$dest.partial/include/cudnn_frontend.h"
echo "$version" >"$dest.partial/VERSION"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest/include"
