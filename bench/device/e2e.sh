#!/usr/bin/env bash
# One device command: build, then one part of the end-to-end benchmark (results as JSON in $OUT):
#   train   gdn2's training throughput (train-bench, gated on sane losses) at the ~350M config and the paper's 1.3B
#           configs (pure GDN-2 and 3:1 hybrid; the hybrid again with gdn2's own attention kernels instead of cuDNN's,
#           GDN2_CUDNN_ATTENTION=0) at T=4096, then the PyTorch + fla anchor on the same 1.3B models in
#           the same run (bench/e2e_anchor.py, fla carried in .anchors; its compiled Triton kernels come back as
#           $OUT/triton-cache.tar.xz, which a later run reuses when carried as .triton-cache.tar.xz); last, the
#           table of both with the same-run ratios (bench/e2e_ratios.py, also $OUT/e2e_train.md)
#   infer   prefill throughput at 8K and 32K tokens (1.3B hybrid; the second prefill of the prompt, the first as
#           prefill_cold_s) and decode tokens/s at batch 1, 16, 64, 256 after
#           a 512-token prompt (the Qwen3.5-style 1.43B GDN hybrid of the decode anchor), with F32 and then BF16
#           recurrent states, gated on finite logits
# Usage: bench/device/e2e.sh train|infer
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
part="${1:?usage: e2e.sh train|infer}"
bench/device/build.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
g=build/cuda/gdn2
if [ "$part" = train ]; then
  for c in paper_1.3b_gdn2:2 paper_1.3b_hybrid:2 gdn2_350m:8; do
    "$g" train-bench --config "configs/${c%%:*}.json" --batch "${c##*:}" --seq-len 4096 --json "$out/train_${c%%:*}.json"
  done
  GDN2_CUDNN_ATTENTION=0 "$g" train-bench --config configs/paper_1.3b_hybrid.json --batch 2 --seq-len 4096 \
    --json "$out/train_paper_1.3b_hybrid_own_attention.json"
  export TRITON_CACHE_DIR="$PWD/.triton-cache"
  [ -d .triton-cache ] || [ ! -f .triton-cache.tar.xz ] || tar -xJf .triton-cache.tar.xz
  OUT="$out" PYTHONPATH="$PWD/.anchors:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 timeout 400 python3 bench/e2e_anchor.py train \
    2>&1 | grep --line-buffered -v Warning | tail -n 4
  python3 bench/device/pack_triton_cache.py .triton-cache "$out/triton-cache.tar.xz"
  python3 bench/e2e_ratios.py "$out" || exit 1  # the table with same-run ratios; fails on a missing or failed row
else
  "$g" infer-bench --config configs/paper_1.3b_hybrid.json --batch 1 --prompt 8192 --steps 2 --json "$out/prefill_8k.json"
  "$g" infer-bench --config configs/paper_1.3b_hybrid.json --batch 1 --prompt 32768 --steps 2 --json "$out/prefill_32k.json"
  "$g" infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 16 64 256 --prompt 512 --steps 32 \
    --json "$out/decode.json"
  "$g" infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 16 64 256 --prompt 512 --steps 32 \
    --state-dtype bf16 --json "$out/decode_bf16.json"
fi
