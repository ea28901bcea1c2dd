#!/usr/bin/env bash
# One device command: build, then
#   test    the CUDA test suite (log in $OUT/test_cuda.log)
#   bench   attention against torch SDPA (same shapes, same run; gdn2's own kernels through GDN2_CUDNN_ATTENTION=0,
#           then cuDNN's fused attention, the default), then decode throughput of the 1.43B
#           Qwen3.5-style hybrid through the continuous-batching decoder at batch 1, 16, 64 and 256 with CUDA graphs,
#           and batch 1 and 64 without (results as JSON in $OUT)
#   attn    the attention half of bench alone
# Usage: bench/device/serve.sh test|bench|attn
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
part="${1:?usage: serve.sh test|bench|attn}"
bench/device/build.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
g=build/cuda/gdn2
if [ "$part" = test ]; then
  timeout 420 build/cuda/tests/test_cuda "${@:2}" >"$out/test_cuda.log" 2>&1
  echo "test_cuda exit $?"
  grep -E "^\[  (PASSED|FAILED)|^\[==========\]" "$out/test_cuda.log" | tail -n 30
  grep -E "Failure" -A4 "$out/test_cuda.log" | head -n 60
else
  for shape in "-B 2 -T 4096 -H 16 --Hkv 4 -D 128" "-B 1 -T 16384 -H 16 --Hkv 4 -D 128"; do
    tag="$(echo $shape | awk '{print "B" $2 "T" $4}')"
    GDN2_CUDNN_ATTENTION=0 "$g" ops attn-bench --backend cuda $shape --reps 20 --json "$out/attn_gdn2_$tag.json" |
      tail -n 2
    GDN2_CUDNN_ATTENTION=1 "$g" ops attn-bench --backend cuda $shape --reps 20 --json "$out/attn_cudnn_$tag.json" | tail -n 2
    python3 bench/attention_sdpa.py $shape | tee "$out/attn_sdpa_$tag.json"
    python3 - "$out/attn_gdn2_$tag.json" "$out/attn_cudnn_$tag.json" "$out/attn_sdpa_$tag.json" <<'PY'
import json, sys
own, cudnn, sdpa = (json.load(open(p)) for p in sys.argv[1:4])
for name, a in (("gdn2 kernels", own), ("gdn2 via cuDNN", cudnn)):
    print(f"  {name} / sdpa time: forward {a['fwd_ms'] / sdpa['fwd_ms']:.2f}x, "
          f"forward+backward {a['fwd_bwd_ms'] / sdpa['fwd_bwd_ms']:.2f}x")
PY
  done
  [ "$part" = attn ] && exit 0
  "$g" infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 16 64 256 --prompt 512 --steps 32 \
    --json "$out/decode.json"
  "$g" infer-bench --config configs/qwen35_1.4b_hybrid.json --batch 1 64 --prompt 512 --steps 32 --no-cuda-graphs \
    --json "$out/decode_eager.json"
fi
