#!/usr/bin/env bash
# The main job: set up and build, check the GDN-2 ops against fla's golden file, then train the default small GDN-2
# hybrid (configs/small_hybrid.json, ~10M parameters) on the installed English corpus for a few minutes, save it and
# print a generated sample. Steps already done (corpus text, tokenizer, shards) are reused; training resumes from its
# last checkpoint unless --no-resume is given. Extra arguments go to `gdn2 train` (e.g. --time-budget 600).
# Environment: GDN2_RUN_DIR (default runs/main), GDN2_TIME_BUDGET seconds (default 240).
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(scripts/setup.sh | tail -n 1)"
gdn2="$build/gdn2"
run="${GDN2_RUN_DIR:-runs/main}"
budget="${GDN2_TIME_BUDGET:-240}"
mkdir -p "$run"

"$gdn2" info
# fla's golden file of the ops, joined from its two parts by the test build (tests/data/README.md).
golden="$build/tests/data/gdn2_ops.safetensors"
if [ -f "$golden" ]; then
  "$gdn2" ops check "$golden" | tail -n 1
else
  echo "ops check: skipped (the build has no tests, so no joined $golden)"
fi
[ -s "$run/corpus.txt" ] || "$gdn2" data corpus --out "$run/corpus.txt"
[ -s "$run/tokenizer.json" ] ||
  "$gdn2" tokenizer train --input "$run/corpus.txt" --vocab-size 8192 --special "<|endoftext|>" --out "$run/tokenizer.json"
[ -s "$run/data/val.bin" ] ||
  "$gdn2" data prepare --corpus "$run/corpus.txt" --tokenizer "$run/tokenizer.json" --out "$run/data"
"$gdn2" train --config configs/small_hybrid.json --data "$run/data" --tokenizer "$run/tokenizer.json" \
  --out "$run/train" --time-budget "$budget" --batch 8 --seq-len 256 --lr 2e-3 --eval-every 25 \
  --sample-prompt "The Python interpreter" "$@"
