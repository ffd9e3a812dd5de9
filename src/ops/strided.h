// Helpers shared by the op files: walking strided / broadcast views row by row, and adding a
// gradient into a buffer. Internal to src/ops.
#pragma once
#include "src/core/tensor.h"

namespace qat {

// t's strides for an `nd`-dimensional broadcast result of shape `out`: missing leading dims and
// dims of size 1 get stride 0.
Shape broadcast_strides(const Tensor& t, const Shape& out);

// Calls f(row, off_0, ..., off_k) for every "row" (all indices but the last) of `shape`, where off_i is
// the element offset of that row's first element in operand i (strides[i], base offsets base[i]).
// Rows are independent; `parallel` splits them over threads.
template <int K, class F>
void for_each_row(const Shape& shape, const Shape (&strides)[K], const int64_t (&base)[K], F f,
                  bool parallel) {
  int nd = int(shape.size());
  int64_t rows = 1;
  for (int d = 0; d + 1 < nd; d++) rows *= shape[d];
  if (nd == 0 || shape_numel(shape) == 0) {
    if (nd == 0) {
      int64_t off[K];
      for (int i = 0; i < K; i++) off[i] = base[i];
      f(int64_t(0), off);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (parallel && rows > 1)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[K];
    for (int i = 0; i < K; i++) off[i] = base[i];
    int64_t rem = r;
    for (int d = nd - 2; d >= 0; d--) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      for (int i = 0; i < K; i++) off[i] += idx * strides[i][d];
    }
    f(r, off);
  }
}

// dst += src, both f32 with the same shape; dst contiguous, src any strides.
void accumulate(const Tensor& dst, const Tensor& src);

}  // namespace qat

namespace qat {
// A non-autograd view of t broadcast to `shape` (stride 0 along stretched dims).
Tensor expand_view(const Tensor& t, const Shape& shape);
}  // namespace qat
