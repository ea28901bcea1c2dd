#!/usr/bin/env bash
# One device command: decode of the 1.43B hybrid (infer-bench, batch 1, 16, 64 and 256 after a 512-token prompt) for
# this tree, a base source tree built beside it, and this tree under each VAR=VALUE given, the arms interleaved and
# run twice, with F32 and then BF16 recurrent states. The base tree is another commit's sources
# (`git archive <commit> | tar -x -C base`), carried as a folder; it builds against this tree's deps/. JSON rows in
# $OUT/ab/decode_ab.json (rows by arm), and a table of tok/s by arm, pass and batch (also in
# $OUT/ab/decode_ab.txt).
# Usage: bench/device/decode_ab.sh [--base DIR|BINARY] [--env VAR=VALUE]... [--passes N] [--no-build]
# (N: 2 unless given; --no-build: time build/cuda/gdn2 as it is, e.g. a binary built elsewhere and laid out by
# bench/device/unpack_binaries.sh)
# (--base BINARY: a gdn2 binary built from the other commit on a machine with the same CUDA toolkit, carried along)
# (--env "A=0 B=0": one arm with both set)
# e.g.   bench/device/decode_ab.sh --base base --env GDN2_PDL=0
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}/ab"
base=""
envs=()
passes=2
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --passes) passes="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "decode_ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
if [ "$build" = 1 ]; then bench/device/build.sh || exit 1; fi
test -x build/cuda/gdn2 || { echo "decode_ab.sh: no build/cuda/gdn2" >&2; exit 1; }
base_bin=""
if [ -f "$base" ] && [ -x "$base" ]; then  # a gdn2 binary built elsewhere: it finds its libraries where this tree's does
  base_bin="$base"
  LD_LIBRARY_PATH="$(ldd build/cuda/gdn2 | awk '/=> \//{print $3}' | xargs -n1 dirname | sort -u | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
  "$base_bin" --help >/dev/null || { echo "decode_ab.sh: the base binary $base does not run here" >&2; exit 1; }
elif [ -n "$base" ]; then
  test -d "$base" || { echo "decode_ab.sh: no base tree or binary at $base" >&2; exit 2; }
  ln -sfn "$PWD/deps" "$base/deps"
  (cd "$base" && bench/device/build.sh) || exit 1
  base_bin="$base/build/cuda/gdn2"
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
args=(infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 16 64 256 --prompt 512 --steps 32)
for states in f32 bf16; do
  for pass in $(seq 1 "$passes"); do
    build/cuda/gdn2 "${args[@]}" --state-dtype "$states" --json "$out/head_${states}_p$pass.json" >/dev/null || exit 1
    if [ -n "$base_bin" ]; then
      "$base_bin" "${args[@]}" --state-dtype "$states" --json "$out/base_${states}_p$pass.json" >/dev/null ||
        exit 1
    fi
    for e in ${envs[@]+"${envs[@]}"}; do
      env $e build/cuda/gdn2 "${args[@]}" --state-dtype "$states" --json "$out/${e//[^A-Za-z0-9]/_}_${states}_p$pass.json" \
        >/dev/null || exit 1
    done
  done
done
python3 - "$out" <<'PY'
# One table (decode_ab.txt) and one file of rows by arm (decode_ab.json) in place of the per-arm files, so that few
# files come back from the device.
import json, os, sys
out = sys.argv[1]
rows, full = {}, {}
for f in sorted(os.listdir(out)):
    if not f.endswith('.json') or f == 'decode_ab.json':
        continue
    arm = f[:-5]
    full[arm] = json.load(open(os.path.join(out, f)))
    for r in full[arm]:
        rows.setdefault(arm, {})[r['B']] = r['decode_tok_s']
batches = sorted({b for v in rows.values() for b in v})
lines = ['arm'.ljust(34) + ''.join(f'B{b}'.rjust(12) for b in batches)]
for arm, v in rows.items():
    lines.append(arm.ljust(34) + ''.join(f'{v.get(b, 0):12,.0f}' for b in batches))
print('\n'.join(lines))
open(os.path.join(out, 'decode_ab.txt'), 'w').write('\n'.join(lines) + '\n')
json.dump(full, open(os.path.join(out, 'decode_ab.json'), 'w'), indent=1)
for arm in full:
    os.remove(os.path.join(out, arm + '.json'))
PY
