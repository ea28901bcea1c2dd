// Shared pieces of the CPU attention kernels: the causal/window geometry of rows and keys, the row tiles of the
// forward and dq pass (all query heads of a kv head stacked), and the tile sizes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/attention.h"

namespace gdn2::cpu::attn {

// Stacked rows (query rows × query heads of a group) per task of the forward and the dq pass; keys per task of
// the dk/dv pass.
inline constexpr int64_t kRowTile = 64;
inline constexpr int64_t kKeyTile = 64;

// A task of the forward and the dq pass: query rows [i0, i0 + rows) of the G query heads of kv head kv in batch b,
// stacked as M = G·rows matrix rows m = gg·rows + i (query head kv·G + gg, query row i0 + i), so that K and V are
// packed once for the whole group. Some row of the tile sees each of the keys [klo, klo + n).
struct RowTile {
  int64_t b, kv, i0, rows, klo, n;
  int64_t head(int64_t G, int64_t m) const { return kv * G + m / rows; }
  int64_t row(int64_t m) const { return i0 + m % rows; }
};

struct Geometry {
  int64_t B, Tq, Tk, Hq, Hkv, D, G, window;
  int64_t offset;  // absolute position of query row 0: Tk − Tq

  explicit Geometry(const AttentionArgs& a)
      : B(a.q.size(0)), Tq(a.q.size(1)), Tk(a.k.size(1)), Hq(a.q.size(2)), Hkv(a.k.size(2)), D(a.q.size(3)),
        G(Hq / Hkv), window(a.window), offset(Tk - Tq) {}

  // Keys row i sees: [key_lo(i), key_hi(i)], never empty.
  int64_t key_hi(int64_t i) const { return offset + i; }
  int64_t key_lo(int64_t i) const { return window > 0 ? std::max<int64_t>(0, offset + i - window + 1) : 0; }
  // Rows that see key j: [row_lo(j), row_hi(j)], empty when row_lo > row_hi.
  int64_t row_lo(int64_t j) const { return std::max<int64_t>(0, j - offset); }
  int64_t row_hi(int64_t j) const { return window > 0 ? std::min(Tq - 1, j + window - 1 - offset) : Tq - 1; }

  // Element offsets of row i, head h of q-like tensors and row j, kv head g of k-like tensors; their row strides.
  int64_t q_at(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * Hq + h) * D; }
  int64_t k_at(int64_t b, int64_t j, int64_t g) const { return ((b * Tk + j) * Hkv + g) * D; }
  int64_t q_stride() const { return Hq * D; }
  int64_t k_stride() const { return Hkv * D; }
  // Offset of (b, h, row 0) in [B, Hq, Tq] row statistics (lse, D_i).
  int64_t stat_at(int64_t b, int64_t h) const { return (b * Hq + h) * Tq; }
  // Widest key span of `rows` consecutive query rows: the rows plus the window before them.
  int64_t max_keys(int64_t rows) const { return window > 0 ? std::min(Tk, rows + window - 1) : Tk; }

  // Row tiles: rows_per_tile() query rows of all G heads, numbered within each (b, kv) latest (heaviest) first.
  int64_t rows_per_tile() const { return std::max<int64_t>(1, kRowTile / G); }
  int64_t row_tiles() const { return (Tq + rows_per_tile() - 1) / rows_per_tile(); }
  int64_t row_tasks() const { return B * Hkv * row_tiles(); }
  int64_t max_stacked_rows() const { return G * rows_per_tile(); }
  RowTile row_tile(int64_t task) const {
    const int64_t tiles = row_tiles(), rpt = rows_per_tile();
    RowTile t;
    t.b = task / (Hkv * tiles);
    t.kv = task / tiles % Hkv;
    t.i0 = (tiles - 1 - task % tiles) * rpt;
    t.rows = std::min(rpt, Tq - t.i0);
    t.klo = key_lo(t.i0);
    t.n = key_hi(t.i0 + t.rows - 1) - t.klo + 1;
    return t;
  }
  // The stacked rows of a tile inside a q-like tensor form one strided matrix when G = 1 (row stride Hq·D) or the
  // tile has one query row (its G heads are adjacent: stride D); otherwise they are copied into a [M, D] buffer.
  bool stack_is_view(const RowTile& t) const { return G == 1 || t.rows == 1; }
  int64_t stack_ld() const { return G == 1 ? q_stride() : D; }
};

// The tile's stacked rows of q-like x (row stride g.stack_ld()): a view into x, or gathered into buf.
template <class T>
const T* gather_stack(const Geometry& g, const RowTile& t, const T* x, T* buf) {
  if (g.stack_is_view(t)) return x + g.q_at(t.b, t.i0, t.kv * g.G);
  for (int64_t m = 0; m < g.G * t.rows; ++m)
    std::memcpy(buf + m * g.D, x + g.q_at(t.b, t.row(m), t.head(g.G, m)), static_cast<size_t>(g.D) * sizeof(T));
  return buf;
}

// Where a GEMM writes the tile's stacked rows of q-like output x: into x itself when they form a view, else buf
// (then scatter_stack copies them out).
template <class T>
T* output_stack(const Geometry& g, const RowTile& t, T* x, T* buf) {
  return g.stack_is_view(t) ? x + g.q_at(t.b, t.i0, t.kv * g.G) : buf;
}

template <class T>
void scatter_stack(const Geometry& g, const RowTile& t, const T* buf, T* x) {
  if (g.stack_is_view(t)) return;
  for (int64_t m = 0; m < g.G * t.rows; ++m)
    std::memcpy(x + g.q_at(t.b, t.row(m), t.head(g.G, m)), buf + m * g.D, static_cast<size_t>(g.D) * sizeof(T));
}

}  // namespace gdn2::cpu::attn
