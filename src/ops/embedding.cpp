// Embedding lookup: out[..., :] = table[ids[...], :]. Backward is a scatter-add into the table's
// gradient; threads split the channels (each owns a column range over every token, in token order),
// so a token id that repeats accumulates in the same order at any thread count.
#include <cstring>

#include "src/ops/ops.h"
#include "src/util/profile.h"

namespace qat {

Tensor embedding(const Tensor& table_in, const Tensor& ids_in) {
  QAT_CHECK(table_in.ndim() == 2, "embedding: table must be (V, C), got ", table_in.shape_string());
  QAT_CHECK(ids_in.dtype() == DType::s32, "embedding: ids must be s32, got ", dtype_name(ids_in.dtype()));
  Tensor table = contiguous(table_in), ids = ids_in.is_contiguous() ? ids_in : ids_in.clone();
  int64_t V = table.dim(0), C = table.dim(1), n = ids.numel();
  const int32_t* id = ids.data<int32_t>();
  for (int64_t i = 0; i < n; i++)
    QAT_CHECK(id[i] >= 0 && id[i] < V, "embedding: token id ", id[i], " out of range [0, ", V, ")");
  QAT_PROF("embedding", forward, 0.0, 8.0 * double(n * C));
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  Tensor out = Tensor::empty(out_shape);
  const float* w = table.f32();
  float* o = out.f32();
#pragma omp parallel for schedule(static) if (n * C > 32768)
  for (int64_t i = 0; i < n; i++) std::memcpy(o + i * C, w + int64_t(id[i]) * C, size_t(C) * 4);
  record(out, "embedding", {table}, [table, ids, C, n](const Tensor&, const Tensor& dout) {
    float* dw = grad_buffer(table).f32();
    const float* g = dout.f32();
    const int32_t* id = ids.data<int32_t>();
    constexpr int64_t kCols = 64;  // channel block owned by one thread
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < C; c0 += kCols) {
      int64_t c1 = c0 + kCols < C ? c0 + kCols : C;
      for (int64_t i = 0; i < n; i++) {
        float* row = dw + int64_t(id[i]) * C;
        for (int64_t c = c0; c < c1; c++) row[c] += g[i * C + c];
      }
    }
  });
  return out;
}

}  // namespace qat
