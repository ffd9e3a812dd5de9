// The f32 row kernels, the spec: the project's exp, the in-order weighted sum of rows (attention's
// P V), attention's softmax row and SwiGLU. Every table computes exactly these operations, so attention and SwiGLU give the same bits in
// training, in serving and in every ISA (tests/test_kernels.cpp).
//
// exp_f32 is Cephes' expf (S. Moshier) written with separate multiplies and adds only: x = n ln2 + r
// with n = round-to-nearest-even(x log2(e)) (by adding and subtracting 1.5 * 2^23), r by the two-part
// Cody-Waite ln2, e^r by a degree-5 polynomial in r plus 1 + r, then scaled by 2^a 2^b (a + b = n, each
// in [-63, 64], so the scaling is exact). Error: at most 2 ulp against the exact e^x (measured in the
// tests, 1 ulp over almost all inputs). x >= 88.72283 gives +inf, x < -87.33654 gives 0 (no
// subnormal results), NaN stays NaN.
#include <cmath>
#include <cstring>

#include "kernels/ref/order.h"
#include "kernels/scalar/scalar.h"

namespace qat::scalar {

float exp1(float x) {
  if (x != x) return x;
  if (x >= 88.72283f) return INFINITY;
  if (x < -87.33654f) return 0.0f;
  const float t = x * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // |t| <= 128: exact round to nearest even
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * (r * r) + r) + 1.0f;
  const int32_t ni = int32_t(n), a = ni >> 1, b = ni - a;  // n in [-126, 128]
  const int32_t ba = (a + 127) << 23, bb = (b + 127) << 23;
  float sa, sb;
  std::memcpy(&sa, &ba, 4);
  std::memcpy(&sb, &bb, 4);
  return (y * sa) * sb;
}

void exp_f32(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i++) y[i] = exp1(x[i]);
}

void weighted_rows(const float* p, int64_t ldp, int64_t G, const float* v, int64_t stride, int64_t n, int64_t D,
                   float* out, int64_t ldo) {
  for (int64_t g = 0; g < G; g++)
    for (int64_t d = 0; d < D; d++) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; j++) acc = acc + p[g * ldp + j] * v[j * stride + d];
      out[g * ldo + d] = acc;
    }
}

void head_scores(const float* q, int64_t H, int64_t group, const float* k, int64_t stride, int64_t n, int64_t D,
                 float* s, int64_t lds) {
  for (int64_t h = 0; h < H; h++)
    for (int64_t j = 0; j < n; j++) s[h * lds + j] = dot_f32(q + h * D, k + j * stride + (h / group) * D, D);
}

void head_weighted(const float* p, int64_t ldp, int64_t H, int64_t group, const float* v, int64_t stride, int64_t n,
                   int64_t D, float* out) {
  for (int64_t h = 0; h < H; h++) weighted_rows(p + h * ldp, ldp, 1, v + (h / group) * D, stride, n, D, out + h * D, D);
}

void softmax(float* s, int64_t n, float scale, float* max, float* sum) {
  float m = -INFINITY;
  for (int64_t j = 0; j < n; j++) {
    s[j] = s[j] * scale;
    m = s[j] > m ? s[j] : m;
  }
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // sum_f32's order
  for (int64_t j = 0; j < n; j++) {
    s[j] = exp1(s[j] - m);
    l[j % 8] = l[j % 8] + s[j];
  }
  const float total = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])), inv = 1.0f / total;
  for (int64_t j = 0; j < n; j++) s[j] = s[j] * inv;
  *max = m;
  *sum = total;
}

void swiglu(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

void swiglu_backward(const float* g, const float* u, const float* dy, int64_t n, float* dg, float* du) {
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + exp1(-g[i]));
    if (dg) dg[i] += dy[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
    if (du) du[i] += dy[i] * g[i] * s;
  }
}

}  // namespace qat::scalar
