// int8: the ggml rule (llama.cpp's quantize_row_q8_0_ref) for any group size, and the q8_0 blocks.
// The same rule with G = 32 quantizes activations for the q4_0 / q8_0 kernels (as llama.cpp does on CPU)
// and with G = K per token for the w8a8 kernels. The formulas are in quant.h. Read next: per_channel.cpp.
#include "src/core/dtype.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {

void quantize_int8_ggml(const float* x, int64_t n, int64_t G, ScaleRound round, int8_t* q, float* d) {
  QAT_CHECK(G > 0 && n >= 0 && n % G == 0, "quantize_int8_ggml: ", n, " elements are not a whole number of groups of ", G);
  for (int64_t g = 0; g < n / G; g++, x += G, q += G) {
    float amax = 0.0f;
    for (int64_t j = 0; j < G; j++) {
      float a = std::fabs(x[j]);
      amax = a > amax ? a : amax;  // NaN ignored (the comparison is false)
    }
    const float dg = amax / 127.0f;
    const float id = dg != 0.0f ? 1.0f / dg : 0.0f;
    for (int64_t j = 0; j < G; j++) q[j] = code_int8_ggml(x[j], id);
    d[g] = round == ScaleRound::f16 ? round_to_f16(dg) : dg;
  }
}

void q8_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockQ8_0* y) {
  QAT_CHECK(n % QK == 0, "q8_0_from_codes: ", n, " elements are not a whole number of blocks of 32");
  for (int64_t b = 0; b < n / QK; b++, q += QK) {
    y[b].d = f32_to_f16(d[b]);
    for (int j = 0; j < QK; j++) y[b].qs[j] = q[j];
  }
}

void q8_0_to_codes(const BlockQ8_0* x, int64_t n, int8_t* q, float* d) {
  QAT_CHECK(n % QK == 0, "q8_0_to_codes: ", n, " elements are not a whole number of blocks of 32");
  for (int64_t b = 0; b < n / QK; b++, q += QK) {
    d[b] = f16_to_f32(x[b].d);
    for (int j = 0; j < QK; j++) q[j] = x[b].qs[j];
  }
}

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
  QAT_CHECK(n % QK == 0, "quantize_q8_0: ", n, " elements are not a whole number of blocks of 32");
  for (int64_t b = 0; b < n / QK; b++) {
    int8_t q[QK];
    float d;
    quantize_int8_ggml(x + b * QK, QK, QK, ScaleRound::f16, q, &d);
    q8_0_from_codes(q, &d, QK, y + b);
  }
}

void quantize_q8_0_learned(const float* x, const float* s, int64_t n, BlockQ8_0* y) {
  QAT_CHECK(n % QK == 0, "quantize_q8_0_learned: ", n, " elements are not a whole number of blocks of 32");
  for (int64_t b = 0; b < n / QK; b++) {
    int8_t q[QK];
    float s16;
    quantize_learned(x + b * QK, QK, QK, s + b, kQ8Min, kQ8Max, q, &s16);
    q8_0_from_codes(q, &s16, QK, y + b);
  }
}

void dequantize_q8_0(const BlockQ8_0* x, int64_t n, float* y) {
  QAT_CHECK(n % QK == 0, "dequantize_q8_0: ", n, " elements are not a whole number of blocks of 32");
  for (int64_t b = 0; b < n / QK; b++) {
    float d = f16_to_f32(x[b].d);
    for (int j = 0; j < QK; j++) y[b * QK + j] = float(x[b].qs[j]) * d;
  }
}

}  // namespace qat
