#!/usr/bin/env bash
# On a lent GPU machine: where a gdn2 command's GPU time goes, kernel by kernel. Runs the command under Nsight Compute
# collecting only each kernel's duration (one pass, no replay), then prints per kernel name its launches, total time
# and share. With --last F only the last fraction F of the launches counts (e.g. the decode steps after a prefill),
# and with --per NAME the totals are divided by the launches of the kernel whose name contains NAME (e.g. one per
# decode step or training step).
# Usage: bench/device/kernel_times.sh LABEL [--last F] [--per NAME] -- gdn2-arguments...
# e.g.   kernel_times.sh decode_b1 --last 0.5 --per argmax -- infer-bench --config configs/qwen35_1.4b_hybrid.json \
#          --batch 1 --prompt 64 --steps 16 --no-cuda-graphs
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
label="${1:?usage: kernel_times.sh LABEL [--last F] [--per NAME] -- gdn2-arguments...}"
shift
last=1.0
per=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --last) last="$2"; shift 2 ;;
    --per) per="$2"; shift 2 ;;
    *) echo "kernel_times.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shift
test -x build/cuda/gdn2 || bench/device/build.sh || exit 1
ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw --log-file "$out/$label.csv" \
  build/cuda/gdn2 "$@" >"$out/$label.log" 2>&1 || { tail -n 20 "$out/$label.log"; exit 1; }
python3 - "$out/$label.csv" "$last" "$per" "$label" <<'PY'
import collections, csv, sys
path, last, per, label = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = open(path, errors="replace").read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
rows = list(csv.DictReader(lines[start:]))[1:]  # the second row holds the units
def us(r):
    return float(r["gpu__time_duration.sum"].replace(",", "")) / 1e3  # ns -> us
rows = rows[int(len(rows) * (1.0 - last)):]
tot = collections.defaultdict(float)
cnt = collections.Counter()
for r in rows:
    name = r["Kernel Name"].split("(")[0][:70]
    tot[name] += us(r)
    cnt[name] += 1
div = 1
if per:
    div = sum(c for n, c in cnt.items() if per in n) or 1
total = sum(tot.values())
print(f"== {label}: {len(rows)} launches, {total / div:.1f} us of kernel time" + (f" per {per} ({div} of them)" if per else ""))
for name, t in sorted(tot.items(), key=lambda kv: -kv[1])[:40]:
    print(f"  {t / div:10.1f} us {100 * t / total:5.1f}%  x{cnt[name] / div:7.1f}  {name}")
PY
