#!/usr/bin/env bash
# On a lent GPU machine: where the time goes in the CUDA GDN-2 kernels. Builds, then runs `gdn2 ops cuda-bench
# --quick --reps 1` (B4xT4096 forward, forward+backward, decode) under Nsight Compute and prints, per kernel, the
# duration, achieved occupancy, executed instructions and DRAM throughput. The full report (with the warp-state
# sections) lands in $OUT.
# Usage: bench/device/profile.sh [kernel-name regex, default: every gdn2 kernel] [launches to profile, default 90]
# e.g. the bf16 backward, one launch of each kernel: profile.sh 'regex:chunk_(dstate64|grad64|pair64)_kernel' 3
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
filter="${1:-regex:(chunk|recurrent|segment|reduce)_}"
bench/device/build.sh || exit 1
launches="${2:-90}"
ncu --clock-control none --kernel-name "$filter" --launch-count "$launches" \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
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
# Per kernel (first instance of each name): what its warps wait on (stall reasons, cycles per issued instruction), which
# pipes are busy, and shared-memory bank conflicts, from the raw page. Metric families differ between ncu versions, so
# every matching column is taken by pattern and the top ones printed.
ncu -i "$out/gdn2_profile.ncu-rep" --page raw --csv >"$out/profile_raw.csv" 2>/dev/null
python3 - "$out/profile_raw.csv" <<'PY'
import csv, re, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
if len(rows) < 3:
    sys.exit(print("(no raw page)"))
head, data, seen = rows[0], rows[2:], set()
def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return None
name_col = head.index("Kernel Name") if "Kernel Name" in head else None
for r in data:
    name = r[name_col][:60] if name_col is not None else "?"
    if name in seen:
        continue
    seen.add(name)
    vals = {h: num(v) for h, v in zip(head, r)}
    print(f"== {name}")
    for fam in (r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active\.ratio",
                r"smsp__average_warp_latency_issue_stalled_(\w+)", r"smsp__pcsamp_warps_issue_stalled_(\w+)$"):
        st = sorted(((v, m.group(1)) for h, v in vals.items() if v and (m := re.fullmatch(fam, h))), reverse=True)
        if st:
            print("   stalls (" + fam.split("(")[0] + "*): " + ", ".join(f"{k} {v:.2f}" for v, k in st[:8]))
            break
    pipes = sorted(((v, h) for h, v in vals.items() if v and re.search(r"pipe_\w+_cycles_active.*pct", h)), reverse=True)
    if pipes:
        print("   pipes: " + ", ".join(f"{h.split('pipe_')[1].split('_cycles')[0]} {v:.0f}%" for v, h in pipes[:6]))
    for key in ("smsp__inst_executed.sum", "sm__warps_active.avg.pct_of_peak_sustained_active",
                "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum",
                "l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum",
                "l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum"):
        if vals.get(key) is not None:
            print(f"   {key} = {vals[key]:.4g}")
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
