#!/usr/bin/env bash
# On a lent GPU machine: what bounds each kernel of a gdn2 command. Runs the command under Nsight Compute with the
# speed-of-light, occupancy and launch sections for the first COUNT launches whose kernel name matches REGEX, then
# prints one line per kernel name (medians over its launches): duration, memory and SM throughput as % of peak, DRAM
# bytes moved, warp instructions executed (millions) and the schedulers' issue-active %, achieved occupancy, registers
# per thread and shared memory per block; then, from the warp-state section, the five largest stall reasons (warps
# stalled per issued instruction, by reason).
# Usage: bench/device/kernel_profile.sh LABEL REGEX COUNT -- gdn2-arguments...
# e.g.   kernel_profile.sh conv 'conv_' 6 -- train-bench --config configs/gdn2_350m.json --batch 2 --seq-len 4096 \
#          --warmup 0 --steps 1
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
label="${1:?usage: kernel_profile.sh LABEL REGEX COUNT -- gdn2-arguments...}"
regex="${2:?kernel name regex}"
count="${3:?launches to profile}"
shift 3
[ "${1:-}" = "--" ] && shift
test -x build/cuda/gdn2 || bench/device/build.sh || exit 1
ncu --kernel-name-base function --kernel-name "regex:$regex" --launch-count "$count" \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --metrics dram__bytes.sum,smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active \
  --csv --page raw --log-file "$out/$label.profile.csv" build/cuda/gdn2 "$@" >"$out/$label.log" 2>&1 ||
  { tail -n 20 "$out/$label.log"; exit 1; }
python3 - "$out/$label.profile.csv" "$label" <<'PY'
import collections, csv, re, statistics, sys
path, label = sys.argv[1:3]
lines = open(path, errors="replace").read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
rows = list(csv.DictReader(lines[start:]))[1:]  # the second row holds the units
cols = {
    "us": ("gpu__time_duration.sum", 1e-3),
    "mem%": ("gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed", 1),
    "sm%": ("sm__throughput.avg.pct_of_peak_sustained_elapsed", 1),
    "MB": ("dram__bytes.sum", 1e-6),
    "Minst": ("smsp__inst_executed.sum", 1e-6),
    "issue%": ("smsp__issue_active.avg.pct_of_peak_sustained_active", 1),
    "occ%": ("sm__warps_active.avg.pct_of_peak_sustained_active", 1),
    "regs": ("launch__registers_per_thread", 1),
    "smemKB": ("launch__shared_mem_per_block", 1 / 1024),
    "grid": ("launch__grid_size", 1),
    "block": ("launch__block_size", 1),
}
def num(r, key, scale):
    v = r.get(key, "")
    try:
        return float(v.replace(",", "")) * scale
    except ValueError:
        return float("nan")
by = collections.defaultdict(list)
for r in rows:
    by[r["Kernel Name"].split("(")[0][:60]].append(r)
print(f"== {label}: {len(rows)} launches (medians per kernel name)")
print(f"  {'kernel':60s} {'n':>3s} " + " ".join(f"{c:>8s}" for c in cols))
for name, rs in sorted(by.items(), key=lambda kv: -sum(num(r, *cols['us']) for r in kv[1])):
    vals = [statistics.median(num(r, *spec) for r in rs) for spec in cols.values()]
    print(f"  {name:60s} {len(rs):3d} " + " ".join(f"{v:8.1f}" for v in vals))
    stall = re.compile(r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active\.ratio$")
    reasons = {m.group(1): statistics.median(num(r, k, 1) for r in rs) for k in rs[0] if (m := stall.match(k))}
    top = sorted(((v, k) for k, v in reasons.items() if v == v), reverse=True)[:5]
    if top:
        print("      stalls per issue: " + ", ".join(f"{k} {v:.2f}" for v, k in top))
PY
