#!/usr/bin/env bash
# On a lent GPU machine: build, then the CUDA correctness checks (golden file, test suite, compute-sanitizer).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
bench/device/build.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
build/cuda/gdn2 info
# fla's golden file, joined from tests/data's two parts by the test build.
build/cuda/gdn2 ops check build/cuda/tests/data/gdn2_ops.safetensors --backend cuda --budget 1e-4
build/cuda/gdn2 ops check build/cuda/tests/data/gdn2_ops.safetensors --backend cuda --op recurrent --budget 1e-4
build/cuda/tests/test_cuda 2>&1 | tee "$out/test_cuda.log" | grep -E "^\[  (PASSED|FAILED|  OK|SKIPPED)|^\[ errors|Failure|error" | tail -n 90
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 3 build/cuda/tests/test_cuda \
    --gtest_filter='DecayGateCuda.*:CudaMemory.*:Gdn2Cuda.GoldenForward:Gdn2Cuda.DecodeStep*:Gdn2Cuda.MultiTokenStepInPlace:Gdn2Cuda.ChunkStatesPacked:Cases/Gdn2CudaSwept.ForwardMatchesCpu/*varlen*:Cases/Gdn2CudaSwept.BackwardMatchesCpu/*varlen*:Cases/Gdn2CudaSwept.BackwardMatchesCpu/*T1000*' \
    >"$out/sanitizer_$tool.log" 2>&1
  echo "compute-sanitizer $tool: exit $? ($(grep -cE 'Invalid|Race|ERROR SUMMARY: [1-9]' "$out/sanitizer_$tool.log") findings)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer_$tool.log" | tail -n 2
done
