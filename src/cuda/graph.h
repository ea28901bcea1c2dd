// CUDA graphs for the host code (no CUDA headers here): capture the GPU work a function enqueues, replay it later.
#pragma once

#include <functional>
#include <memory>

namespace gdn2::cuda {

class Graph {
 public:
  Graph() = default;
  // Captures the work that `work` enqueues on this thread's work stream (cuda/stream.h), which is switched to a
  // private capturing stream meanwhile; nothing runs. Memory the work allocates must be freed inside it (the graph's
  // own allocations). DeviceError when the work does something a capture forbids (a wait for the device, a
  // synchronous copy); the capture is then discarded.
  explicit Graph(const std::function<void()>& work);
  // Replays the captured work on this thread's work stream; no wait.
  void launch() const;
  bool defined() const { return impl_ != nullptr; }

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gdn2::cuda
