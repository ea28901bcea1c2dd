#!/usr/bin/env bash
# On a lent GPU machine: the main job on one GPU. Trains the default small hybrid (configs/small_hybrid.json) on the
# prepared corpus with the main job's settings for BUDGET seconds, writes the loss curve and a generated sample, and
# runs a few steps of the same training on this machine's CPU cores for the tokens/s comparison.
# Needs build/cuda (bench/device/build.sh) and the carried runs/main/data and runs/main/tokenizer.json (made by
# scripts/main.sh). Usage: bench/device/real_run.sh [BUDGET_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
budget="${1:-180}"
gdn2=build/cuda/gdn2
data=runs/main/data
tok=runs/main/tokenizer.json
test -s "$data/val.bin" && test -s "$tok" ||
  { echo "carry runs/main/data and runs/main/tokenizer.json (scripts/main.sh makes them)" >&2; exit 1; }
common=(--config configs/small_hybrid.json --data "$data" --batch 8 --seq-len 256 --lr 2e-3 --no-resume)
echo "== CPU ($(nproc) cores), 6 steps"
"$gdn2" train "${common[@]}" --out runs/gpu_run/cpu --steps 6 --warmup 2 --eval-every 0 --eval-batches 1 \
  --sample-tokens 0 --no-progress --backend cpu | tee "$out/real_run_cpu.txt"
echo "== GPU, ${budget} s"
"$gdn2" train "${common[@]}" --out runs/gpu_run/gpu --tokenizer "$tok" --time-budget "$budget" --eval-every 100 \
  --sample-prompt "The Python interpreter" --sample-tokens 120 --no-progress --backend cuda | tee "$out/real_run_gpu.txt"
cp runs/gpu_run/gpu/loss.png "$out/real_run_loss.png"
cp runs/gpu_run/gpu/train_log.jsonl "$out/real_run_train_log.jsonl"
