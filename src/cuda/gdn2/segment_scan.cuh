// The context-parallel scan over each sequence's segments, shared by the forward state pass (chunk_state.cu) and the
// backward's state-gradient pass (chunk_bwd.cu). Each segment s acts on the carried value X ([K, V] per value head)
// as X -> M_s X + X0_s, packed as E_s = [X0_s | M_s] (fp32 [kmax, vpad + kmax] per segment and value head, from the
// transition pass). The scan walks a sequence's segments in order (forward) or in reverse (backward), starting from
// X = init (fp32 [N, HV, K, V], or null: zeros), and writes the X entering each next segment to out (fp32
// [segs, HV, kmax, vpad]). fp32 on CUDA cores: thread (row group, column group) keeps a kmax/16 x 4 tile, M^T and X
// in shared memory. One block per (64 columns, value head, sequence).
#pragma once

#include <cstdint>

#include "cuda/common.cuh"

namespace gdn2::cuda {

struct SegmentScan {
  const int64_t* seq_seg0 = nullptr;  // [N + 1]: sequence n owns segments [seq_seg0[n], seq_seg0[n+1])
  const float* seg_state = nullptr;   // E
  float* out = nullptr;
  const float* init = nullptr;
  int32_t N = 0, HV = 0, K = 0, V = 0, vpad = 0;
};

// Segment seg as the state passes see it: its sequence n, its chunks [c_begin, c_end), and whether it starts or ends
// its sequence (seg_seq, seg_chunk0 and seq_chunk0 as in params.h, ChunkWork).
struct Segment {
  int n, c_begin, c_end;
  bool first, last;
};
__device__ __forceinline__ Segment segment_of(const int64_t* seg_seq, const int64_t* seg_chunk0,
                                              const int64_t* seq_chunk0, int seg) {
  const int n = static_cast<int>(seg_seq[seg]);
  const int c_begin = static_cast<int>(seg_chunk0[seg]), c_end = static_cast<int>(seg_chunk0[seg + 1]);
  return {n, c_begin, c_end, c_begin == seq_chunk0[n], c_end == seq_chunk0[n + 1]};
}

// The state gradient a block of a reverse (state-gradient) pass starts from at row d < K, column col of value head
// block (seg_blk = segment · HV + hv): in the transition pass the identity on the columns past vpad (zeros elsewhere);
// otherwise, for a sequence's last segment, dht (or zero), and for any other, what the reverse scan left in seg_dS
// ([segs, HV, kmax, vpad]).
__device__ __forceinline__ float reverse_pass_entry(bool transition, bool last, int d, int col, int K, int V, int vpad,
                                                    int kmax, int64_t seg_blk, const float* seg_dS, const float* dht,
                                                    int64_t state_base) {
  if (d >= K) return 0.f;  // rows past K stay zero
  if (transition) return col >= vpad && d == col - vpad ? 1.f : 0.f;
  if (!last) return seg_dS[(seg_blk * kmax + d) * vpad + col];
  return dht != nullptr && col < V ? dht[state_base + static_cast<int64_t>(d) * V + col] : 0.f;
}

constexpr int kScanThreads = 256, kScanCols = 64;

template <int KMAX>
struct ScanSmem {
  float Mt[KMAX][KMAX + 4];  // M^T: [column j][row r]
  float X[KMAX][kScanCols + 4];
};

template <int KMAX, bool kReverse>
__global__ void __launch_bounds__(kScanThreads, 1) segment_scan_kernel(SegmentScan a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  ScanSmem<KMAX>& sm = *reinterpret_cast<ScanSmem<KMAX>*>(smem_raw);
  constexpr int RT = KMAX / 16;  // rows per thread
  const int col0 = blockIdx.x * kScanCols, hv = blockIdx.y, n = blockIdx.z, tid = threadIdx.x;
  const int s_begin = static_cast<int>(a.seq_seg0[n]), s_end = static_cast<int>(a.seq_seg0[n + 1]);
  if (s_end - s_begin < 2) return;
  const int K = a.K, V = a.V, vpad = a.vpad, ld = vpad + KMAX;
  const int r0 = RT * (tid / 16), c0 = 4 * (tid % 16);
  const int64_t init_base = (static_cast<int64_t>(n) * a.HV + hv) * K * V;
  for (int idx = tid; idx < KMAX * kScanCols; idx += kScanThreads) {
    const int r = idx / kScanCols, c = idx % kScanCols, col = col0 + c;
    sm.X[r][c] = a.init != nullptr && r < K && col < V ? a.init[init_base + static_cast<int64_t>(r) * V + col] : 0.f;
  }
  for (int step = 0; step + 1 < s_end - s_begin; ++step) {
    const int s = kReverse ? s_end - 1 - step : s_begin + step, next = kReverse ? s - 1 : s + 1;
    const float* E = a.seg_state + (static_cast<int64_t>(s) * a.HV + hv) * KMAX * ld;
    for (int idx = tid; idx < KMAX * KMAX; idx += kScanThreads) {
      const int r = idx / KMAX, j = idx % KMAX;
      sm.Mt[j][r] = E[static_cast<int64_t>(r) * ld + vpad + j];
    }
    float acc[RT][4];
#pragma unroll
    for (int i = 0; i < RT; ++i) {
      const float4 z = *reinterpret_cast<const float4*>(E + static_cast<int64_t>(r0 + i) * ld + col0 + c0);
      acc[i][0] = z.x, acc[i][1] = z.y, acc[i][2] = z.z, acc[i][3] = z.w;
    }
    __syncthreads();  // M^T and the previous X are in place
#pragma unroll 4
    for (int j = 0; j < KMAX; ++j) {
      const float4 x = *reinterpret_cast<const float4*>(&sm.X[j][c0]);
      float m[RT];
#pragma unroll
      for (int i = 0; i < RT; i += 4) {
        const float4 y = *reinterpret_cast<const float4*>(&sm.Mt[j][r0 + i]);
        m[i] = y.x, m[i + 1] = y.y, m[i + 2] = y.z, m[i + 3] = y.w;
      }
#pragma unroll
      for (int i = 0; i < RT; ++i) {
        acc[i][0] += m[i] * x.x, acc[i][1] += m[i] * x.y, acc[i][2] += m[i] * x.z, acc[i][3] += m[i] * x.w;
      }
    }
    __syncthreads();  // every thread is done reading M^T and X
    float* H = a.out + (static_cast<int64_t>(next) * a.HV + hv) * KMAX * vpad;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
      const float4 v = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      *reinterpret_cast<float4*>(&sm.X[r0 + i][c0]) = v;
      *reinterpret_cast<float4*>(H + static_cast<int64_t>(r0 + i) * vpad + col0 + c0) = v;
    }
  }
}

template <int KMAX, bool kReverse>
void launch_segment_scan(const SegmentScan& a, cudaStream_t stream) {
  launch_with_smem(segment_scan_kernel<KMAX, kReverse>, dim3(a.vpad / kScanCols, a.HV, a.N), kScanThreads,
                   sizeof(ScanSmem<KMAX>), stream, a);
}

}  // namespace gdn2::cuda
