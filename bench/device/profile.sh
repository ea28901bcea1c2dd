#!/usr/bin/env bash
# On a lent GPU machine: where the time goes in the CUDA GDN-2 kernels. Builds, then runs `gdn2 ops cuda-bench
# --quick --reps 1` (B4xT4096 forward, forward+backward, decode) under Nsight Compute and prints, per kernel, the
# duration, achieved occupancy, executed instructions and DRAM throughput. The full report (with the warp-state
# sections) lands in $OUT.
# Usage: bench/device/profile.sh [kernel-name regex, default: every gdn2 kernel]
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
filter="${1:-regex:(chunk|recurrent|segment|reduce)_}"
bench/device/build.sh || exit 1
ncu --clock-control none --kernel-name "$filter" --launch-count 90 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    -o "$out/gdn2_profile" -f build/cuda/gdn2 ops cuda-bench --quick --reps 1 >"$out/profile_run.log" 2>&1 ||
  { tail -n 20 "$out/profile_run.log"; exit 1; }
ncu -i "$out/gdn2_profile.ncu-rep" --page details --csv >"$out/profile.csv" 2>/dev/null
python3 - "$out/profile.csv" <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
want = {"Duration": "time", "Achieved Occupancy": "occupancy %", "Executed Instructions": "instructions",
        "DRAM Throughput": "DRAM %"}
per = collections.OrderedDict()
for r in rows:
    key = (r.get("ID"), r.get("Kernel Name", "")[:60])
    if r.get("Metric Name") in want:
        per.setdefault(key, {})[want[r["Metric Name"]]] = f"{r.get('Metric Value')} {r.get('Metric Unit', '')}".strip()
for (i, name), m in per.items():
    print(f"{i:>3} {name:<60} " + "  ".join(f"{k}={v}" for k, v in m.items()))
PY
