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
    --section SourceCounters --import-source yes \
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
# Source hot spots: one CSV per profiled kernel (the first launch of each name), top lines by stall samples.
ncu -i "$out/gdn2_profile.ncu-rep" --page source --csv --print-source cuda >"$out/profile_source.csv" 2>/dev/null ||
  { echo "(this ncu cannot print the source page)"; exit 0; }
python3 - "$out/profile_source.csv" <<'PY'
import csv, io, sys
text = open(sys.argv[1], errors="replace").read()
# The source page prints one table per kernel, each after a line naming the kernel.
blocks, name, buf = [], "?", []
for line in text.splitlines():
    if line.startswith('"') or line.startswith("#") or "," in line:
        buf.append(line)
    else:
        if buf:
            blocks.append((name, buf))
        name, buf = line.strip(), []
if buf:
    blocks.append((name, buf))
seen = set()
for name, lines in blocks:
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if len(rows) < 2:
        continue
    head = rows[0]
    col = next((i for i, h in enumerate(head) if "Sampling" in h and "All" in h), None)
    src = next((i for i, h in enumerate(head) if h.strip().lower() in ("source", "# source")), None)
    num = next((i for i, h in enumerate(head) if h.strip() in ("#", "Line", "# Line")), 0)
    if col is None or src is None or name in seen:
        continue
    seen.add(name)
    body = []
    for r in rows[1:]:
        try:
            body.append((float(r[col] or 0), r[num], r[src].strip()[:90]))
        except (ValueError, IndexError):
            pass
    total = sum(b[0] for b in body) or 1.0
    print(f"== {name[:100]}")
    for v, line, code in sorted(body, reverse=True)[:12]:
        print(f"  {100 * v / total:5.1f}%  line {line:>5}  {code}")
PY
