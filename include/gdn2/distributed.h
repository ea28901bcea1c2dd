// Data parallelism across processes, one per GPU, through NCCL: the process group from the usual launchers'
// environment, a rendezvous that hands NCCL's id from rank 0 to the others over TCP, and the collectives training
// needs (gradient averaging, scalar averaging, parameter broadcast).
//
// Launch: torchrun-style variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; or mpirun (Open MPI's
// OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK, or PMI_RANK / PMI_SIZE), with MASTER_ADDR and MASTER_PORT defaulting to
// 127.0.0.1:29500. Each process drives GPU LOCAL_RANK. Rank 0's rendezvous listens on MASTER_PORT, or on MASTER_PORT + 1
// under torchrun (TORCHELASTIC_RUN_ID set: torchrun's own store holds MASTER_PORT), or on GDN2_RENDEZVOUS_PORT.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The process group the environment describes; nullopt when no world size is set. ValueError on inconsistent or
// malformed values (rank outside the world, a port outside 1..65535, ...).
std::optional<DistEnv> dist_env_from_environment();

// Rendezvous: rank 0 listens on master_port and sends `blob` to every other rank, which connect to
// master_addr:master_port (retrying for up to timeout_s) and receive it. Returns the blob on every rank. IoError on
// failure or timeout.
std::string rendezvous_broadcast(const DistEnv& env, const std::string& blob, double timeout_s = 120.0);

class DataParallel {
 public:
  // Selects GPU local_rank, exchanges NCCL's unique id through rendezvous_broadcast and joins the communicator.
  // UnsupportedError in a build without NCCL.
  explicit DataParallel(const DistEnv& env);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }

  // Every tensor (F32 CUDA) replaced in place by its mean over the ranks; one grouped launch.
  void average(const std::vector<Tensor*>& tensors);
  // The mean of x over the ranks (every rank gets the same double).
  double average(double x);
  // Every tensor (CUDA) replaced by rank 0's.
  void broadcast(const std::vector<Tensor*>& tensors);

 private:
  struct Impl;
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gdn2
