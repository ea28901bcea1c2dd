// Pieces of the pipelined batch decode (infer/batch_decoder.cpp) for the host code (no CUDA headers here): the step
// that feeds a decode's greedy picks into the next decode's inputs on the device, and a pinned host buffer that a
// device result is copied into without stopping the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// io is I32 [3 capacity] on the GPU: [ids | positions | lengths]. For each of the first g rows that is busy
// (length > 0): ids = picks (a negative pick, a non-finite row's, becomes 0), positions and lengths one more. Idle
// rows are left as they are. Enqueued on the work stream (so it can be captured in a graph).
void advance_decode_feed(Tensor& io, const Tensor& picks, int64_t g, int64_t capacity);

// A pinned host buffer and an event: start() enqueues a copy of a device tensor's first bytes on the work stream and
// returns at once; wait() blocks until that copy is done and gives the bytes.
class Readback {
 public:
  explicit Readback(size_t bytes);
  ~Readback();  // waits for a copy still under way
  Readback(const Readback&) = delete;
  Readback& operator=(const Readback&) = delete;

  void start(const Tensor& src, size_t bytes);
  const void* wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gdn2::cuda
