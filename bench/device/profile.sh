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
# Source hot spots: the source page as CUDA lines and as SASS, top rows by warp stall samples. Where a page carries no
# sampling column, its column names are printed instead, so the next run knows what this ncu writes.
for view in cuda sass; do
  ncu -i "$out/gdn2_profile.ncu-rep" --page source --csv --print-source "$view" >"$out/profile_source_$view.csv" 2>/dev/null ||
    { echo "(this ncu cannot print the $view source page)"; continue; }
  python3 - "$out/profile_source_$view.csv" "$view" <<'PY'
import csv, io, sys
text = open(sys.argv[1], errors="replace").read()
tables, buf = [], []
for line in text.splitlines():  # one CSV table per kernel / file, each starting with its header row
    if line.startswith('"') and buf and not buf[-1].startswith('"'):
        buf = []
    if not line.startswith('"'):
        if buf:
            tables.append(buf)
        buf = []
        continue
    buf.append(line)
if buf:
    tables.append(buf)
shown = 0
for lines in tables:
    rows = [r for r in csv.reader(io.StringIO("\n".join(lines))) if r]
    head = next((r for r in rows if any("Source" in h for h in r)), None)
    if head is None:
        continue
    body = rows[rows.index(head) + 1:]
    col = next((i for i, h in enumerate(head) if "Stall Sampling (All" in h), None)
    if col is None:
        col = next((i for i, h in enumerate(head) if "Sampling" in h or "Instructions Executed" in h), None)
    src = next(i for i, h in enumerate(head) if "Source" in h)
    num = next((i for i, h in enumerate(head) if h.strip() in ("#", "Line", "# Line", "Line No", "Address", "# Address")), 0)
    if col is None:
        print(f"{sys.argv[2]} page columns: {head}")
        continue
    vals = []
    for r in body:
        try:
            vals.append((float((r[col] or "0").replace(",", "")), r[num], r[src].strip()[:90]))
        except (ValueError, IndexError):
            pass
    total = sum(v[0] for v in vals) or 1.0
    print(f"== {sys.argv[2]} view, by {head[col]}")
    for v, where, code in sorted(vals, reverse=True)[:15]:
        print(f"  {100 * v / total:5.1f}%  {where:>8}  {code}")
    shown += 1
    if shown >= 4:
        break
PY
done
