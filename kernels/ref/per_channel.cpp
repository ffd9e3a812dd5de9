// The learned rule (any group size and range), dequantize, and the named per-channel / per-tensor /
// per-token layouts built from the rules of quant.h. Read next: kernels/kernels.h (the integer kernels
// that consume these codes).
#include "src/core/dtype.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {

float learned_scale(float s) {
  const float lo = 6.103515625e-05f, hi = 65504.0f;  // f16's smallest normal (2^-14) and largest finite
  float c = s > lo ? s : lo;                          // NaN and s <= 0 give lo
  c = c < hi ? c : hi;
  return round_to_f16(c);  // c is in f16's normal range, so this stays there
}

void quantize_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q,
                      float* s16) {
  QAT_CHECK(G > 0 && n >= 0 && n % G == 0, "quantize_learned: ", n, " elements are not a whole number of groups of ", G);
  QAT_CHECK(lo < 0 && hi > 0 && lo >= -128 && hi <= 127, "quantize_learned: bad code range [", lo, ", ", hi, "]");
  for (int64_t g = 0; g < n / G; g++, x += G, q += G) {
    const float sg = learned_scale(s[g]);
    for (int64_t j = 0; j < G; j++) q[j] = code_learned(x[j], sg, lo, hi);
    if (s16) s16[g] = sg;
  }
}

void dequantize(const int8_t* q, const float* d, int64_t n, int64_t G, float* y) {
  QAT_CHECK(G > 0 && n >= 0 && n % G == 0, "dequantize: ", n, " elements are not a whole number of groups of ", G);
  for (int64_t g = 0; g < n / G; g++)
    for (int64_t j = g * G; j < (g + 1) * G; j++) y[j] = float(q[j]) * d[g];
}

void quantize_per_channel_int8(const float* w, int64_t N, int64_t K, int8_t* q, float* d) {
  quantize_int8_ggml(w, N * K, K, ScaleRound::f16, q, d);
}

float quantize_per_tensor_int8(const float* x, int64_t n, int8_t* q) {
  float d = 0.0f;
  if (n > 0) quantize_int8_ggml(x, n, n, ScaleRound::f32, q, &d);
  return d;
}

void quantize_per_token_int8(const float* x, int64_t M, int64_t K, int8_t* q, float* d) {
  quantize_int8_ggml(x, M * K, K, ScaleRound::f32, q, d);
}

}  // namespace qat
