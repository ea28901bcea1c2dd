#!/usr/bin/env bash
# On a lent machine of 2 GPUs: data parallel through NCCL, started by torchrun (--no-python: one gdn2 process per
# GPU). (1) The same global batch on one GPU and on two gives the same losses step by step; (2) scaling efficiency:
# training tokens/s of the 1.59B pure GDN-2 model at B2xT4096 per GPU on one GPU and on two. Needs build/cuda and the carried
# runs/main/data (scripts/main.sh makes it). Results land in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
bench/device/build.sh || exit 1
export NCCL_NVLS_ENABLE=0
gdn2="$PWD/build/cuda/gdn2"
args=(train --config configs/small_hybrid.json --data runs/main/data --batch 16 --seq-len 256 --steps 30 --lr 2e-3
      --eval-every 0 --eval-batches 1 --checkpoint-every 0 --sample-tokens 0 --no-resume --no-progress --backend cuda)
"$gdn2" "${args[@]}" --out runs/dp/one | tail -n 1
torchrun --nproc-per-node 2 --master-port 29511 --no-python "$gdn2" "${args[@]}" --out runs/dp/two 2>&1 | tail -n 2
python3 - "$out" <<'PY'
import json, sys
load = lambda d: [json.loads(l) for l in open(f"runs/dp/{d}/train_log.jsonl")]
one, two = load("one"), load("two")
diffs = [abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(one, two)]
r = {"steps": len(diffs), "loss_one_first_last": [one[0]["loss"], one[-1]["loss"]],
     "loss_two_first_last": [two[0]["loss"], two[-1]["loss"]], "max_rel_loss_diff": max(diffs),
     "mean_rel_loss_diff": sum(diffs) / len(diffs)}
print("same global batch, 1 GPU vs 2:", json.dumps(r))
json.dump(r, open(sys.argv[1] + "/dp_losses.json", "w"), indent=1)
PY
bench=(train-bench --config configs/paper_1.3b_gdn2.json --batch 2 --seq-len 4096 --steps 6 --warmup 3)
"$gdn2" "${bench[@]}" --json "$out/dp_bench_one.json" | tail -n 1
torchrun --nproc-per-node 2 --master-port 29512 --no-python "$gdn2" "${bench[@]}" --json "$out/dp_bench_two.json" | tail -n 1
python3 -c "
import json; a = json.load(open('$out/dp_bench_one.json')); b = json.load(open('$out/dp_bench_two.json'))
print('scaling efficiency (2 GPUs):', round(b['tok_s'] / (2 * a['tok_s']), 3), 'tok/s', round(a['tok_s']), '->', round(b['tok_s']))"
