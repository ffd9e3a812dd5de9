// Row functions shared by training and serving (see rowops.h).
#include "src/ops/rowops.h"

#include <cmath>

#include "kernels/kernels.h"

namespace qat {

float rmsnorm_row(const float* x, const float* w, float eps, int64_t C, float* y) {
  float ss = dot_f32(x, x, C);
  float rstd = 1.0f / std::sqrt(ss / float(C) + eps);
  for (int64_t c = 0; c < C; c++) y[c] = (x[c] * rstd) * w[c];
  return rstd;
}

void rope_angles(int64_t pos, int64_t D, float base, float* cs) {
  for (int64_t i = 0; i < D / 2; i++) {
    double theta = double(pos) * std::pow(double(base), -2.0 * double(i) / double(D));
    cs[2 * i] = float(std::cos(theta));
    cs[2 * i + 1] = float(std::sin(theta));
  }
}

void rope_row(float* x, const float* cs, int64_t D) {
  for (int64_t i = 0; i < D / 2; i++) {
    float c = cs[2 * i], s = cs[2 * i + 1], x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void exp_f32(const float* x, int64_t n, float* y) { kernels().rows.exp(x, n, y); }

void attention_rows(const float* q, int64_t q_stride, int64_t G, const float* k, const float* v, int64_t kv_stride,
                    int64_t n_keys, int64_t D, float scale, float* scores, float* out, int64_t out_stride, float* lse) {
  // scores (G, n_keys) = q_g . k_j: the kernel table's fixed-order GEMM (bit-equal to dot_f32, any ISA).
  const Kernels& kt = kernels();
  kt.f32.gemm(q, q_stride, k, kv_stride, G, n_keys, D, scores, n_keys);
  for (int64_t g = 0; g < G; g++) {  // softmax of each row, in place
    float m, sum;
    kt.rows.softmax(scores + g * n_keys, n_keys, scale, &m, &sum);
    if (lse) lse[g] = m + std::log(sum);
  }
  kt.rows.weighted_rows(scores, n_keys, G, v, kv_stride, n_keys, D, out, out_stride);  // P V, rows in order
}

void attention_heads(const float* q, int64_t H, int64_t group, const float* k, const float* v, int64_t stride,
                     int64_t n, int64_t D, float scale, float* scores, float* out) {
  const Kernels& kt = kernels();
  kt.rows.head_scores(q, H, group, k, stride, n, D, scores, n);
  for (int64_t h = 0; h < H; h++) {  // attention_rows's softmax, head by head
    float m, sum;
    kt.rows.softmax(scores + h * n, n, scale, &m, &sum);
  }
  kt.rows.head_weighted(scores, n, H, group, v, stride, n, D, out);
}

void swiglu_row(const float* g, const float* u, int64_t n, float* y) { kernels().rows.swiglu(g, u, n, y); }

}  // namespace qat
