// Activation quantization, the spec: the reference quantizer's int8 ggml rule (kernels/ref/quant.h) per 32-block
// with an f16 scale (q8_0) or per row with an f32 scale (per token), plus each group's sum of codes
// (the VNNI and unsigned-nibble kernels subtract offset * sum).
#include "kernels/scalar/scalar.h"
#include "kernels/ref/quant.h"

namespace qat::scalar {

namespace {
void group_sums(const int8_t* q, int64_t n, int64_t G, int32_t* s) {
  for (int64_t g = 0; g < n / G; g++) {
    int32_t t = 0;
    for (int64_t j = 0; j < G; j++) t += q[g * G + j];
    s[g] = t;
  }
}
}  // namespace

void quantize_q8_0(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s) {
  quantize_int8_ggml(x, M * K, QK, ScaleRound::f16, q, d);
  group_sums(q, M * K, QK, s);
}

void quantize_per_token(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s) {
  quantize_int8_ggml(x, M * K, K, ScaleRound::f32, q, d);
  group_sums(q, M * K, K, s);
}

}  // namespace qat::scalar
