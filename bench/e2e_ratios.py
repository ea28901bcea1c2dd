"""Joins gdn2's training rows (train-bench --json) and the anchor's (bench/e2e_anchor.py) from one device run into a
table with same-run ratios, printed and written to OUT_DIR/e2e_train.md. A gdn2 row that is not ok (train-bench's
loss gate) gets no ratio, and the script then exits 1; so does a missing anchor.

Usage: python3 bench/e2e_ratios.py OUT_DIR
"""
import json
import os
import sys

# gdn2's row file (OUT_DIR/train_<name>.json), the anchor row it is measured against, and the label.
ROWS = [
    ("paper_1.3b_gdn2", "train_pure", "1.59B pure GDN-2"),
    ("paper_1.3b_hybrid", "train_hybrid", "1.52B 3:1 hybrid, cuDNN attention"),
    ("paper_1.3b_hybrid_own_attention", "train_hybrid", "1.52B 3:1 hybrid, gdn2's attention kernels"),
    ("gdn2_350m", None, "344M pure GDN-2"),
]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"e2e_ratios: cannot read {path}: {e}", file=sys.stderr)
        return None


def main(out_dir):
    anchor = load(os.path.join(out_dir, "e2e_anchor.json")) or {}
    failed = not anchor
    lines = ["| model | B | gdn2 tok/s | MFU (6N) | peak GB | anchor tok/s | anchor MFU | anchor peak GB | gdn2 / anchor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, anchor_key, label in ROWS:
        row = load(os.path.join(out_dir, f"train_{name}.json"))
        if row is None:
            failed = True
            continue
        a = anchor.get(anchor_key) if anchor_key else None
        ok = row.get("ok") is True
        failed = failed or not ok
        ratio = f"**{row['tok_s'] / a['tok_s']:.2f}**" if ok and a else ("not ok" if not ok else "—")
        cells = [label, str(row["B"]), f"{row['tok_s']:,.0f}", f"{100 * row['mfu_6N']:.1f}%", f"{row['peak_GB']:.1f}"]
        cells += [f"{a['tok_s']:,.0f}", f"{100 * a['mfu_6N']:.1f}%", f"{a['peak_GB']:.1f}"] if a else ["—"] * 3
        lines.append("| " + " | ".join(cells + [ratio]) + " |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(out_dir, "e2e_train.md"), "w") as f:
        f.write(text)
    if failed:
        print("e2e_ratios: a row is missing or failed its gate (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
