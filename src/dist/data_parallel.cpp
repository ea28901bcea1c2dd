// NCCL data parallelism: one communicator per process, collectives on the work stream (cuda/stream.h, where every op runs, so
// they are ordered after the backward's kernels and before the optimizer's without extra synchronisation).
#include "gdn2/distributed.h"

#include <cstring>

#ifdef GDN2_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include "cuda/stream.h"
#endif

namespace gdn2 {

#ifdef GDN2_WITH_NCCL

namespace {

void check_nccl(ncclResult_t r, const char* what) {
  GDN2_CHECK(r == ncclSuccess, DeviceError, "NCCL ", what, ": ", ncclGetErrorString(r));
}

void check_cuda(cudaError_t r, const char* what) {
  GDN2_CHECK(r == cudaSuccess, DeviceError, what, ": ", cudaGetErrorString(r));
}

ncclDataType_t nccl_type(const Tensor& t) {
  switch (t.dtype()) {
    case DType::f32: return ncclFloat32;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    default: GDN2_THROW(DTypeError, "data parallel: no NCCL type for ", t.describe());
  }
}

void check_cuda_tensor(const Tensor* t, const char* op) {
  GDN2_CHECK(t != nullptr && t->defined() && !t->is_cpu(), ValueError, "data parallel ", op,
             ": tensors must be defined CUDA tensors");
}

}  // namespace

struct DataParallel::Impl {
  ncclComm_t comm = nullptr;
  ~Impl() {
    if (comm != nullptr) ncclCommDestroy(comm);
  }
};

DataParallel::DataParallel(const DistEnv& env) : env_(env), impl_(std::make_unique<Impl>()) {
  int devices = 0;
  check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  GDN2_CHECK(env.local_rank < devices, ValueError, "data parallel: LOCAL_RANK ", env.local_rank, " but only ", devices,
             " GPUs are visible");
  check_cuda(cudaSetDevice(env.local_rank), "cudaSetDevice");
  ncclUniqueId id{};
  if (env.rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  const std::string blob = rendezvous_broadcast(env, std::string(reinterpret_cast<const char*>(&id), sizeof id));
  GDN2_CHECK(blob.size() == sizeof id, IoError, "data parallel: rendezvous gave ", blob.size(), " bytes, not ",
             sizeof id);
  std::memcpy(&id, blob.data(), sizeof id);
  check_nccl(ncclCommInitRank(&impl_->comm, env.world, id, env.rank), "ncclCommInitRank");
}

DataParallel::~DataParallel() = default;

void DataParallel::average(const std::vector<Tensor*>& tensors) {
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (Tensor* t : tensors) {
    check_cuda_tensor(t, "average");
    GDN2_CHECK(t->dtype() == DType::f32, DTypeError, "data parallel average: F32 tensors only, got ", t->describe());
    check_nccl(ncclAllReduce(t->raw(), t->raw_mut(), static_cast<size_t>(t->numel()), ncclFloat32, ncclAvg,
                             impl_->comm, cuda::stream()),
               "ncclAllReduce");
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

double DataParallel::average(double x) {
  Tensor t = Tensor::from_vector<double>({1}, {x}).to(Device::cuda);
  check_nccl(ncclAllReduce(t.raw(), t.raw_mut(), 1, ncclFloat64, ncclAvg, impl_->comm, cuda::stream()),
             "ncclAllReduce");
  return t.cpu().data<double>()[0];
}

void DataParallel::broadcast(const std::vector<Tensor*>& tensors) {
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (Tensor* t : tensors) {
    check_cuda_tensor(t, "broadcast");
    check_nccl(ncclBroadcast(t->raw(), t->raw_mut(), static_cast<size_t>(t->numel()), nccl_type(*t), 0, impl_->comm,
                             cuda::stream()),
               "ncclBroadcast");
  }
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

#else

struct DataParallel::Impl {};

DataParallel::DataParallel(const DistEnv& env) : env_(env) {
  GDN2_THROW(UnsupportedError, "data parallel training needs a build with CUDA and NCCL (GDN2_CUDA=ON, nccl.h and "
             "libnccl found)");
}

DataParallel::~DataParallel() = default;
void DataParallel::average(const std::vector<Tensor*>&) {}
double DataParallel::average(double x) { return x; }
void DataParallel::broadcast(const std::vector<Tensor*>&) {}

#endif

}  // namespace gdn2
