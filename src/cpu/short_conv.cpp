// CPU short causal depthwise convolution: forward, backward and decode step, parallel over blocks of rows.
#include "cpu/short_conv.h"

#include <algorithm>

#include "cpu/parallel.h"
#include "cpu/scalar_math.h"

namespace gdn2::cpu {

namespace {

constexpr int64_t kRowsPerBlock = 32;

// Rows [begin, end) (global row indices) of sequence `seq`; a block never crosses a sequence boundary.
struct RowBlock {
  int64_t seq, begin, end;
};

std::vector<RowBlock> row_blocks(const std::vector<int64_t>& offsets) {
  std::vector<RowBlock> blocks;
  for (size_t n = 0; n + 1 < offsets.size(); ++n)
    for (int64_t r = offsets[n]; r < offsets[n + 1]; r += kRowsPerBlock)
      blocks.push_back({static_cast<int64_t>(n), r, std::min(offsets[n + 1], r + kRowsPerBlock)});
  return blocks;
}

// Read access to the convolution's inputs: x, the weight transposed to [W, C] (so loops over channels are
// contiguous), the bias and the initial cache, with sequence position p < 0 reading the cache.
template <class T>
struct ConvInputs {
  const T* x;
  const T* bias;   // null when absent
  const T* cache;  // null when absent (zeros)
  const std::vector<int64_t>& offsets;
  int64_t C, W, M;  // M = W − 1 cached inputs
  std::vector<T> wt;

  explicit ConvInputs(const ShortConvArgs& a)
      : x(a.x.data<T>()),
        bias(a.bias.defined() ? a.bias.data<T>() : nullptr),
        cache(a.initial_cache.defined() ? a.initial_cache.data<T>() : nullptr),
        offsets(a.seq_offsets),
        C(a.weight.size(0)),
        W(a.weight.size(1)),
        M(W - 1),
        wt(static_cast<size_t>(C * W)) {
    const T* w = a.weight.data<T>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < W; ++i) wt[static_cast<size_t>(i * C + c)] = w[c * W + i];
  }

  // Input of sequence n at position p >= −M, channel c.
  T input(int64_t n, int64_t p, int64_t c) const {
    if (p >= 0) return x[(offsets[n] + p) * C + c];
    return cache ? cache[(n * C + c) * M + (M + p)] : T(0);
  }

  // Pre-activation z[0..C) of global row r, which belongs to sequence n: bias, then the taps in order.
  void pre_activation(int64_t n, int64_t r, T* z) const {
    const int64_t t = r - offsets[n];
    for (int64_t c = 0; c < C; ++c) z[c] = bias ? bias[c] : T(0);
    for (int64_t i = 0; i < W; ++i) {
      const T* w = wt.data() + i * C;
      const int64_t p = t - M + i;
      if (p >= 0) {
        const T* xr = x + (r - M + i) * C;
        for (int64_t c = 0; c < C; ++c) z[c] += w[c] * xr[c];
      } else if (cache) {
        for (int64_t c = 0; c < C; ++c) z[c] += w[c] * cache[(n * C + c) * M + (M + p)];
      }
    }
  }
};

template <class T>
ShortConvResult forward_impl(const ShortConvArgs& a, bool want_final_cache) {
  const ConvInputs<T> in(a);
  const int64_t rows = a.x.size(0), C = in.C, M = in.M;
  const int64_t N = static_cast<int64_t>(a.seq_offsets.size()) - 1;
  const std::vector<RowBlock> blocks = row_blocks(a.seq_offsets);
  const bool par = worth_parallel(rows * C * in.W);
  ShortConvResult out;
  out.y = Tensor::empty({rows, C}, a.x.dtype());
  T* y = out.y.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (size_t b = 0; b < blocks.size(); ++b)
    for (int64_t r = blocks[b].begin; r < blocks[b].end; ++r) {
      T* yr = y + r * C;
      in.pre_activation(blocks[b].seq, r, yr);
      if (a.activation == ConvActivation::silu)
        for (int64_t c = 0; c < C; ++c) yr[c] = silu(yr[c]);
    }
  if (want_final_cache) {
    out.final_cache = Tensor::empty({N, C, M}, a.x.dtype());
    T* fc = out.final_cache.data<T>();
#pragma omp parallel for schedule(static) if (par)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t L = a.seq_offsets[n + 1] - a.seq_offsets[n];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < M; ++j) fc[(n * C + c) * M + j] = in.input(n, L - M + j, c);
    }
  }
  return out;
}

template <class T>
ShortConvGrads backward_impl(const ShortConvArgs& a, const Tensor& dy_t, const Tensor& d_final_cache) {
  const ConvInputs<T> in(a);
  const DType dt = a.x.dtype();
  const std::vector<int64_t>& off = a.seq_offsets;
  const int64_t rows = a.x.size(0), C = in.C, W = in.W, M = in.M;
  const int64_t N = static_cast<int64_t>(off.size()) - 1;
  const std::vector<RowBlock> blocks = row_blocks(off);
  const bool par = worth_parallel(rows * C * W);
  const T* dy = dy_t.data<T>();
  const T* dfin = d_final_cache.defined() ? d_final_cache.data<T>() : nullptr;

  // dz = dy · act'(z): the gradient at the pre-activation.
  std::vector<T> dz_buf(static_cast<size_t>(rows * C));
  T* dz = dz_buf.data();
#pragma omp parallel for schedule(static) if (par)
  for (size_t b = 0; b < blocks.size(); ++b)
    for (int64_t r = blocks[b].begin; r < blocks[b].end; ++r) {
      T* dzr = dz + r * C;
      const T* dyr = dy + r * C;
      if (a.activation == ConvActivation::silu) {
        in.pre_activation(blocks[b].seq, r, dzr);
        for (int64_t c = 0; c < C; ++c) dzr[c] = dyr[c] * silu_grad(dzr[c]);
      } else {
        for (int64_t c = 0; c < C; ++c) dzr[c] = dyr[c];
      }
    }

  ShortConvGrads g;
  // dx[t] = Σ_i dz[t + M − i] · w[i] over outputs inside the sequence, plus d_final_cache where x[t] survives.
  g.dx = Tensor::empty({rows, C}, dt);
  T* dx = g.dx.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (size_t b = 0; b < blocks.size(); ++b) {
    const int64_t n = blocks[b].seq, L = off[n + 1] - off[n];
    for (int64_t r = blocks[b].begin; r < blocks[b].end; ++r) {
      const int64_t t = r - off[n];
      T* dxr = dx + r * C;
      for (int64_t c = 0; c < C; ++c) dxr[c] = T(0);
      for (int64_t i = 0; i < W; ++i) {
        if (t + M - i >= L) continue;
        const T* w = in.wt.data() + i * C;
        const T* dzr = dz + (r + M - i) * C;
        for (int64_t c = 0; c < C; ++c) dxr[c] += dzr[c] * w[c];
      }
      if (dfin && t + M >= L)
        for (int64_t c = 0; c < C; ++c) dxr[c] += dfin[(n * C + c) * M + (t + M - L)];
    }
  }

  // d_initial_cache[j] (sequence position j − M): the same sums, over the cached inputs.
  if (a.initial_cache.defined()) {
    g.d_initial_cache = Tensor::empty({N, C, M}, dt);
    T* dc = g.d_initial_cache.data<T>();
#pragma omp parallel for schedule(static) if (par)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t L = off[n + 1] - off[n];
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < M; ++j) {
          T s = T(0);
          for (int64_t i = 0; i <= j; ++i)
            if (j - i < L) s += dz[(off[n] + j - i) * C + c] * in.wt[static_cast<size_t>(i * C + c)];
          if (dfin && j >= L) s += dfin[(n * C + c) * M + (j - L)];
          dc[(n * C + c) * M + j] = s;
        }
    }
  }

  // dweight[c, i] = Σ_t dz[t, c] · input(t − M + i, c) and dbias[c] = Σ_t dz[t, c], over all sequences, reduced
  // over blocks in a fixed order.
  std::vector<T> red(static_cast<size_t>((W + 1) * C));
  const int64_t n_blocks = static_cast<int64_t>(blocks.size());
  ordered_reduce<T>(n_blocks, (W + 1) * C, red.data(), par, [&](int64_t kb, int64_t ke, T* part) {
    for (int64_t b = kb; b < ke; ++b) {
      const int64_t n = blocks[b].seq;
      for (int64_t r = blocks[b].begin; r < blocks[b].end; ++r) {
        const int64_t t = r - off[n];
        const T* dzr = dz + r * C;
        for (int64_t i = 0; i < W; ++i) {
          T* pw = part + i * C;
          const int64_t p = t - M + i;
          if (p >= 0) {
            const T* xr = in.x + (r - M + i) * C;
            for (int64_t c = 0; c < C; ++c) pw[c] += dzr[c] * xr[c];
          } else if (in.cache) {
            for (int64_t c = 0; c < C; ++c) pw[c] += dzr[c] * in.cache[(n * C + c) * M + (M + p)];
          }
        }
        T* pb = part + W * C;
        for (int64_t c = 0; c < C; ++c) pb[c] += dzr[c];
      }
    }
  });
  g.dweight = Tensor::empty({C, W}, dt);
  T* dw = g.dweight.data<T>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < W; ++i) dw[c * W + i] = red[static_cast<size_t>(i * C + c)];
  if (a.bias.defined()) {
    g.dbias = Tensor::empty({C}, dt);
    std::copy(red.begin() + W * C, red.end(), g.dbias.data<T>());
  }
  return g;
}

template <class T>
Tensor step_impl(const Tensor& x_t, Tensor& cache_t, const Tensor& weight, const Tensor& bias_t,
                 ConvActivation activation) {
  const int64_t N = x_t.size(0), C = x_t.size(1), W = weight.size(1), M = W - 1;
  const T* x = x_t.data<T>();
  const T* w = weight.data<T>();
  const T* bias = bias_t.defined() ? bias_t.data<T>() : nullptr;
  T* cache = cache_t.data<T>();
  Tensor y_t = Tensor::empty({N, C}, x_t.dtype());
  T* y = y_t.data<T>();
  const bool par = worth_parallel(N * C * W);
#pragma omp parallel for schedule(static) if (par)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      T* cc = cache + (n * C + c) * M;
      const T* wc = w + c * W;
      const T xv = x[n * C + c];
      T z = bias ? bias[c] : T(0);  // same summation order as the full forward
      for (int64_t i = 0; i < M; ++i) z += wc[i] * cc[i];
      z += wc[M] * xv;
      y[n * C + c] = activation == ConvActivation::silu ? silu(z) : z;
      for (int64_t i = 0; i + 1 < M; ++i) cc[i] = cc[i + 1];
      if (M > 0) cc[M - 1] = xv;
    }
  return y_t;
}

}  // namespace

ShortConvResult short_conv_forward(const ShortConvArgs& a, bool want_final_cache) {
  return a.x.dtype() == DType::f64 ? forward_impl<double>(a, want_final_cache)
                                   : forward_impl<float>(a, want_final_cache);
}

ShortConvGrads short_conv_backward(const ShortConvArgs& a, const Tensor& dy, const Tensor& d_final_cache) {
  return a.x.dtype() == DType::f64 ? backward_impl<double>(a, dy, d_final_cache)
                                   : backward_impl<float>(a, dy, d_final_cache);
}

Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                       ConvActivation activation) {
  return x.dtype() == DType::f64 ? step_impl<double>(x, cache, weight, bias, activation)
                                 : step_impl<float>(x, cache, weight, bias, activation);
}

}  // namespace gdn2::cpu
