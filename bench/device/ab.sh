#!/usr/bin/env bash
# One device command: one part timed for this tree, a base source tree built beside it, and this tree under each
# VAR=VALUE given, the arms interleaved and run twice:
#   decode  infer-bench of the 1.43B hybrid (batch 1, 16, 64 and 256 after a 512-token prompt), with F32 and then BF16
#           recurrent states; tok/s by batch
#   train   train-bench of the paper's 1.3B pure GDN-2 and 3:1 hybrid at 2 x 4096 tokens; tok/s and step time
# The base tree is another commit's sources (`git archive <commit> | tar -x -C base`), carried as a folder; it builds
# against this tree's deps/. JSON rows in $OUT/ab/<part>_ab.json (rows by arm), and a table by arm, pass and column
# (also in $OUT/ab/<part>_ab.txt).
# Usage: bench/device/ab.sh decode|train [--base DIR|BINARY] [--env VAR=VALUE]... [--passes N] [--no-build]
# (N: 2 unless given; --no-build: time build/cuda/gdn2 as it is, e.g. a binary built elsewhere and laid out by
# bench/device/unpack_binaries.sh)
# (--base BINARY: a gdn2 binary built from the other commit on a machine with the same CUDA toolkit, carried along)
# (--env "A=0 B=0": one arm with both set)
# e.g.   bench/device/ab.sh train --no-build --env GDN2_CUDNN_ATTENTION=0
set -uo pipefail
cd "$(dirname "$0")/../.."
part="${1:-}"
case "$part" in decode|train) shift ;; *) echo "usage: ab.sh decode|train [options]" >&2; exit 2 ;; esac
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
    *) echo "ab.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
if [ "$build" = 1 ]; then bench/device/build.sh || exit 1; fi
test -x build/cuda/gdn2 || { echo "ab.sh: no build/cuda/gdn2" >&2; exit 1; }
base_bin=""
if [ -f "$base" ] && [ -x "$base" ]; then  # a gdn2 binary built elsewhere: it finds its libraries where this tree's does
  base_bin="$base"
  LD_LIBRARY_PATH="$(ldd build/cuda/gdn2 | awk '/=> \//{print $3}' | xargs -n1 dirname | sort -u | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
  "$base_bin" --help >/dev/null || { echo "ab.sh: the base binary $base does not run here" >&2; exit 1; }
elif [ -n "$base" ]; then
  test -d "$base" || { echo "ab.sh: no base tree or binary at $base" >&2; exit 2; }
  ln -sfn "$PWD/deps" "$base/deps"
  (cd "$base" && bench/device/build.sh) || exit 1
  base_bin="$base/build/cuda/gdn2"
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [ "$part" = decode ]; then
  settings=(f32 bf16)
else
  settings=(paper_1.3b_gdn2 paper_1.3b_hybrid)
fi
for s in "${settings[@]}"; do
  if [ "$part" = decode ]; then
    args=(infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 16 64 256 --prompt 512 --steps 32
          --state-dtype "$s")
  else
    args=(train-bench --config "configs/$s.json" --batch 2 --seq-len 4096)
  fi
  for pass in $(seq 1 "$passes"); do
    build/cuda/gdn2 "${args[@]}" --json "$out/head_${s}_p$pass.json" >/dev/null || exit 1
    if [ -n "$base_bin" ]; then
      "$base_bin" "${args[@]}" --json "$out/base_${s}_p$pass.json" >/dev/null || exit 1
    fi
    for e in ${envs[@]+"${envs[@]}"}; do
      env $e build/cuda/gdn2 "${args[@]}" --json "$out/${e//[^A-Za-z0-9]/_}_${s}_p$pass.json" >/dev/null || exit 1
    done
  done
done
python3 - "$out" "$part" <<'PY'
# One table (<part>_ab.txt) and one file of rows by arm (<part>_ab.json) in place of the per-arm files, so that few
# files come back from the device. Decode: tok/s by batch; train: tok/s and step ms.
import json, os, sys
out, part = sys.argv[1], sys.argv[2]
rows, full = {}, {}
for f in sorted(os.listdir(out)):
    if not f.endswith('.json') or f.endswith('_ab.json'):
        continue
    arm = f[:-5]
    full[arm] = json.load(open(os.path.join(out, f)))
    if part == 'decode':
        rows[arm] = {f'B{r["B"]}': r['decode_tok_s'] for r in full[arm]}
    else:
        rows[arm] = {'tok/s': full[arm]['tok_s'], 'step ms': 1e3 * full[arm]['step_s']}
cols = list(dict.fromkeys(c for v in rows.values() for c in v))
width = max([len(a) for a in rows] + [3]) + 2
lines = ['arm'.ljust(width) + ''.join(c.rjust(12) for c in cols)]
for arm, v in rows.items():
    lines.append(arm.ljust(width) + ''.join(f'{v.get(c, 0):12,.1f}' if c == 'step ms' else f'{v.get(c, 0):12,.0f}'
                                             for c in cols))
print('\n'.join(lines))
open(os.path.join(out, f'{part}_ab.txt'), 'w').write('\n'.join(lines) + '\n')
json.dump(full, open(os.path.join(out, f'{part}_ab.json'), 'w'), indent=1)
for arm in full:
    os.remove(os.path.join(out, arm + '.json'))
PY
