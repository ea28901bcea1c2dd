#!/usr/bin/env bash
# On a lent GPU machine: where a gdn2 command leaves the GPU idle. Records every kernel, copy and memset with its device
# start and end (bench/trace/kernel_trace.cpp, injected through CUDA_INJECTION64_PATH; the launches run as they
# normally do), then reports, over the steady steps, the busy and idle time per step, the GPU time by kernel, the idle
# gaps by size, and which kernels the longest idle time comes before and after. --per NAME marks the steps: the window runs from the end of
# the first kernel whose name contains NAME to the end of the last (e.g. adamw: one per training step).
# Usage: bench/device/gpu_timeline.sh LABEL --per NAME -- gdn2-arguments...
# e.g.   gpu_timeline.sh train_1.59b --per adamw -- train-bench --config configs/paper_1.3b_gdn2.json --batch 2 \
#          --seq-len 4096
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
label="${1:?usage: gpu_timeline.sh LABEL --per NAME -- gdn2-arguments...}"
shift
per=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --per) per="$2"; shift 2 ;;
    *) echo "gpu_timeline.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shift
test -x build/cuda/gdn2 || bench/device/build.sh || exit 1
lib="$PWD/build/cuda/libgdn2_kernel_trace.so"
test -f "$lib" || { echo "gpu_timeline.sh: $lib was not built (no CUPTI in the CUDA toolkit)" >&2; exit 1; }
# CUPTI: the toolkit's, else the one PyTorch's wheels bring.
cupti_dir="$(dirname "$(find /usr/local/cuda/ /usr/local/cuda-*/ -name 'libcupti.so*' 2>/dev/null | head -n 1)" 2>/dev/null)"
[ -n "$cupti_dir" ] && [ "$cupti_dir" != . ] ||
  cupti_dir="$(python3 -c 'import nvidia, glob, os; print(os.path.dirname(sorted(glob.glob(list(nvidia.__path__)[0] + "/**/libcupti.so*", recursive=True))[0]))' 2>/dev/null)"
LD_LIBRARY_PATH="${cupti_dir:+$cupti_dir:}${LD_LIBRARY_PATH:-}" CUDA_INJECTION64_PATH="$lib" \
  GDN2_TRACE_OUT="$out/$label.trace.csv" build/cuda/gdn2 "$@" >"$out/$label.log" 2>&1 ||
  { tail -n 20 "$out/$label.log"; exit 1; }
python3 - "$out/$label.trace.csv" "$per" "$label" <<'PY'
import collections, csv, re, sys
path, per, label = sys.argv[1:4]
def short(name, kind):
    # A readable kernel name: a mangled one's last identifiers (namespace, kernel, first template argument).
    if not name.startswith("_Z"):
        return name.split("(")[0][:60] or kind
    ids, i = [], 2
    while i < len(name):  # <length><identifier> pieces of the Itanium mangling
        m = re.match(r"\d+", name[i:])
        if not m:
            i += 1
            continue
        j = i + m.end()
        ident = name[j:j + int(m.group())]
        if ident[:1].isalpha() or ident[:1] == "_":
            ids.append(ident)
            i = j + len(ident)
        else:
            i = j
    keep = [x for x in ids if not x.startswith("_GLOBAL__N") and x not in ("gdn2", "cuda", "detail", "cuda_hooks")]
    return " ".join(keep[:3])[:60] or name[:60]
rows = [(int(r["start_ns"]), int(r["end_ns"]), r["name"], short(r["name"], r["kind"])) for r in csv.DictReader(open(path))]
rows.sort()
marks = [e for s, e, full, n in rows if per and per in full]
if len(marks) < 2:
    sys.exit(f"{label}: {len(marks)} kernels named {per!r}; need at least two to mark steps")
# Steps between consecutive marks; those longer than 1.25x the median (set-up, a timing pause) are left out. Copies
# count as activities but not as busy time (a copy to pageable memory lasts as long as the host takes to take it).
spans = sorted(zip(marks, marks[1:]), key=lambda w: w[1] - w[0])
median = spans[len(spans) // 2][1] - spans[len(spans) // 2][0]
wins = sorted(w for w in spans if w[1] - w[0] <= 1.25 * median)
steps, wall = len(wins), sum(b - a for a, b in wins)
busy, gaps = 0, []
kinds, spent = collections.Counter(), collections.Counter()
for lo, hi in wins:
    end, prev = lo, "(step start)"
    for s, e, full, n in rows:
        if s < lo or e > hi:
            continue
        kinds[n] += 1
        if n.startswith("copy kind"):
            e = s
        spent[n] += e - s
        if s > end:
            gaps.append((s - end, prev, n))
        if e > end:
            busy += e - max(s, end)
            end = e
        prev = n
idle = wall - busy
print(f"== {label}: {steps} of {len(spans)} steps (median {median / 1e6:.2f} ms), {wall / steps / 1e6:.2f} ms a step, "
      f"GPU busy {busy / steps / 1e6:.2f} ms, idle {idle / steps / 1e6:.2f} ms ({100 * idle / wall:.1f}%), "
      f"{sum(kinds.values()) / steps:.0f} activities a step")
edges = [0, 2e3, 10e3, 50e3, 200e3, 1e12]
for a, b in zip(edges, edges[1:]):
    sel = [g for g, _, _ in gaps if a <= g < b]
    print(f"  gaps {a / 1e3:>5.0f}-{b / 1e3 if b < 1e12 else float('inf'):>5.0f} us: {len(sel) / steps:7.1f} a step, "
          f"{sum(sel) / steps / 1e6:7.2f} ms a step")
by = collections.defaultdict(lambda: [0, 0])
for g, p, n in gaps:
    by[(p, n)][0] += g
    by[(p, n)][1] += 1
print("  GPU time a step by kernel (ms, launches a step):")
for n, t in spent.most_common(22):
    print(f"    {t / steps / 1e6:8.3f} ms {100 * t / busy:5.1f}% {kinds[n] / steps:6.0f}x  {n}")
print("  idle before -> after (ms a step, gaps a step):")
for (p, n), (t, c) in sorted(by.items(), key=lambda kv: -kv[1][0])[:25]:
    print(f"    {t / steps / 1e6:7.3f} ms {c / steps:6.1f}x  {p} -> {n}")
PY
