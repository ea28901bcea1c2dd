// A GPU timeline recorder for any CUDA program, loaded by the driver through CUDA_INJECTION64_PATH: CUPTI's activity
// records of every kernel, copy and memset (device start and end in ns) go to the CSV file named by GDN2_TRACE_OUT
// (kernel_trace.csv by default) when the program exits. bench/device/gpu_timeline.sh reads it to find where the GPU
// idles between kernels (what a per-kernel profiler, which serialises the launches, cannot show).
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace {

constexpr size_t kBufferBytes = size_t{16} << 20;

std::mutex g_mu;
FILE* g_out = nullptr;

void write_row(const char* kind, unsigned long long start, unsigned long long end, const char* name) {
  std::fprintf(g_out, "%s,%llu,%llu,\"%s\"\n", kind, start, end, name != nullptr ? name : "");
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mu);
  CUpti_Activity* r = nullptr;
  while (g_out != nullptr && cuptiActivityGetNextRecord(buffer, valid, &r) == CUPTI_SUCCESS) {
    switch (r->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(r);
        write_row("kernel", k->start, k->end, k->name);
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(r);
        write_row("memcpy", m->start, m->end, ("copy kind " + std::to_string(m->copyKind)).c_str());
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(r);
        write_row("memset", m->start, m->end, "memset");
        break;
      }
      default: break;
    }
  }
  std::free(buffer);
}

void finish() {
  cuptiActivityFlushAll(1);
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_out != nullptr) std::fclose(g_out);
  g_out = nullptr;
}

}  // namespace

extern "C" int InitializeInjection() {
  const char* path = std::getenv("GDN2_TRACE_OUT");
  g_out = std::fopen(path != nullptr ? path : "kernel_trace.csv", "w");
  if (g_out == nullptr) return 0;
  std::fprintf(g_out, "kind,start_ns,end_ns,name\n");
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS) return 0;
  for (CUpti_ActivityKind kind :
       {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET})
    if (cuptiActivityEnable(kind) != CUPTI_SUCCESS) std::fprintf(stderr, "kernel_trace: activity %d not enabled\n", kind);
  std::atexit(finish);
  return 1;
}
