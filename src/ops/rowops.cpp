// Row functions shared by training and serving (see rowops.h).
#include "src/ops/rowops.h"

#include <cmath>

#include "kernels/kernels.h"

namespace qat {

float dot_f32(const float* a, const float* b, int64_t n) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) l[j] = l[j] + a[i + j] * b[i + j];
  for (int j = 0; i + j < n; j++) l[j] = l[j] + a[i + j] * b[i + j];
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

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

namespace {
// out (D) = sum over j = 0 .. n-1, in that order, of p[j] * v_j (v_j at v + j*stride), each step a
// multiply then an add (no FMA: -ffp-contract=off). Columns are independent, so going through them 16 at
// a time with the sums in registers (4 SSE registers) gives the same bits as a column at a time, and
// is ~2.5x faster than out[d] += p * v_j[d] through memory at the small preset's D = 32. Plain C++ for
// the baseline ISA: ISA-specific code lives only in kernels/ (tools/check-isa.sh).
void weighted_sum_rows(const float* p, const float* v, int64_t stride, int64_t n, int64_t D, float* out) {
  constexpr int64_t W = 16;
  int64_t d0 = 0;
  for (; d0 + W <= D; d0 += W) {
    float acc[W] = {};
    for (int64_t j = 0; j < n; j++) {
      const float pj = p[j], *vj = v + j * stride + d0;
      for (int64_t l = 0; l < W; l++) acc[l] += pj * vj[l];
    }
    for (int64_t l = 0; l < W; l++) out[d0 + l] = acc[l];
  }
  for (; d0 < D; d0++) {
    float acc = 0;
    for (int64_t j = 0; j < n; j++) acc += p[j] * v[j * stride + d0];
    out[d0] = acc;
  }
}
}  // namespace

float attention_row(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_keys,
                    int64_t D, float scale, float* scores, float* out) {
  // scores[j] = dot_f32(q, k_j): the kernel table's fixed-order gemv (bit-equal to dot_f32, any ISA).
  kernels().f32.gemv(q, k, kv_stride, n_keys, D, scores);
  float m = -INFINITY;
  for (int64_t j = 0; j < n_keys; j++) {
    scores[j] = scores[j] * scale;
    m = scores[j] > m ? scores[j] : m;
  }
  float sum = 0;
  for (int64_t j = 0; j < n_keys; j++) {
    scores[j] = std::exp(scores[j] - m);
    sum += scores[j];
  }
  float inv = 1.0f / sum;
  for (int64_t j = 0; j < n_keys; j++) scores[j] = scores[j] * inv;
  weighted_sum_rows(scores, v, kv_stride, n_keys, D, out);
  return m + std::log(sum);
}

void swiglu_row(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i++) {
    float x = g[i];
    y[i] = x / (1.0f + std::exp(-x)) * u[i];
  }
}

}  // namespace qat
