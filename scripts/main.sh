#!/usr/bin/env bash
# The main job: set up and build, then check the GDN-2 ops against the golden file and benchmark them on the CPU.
# Extra arguments go to `gdn2 ops bench` (e.g. -T 1024).
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(scripts/setup.sh | tail -n 1)"
gdn2="$build/gdn2"
"$gdn2" info
echo
"$gdn2" ops check tests/data/gdn2_ops.safetensors
echo
"$gdn2" ops bench "$@"
