"""Joins gdn2's and fla's rows from one device run into bench/results rows with same-run ratios, and a table.

Usage: python3 bench/compare.py gdn2_rows.json fla_anchor.json gate_check.txt OUT.json OUT.md
"""
import json
import re
import sys

ours = json.load(open(sys.argv[1]))
fla = json.load(open(sys.argv[2]))
gate_text = open(sys.argv[3]).read() if len(sys.argv) > 3 else ""
anchor = {(r["suite"], r["case"]): r for r in fla["rows"]}
m = re.search(r"gate\s+.*?o ([0-9.e+-]+)", gate_text)
our_gate_err = float(m.group(1)) if m else None
fla_err = fla.get("fla_chunk_rel_err_vs_fp32_naive")
out = []
for r in ours:
    a = anchor.get((r["suite"], r.get("anchor_case", r["case"])))
    row = dict(r)
    if a is not None and not (r["suite"] == "ops.decode" and r["state_dtype"] != "fp32"):
        row["anchor"] = a["impl"]
        row["anchor_ms"] = a["ms"]
        row["ratio_vs_anchor"] = a["ms"] / r["ms"]
    elif r["suite"] == "ops.decode":
        a32 = anchor.get((r["suite"], r["case"]))
        if a32:
            row["anchor"] = a32["impl"] + " (fp32 state)"
            row["anchor_ms"] = a32["ms"]
            row["ratio_vs_anchor"] = a32["ms"] / r["ms"]
    row["fla_rel_err_same_inputs"] = fla_err
    row["gdn2_rel_err_same_inputs"] = our_gate_err
    out.append(row)
json.dump(out, open(sys.argv[4], "w"), indent=1)
torch_copy = f"{fla['copy_gbps']:.0f} GB/s (torch), " if "copy_gbps" in fla else ""
lines = [f"Device: {ours[0]['device'] if ours else '?'}; copy bandwidth {torch_copy}{ours[0]['copy_gbps']:.0f} GB/s (gdn2).",
         f"Accuracy on the same bf16 inputs (B1 T2048 H4, vs fp32 naive recurrence): fla chunk_gdn2 {fla_err:.2e}, "
         f"gdn2 CUDA chunk {our_gate_err if our_gate_err is None else f'{our_gate_err:.2e}'}.", "",
         "| suite | case | state | gdn2 ms | fla ms | ratio (fla/gdn2) | Mtok/s | GB/s | % copy BW |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in out:
    pct = 100 * r["gbps"] / r["copy_gbps"]
    lines.append(f"| {r['suite']} | {r['case']} | {r['state_dtype']} | {r['ms']:.4f} | "
                 f"{r.get('anchor_ms', float('nan')):.4f} | {r.get('ratio_vs_anchor', float('nan')):.2f} | "
                 f"{r.get('mtok_s', float('nan')):.1f} | {r['gbps']:.0f} | {pct:.0f}% |")
train = [r for r in out if r["suite"] == "ops.chunk_fwd_bwd"]
if train:
    lines += ["", "Forward + backward memory beyond the inputs: " + "; ".join(
        f"{r['case']} gdn2 {r['extra_mb']:.0f} MB (peak), fla "
        f"{anchor.get((r['suite'], r.get('anchor_case', r['case'])), {}).get('peak_extra_mb', float('nan')):.0f} MB (peak)"
        for r in train)]
open(sys.argv[5], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
