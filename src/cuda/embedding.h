// CUDA backend of the embedding lookup and its gradient (include/gdn2/ops/dense.h); arguments validated by
// src/ops/dense.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// y [..., D] = table [V, D] rows at ids, in the table's dtype (F32, BF16 or F16). ids I32/I64: on the CPU, already
// checked in [0, V) by the caller (copied up here); on the GPU, read in place and checked by the kernel, which flags
// an id outside [0, V) in device memory: ValueError after waiting for it; with check false nothing waits and such a
// row comes out zero.
Tensor embedding_gather(const Tensor& ids, const Tensor& table, bool check = true);
// dtable [V, D] (F32) += dy [n, D] (F32, BF16 or F16) rows scattered to ids (host values, each in [0, V)).
// Deterministic, no atomics: rows grouped by id on the host (counting sort, row order kept), then each id's rows
// summed in row order in fp32 and added once.
void embedding_scatter_add(const Tensor& dy, const std::vector<int64_t>& ids, Tensor& dtable);

}  // namespace gdn2::cuda
