// Golden GDN-2 case files (the format of fla's gdn2_ops.safetensors, tests/data/README.md) and checking an op against
// them.
//
// A file holds any number of cases; case C is the set of tensors named "C.<field>":
//   inputs      C.q, C.k, C.v, C.g (natural-log decay), optional C.b, C.w, C.h0, C.cu_seqlens (shapes as in ops/gdn2.h)
//   cotangents  optional C.do, C.dht (the loss is Σ o⊙do + Σ ht⊙dht)
//   expected    any of C.o, C.ht, C.dq, C.dk, C.dv, C.dg, C.db, C.dw, C.dh0
// q and k are taken as given (already L2-normalised); the scale is 1/sqrt(K) unless the file's metadata has
// "scale" or "C.scale".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gdn2/backend.h"
#include "gdn2/ops/gdn2.h"

namespace gdn2 {

struct Gdn2GoldenCase {
  std::string name;
  Gdn2Inputs in;
  Gdn2Options opt;
  Tensor d_o, dht;
  std::vector<std::pair<std::string, Tensor>> expected;  // field name ("o", "dq", ...) and tensor
};

// Reads every case of a golden file (sorted by name). FormatError for a case missing an input, a tensor that does
// not fit the contract, or non-finite values; the file itself is validated by the safetensors reader.
std::vector<Gdn2GoldenCase> gdn2_golden_read(const std::string& path);

enum class Gdn2CheckOp { chunk, recurrent, ref };  // chunk: chunk fwd + bwd; recurrent: fwd only; ref: fp64 oracle

struct Gdn2CheckResult {
  std::string name, shape, mode;
  std::vector<std::pair<std::string, double>> errors;  // field -> relative RMS error vs expected
  bool pass = true;
};

// Runs the op on the case and compares every expected field that it produces.
Gdn2CheckResult gdn2_golden_check(const Gdn2GoldenCase& c, Gdn2CheckOp op, Backend backend, DType compute,
                                  int chunk_size, double budget);

}  // namespace gdn2
