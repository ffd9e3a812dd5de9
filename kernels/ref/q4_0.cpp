// int4: the ggml rule (llama.cpp's quantize_row_q4_0_ref, line for line), the learned rule's blocks,
// and the q4_0 block layout (element j = low nibble of byte j, element j + 16 = high nibble).
// The formulas are in quant.h. Read next: q8_0.cpp.
#include "src/core/dtype.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {

namespace {
void check_groups(const char* what, int64_t n, int64_t G) {
  QAT_CHECK(G > 0 && n >= 0 && n % G == 0, what, ": ", n, " elements are not a whole number of groups of ", G);
}

// One group of the int4 ggml rule: q (G) codes; returns d = m / -8 (not yet f16-rounded).
float int4_ggml_group(const float* x, int64_t G, int8_t* q) {
  float amax = 0.0f, m = 0.0f;
  for (int64_t j = 0; j < G; j++) {
    float v = x[j];
    if (amax < std::fabs(v)) {  // strict: the first element of largest magnitude wins; NaN never does
      amax = std::fabs(v);
      m = v;
    }
  }
  const float d = m / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t j = 0; j < G; j++) q[j] = code_int4_ggml(x[j], id);
  return d;
}
}  // namespace

void quantize_int4_ggml(const float* x, int64_t n, int64_t G, int8_t* q, float* d) {
  check_groups("quantize_int4_ggml", n, G);
  for (int64_t g = 0; g < n / G; g++) d[g] = round_to_f16(int4_ggml_group(x + g * G, G, q + g * G));
}

void quantize_per_channel_int4(const float* w, int64_t N, int64_t K, int8_t* q, float* d) {
  quantize_int4_ggml(w, N * K, K, q, d);
}

void q4_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockQ4_0* y) {
  check_groups("q4_0_from_codes", n, QK);
  for (int64_t b = 0; b < n / QK; b++, q += QK) {
    y[b].d = f32_to_f16(d[b]);
    for (int j = 0; j < QK / 2; j++)
      y[b].qs[j] = uint8_t((q[j] + 8) | ((q[j + QK / 2] + 8) << 4));
  }
}

void q4_0_to_codes(const BlockQ4_0* x, int64_t n, int8_t* q, float* d) {
  check_groups("q4_0_to_codes", n, QK);
  for (int64_t b = 0; b < n / QK; b++, q += QK) {
    d[b] = f16_to_f32(x[b].d);
    for (int j = 0; j < QK / 2; j++) {
      q[j] = int8_t((x[b].qs[j] & 0x0f) - 8);
      q[j + QK / 2] = int8_t((x[b].qs[j] >> 4) - 8);
    }
  }
}

void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* y) {
  check_groups("quantize_q4_0", n, QK);
  for (int64_t b = 0; b < n / QK; b++) {
    int8_t q[QK];
    float d = int4_ggml_group(x + b * QK, QK, q);
    q4_0_from_codes(q, &d, QK, y + b);  // stores f16(d)
  }
}

void quantize_q4_0_learned(const float* x, const float* s, int64_t n, BlockQ4_0* y) {
  check_groups("quantize_q4_0_learned", n, QK);
  for (int64_t b = 0; b < n / QK; b++) {
    int8_t q[QK];
    float s16;
    quantize_learned(x + b * QK, QK, QK, s + b, kQ4Min, kQ4Max, q, &s16);
    q4_0_from_codes(q, &s16, QK, y + b);
  }
}

void dequantize_q4_0(const BlockQ4_0* x, int64_t n, float* y) {
  check_groups("dequantize_q4_0", n, QK);
  for (int64_t b = 0; b < n / QK; b++, y += QK) {
    int8_t q[QK];
    float d;
    q4_0_to_codes(x + b, QK, q, &d);
    dequantize(q, &d, QK, QK, y);
  }
}

}  // namespace qat
