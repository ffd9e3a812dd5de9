// Ternary weights in llama.cpp's TQ2_0 and TQ1_0 blocks: the rule (codes in {-1, 0, 1}, one f16 scale per
// 256, ggml's quantize_row_tq*_ref line for line) and the two packings. TQ2_0 stores code + 1 in two bits;
// TQ1_0 packs five trits per byte as a base-3 number scaled into the byte (so a trit is read back by one
// 8-bit multiply and a shift, with no division), plus four bytes of four trits for the last 16 elements.
// Checked byte for byte against llama.cpp's own blocks (tests/fixtures/tq_golden.bin, tests/test_ternary.cpp).
#include "kernels/ref/quant.h"
#include "src/core/dtype.h"
#include "src/util/error.h"

namespace qat {

namespace {
void check_blocks(const char* what, int64_t n) {
  QAT_CHECK(n >= 0 && n % QKK == 0, what, ": ", n, " elements are not a whole number of blocks of ", QKK);
}

// One block of the ternary rule: q (256) codes; returns d = max |x| (not yet f16-rounded).
float ternary_block(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (int64_t j = 0; j < QKK; j++)
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);  // NaN never wins
  const float id = amax != 0.0f ? 1.0f / amax : 0.0f;
  for (int64_t j = 0; j < QKK; j++) q[j] = clamp_round(x[j] * id, -1, 1);
  return amax;
}

// k trits (codes + 1, the first most significant), then scaled into a byte: ceil(v * 256 / 243). With
// k = 4 the value is first multiplied by 3 (an empty fifth trit), as ggml does for the qh bytes.
uint8_t pack_trits(const int8_t* q, int64_t stride, int k) {
  unsigned v = 0;
  for (int n = 0; n < k; n++) v = v * 3 + unsigned(q[n * stride] + 1);
  if (k == 4) v *= 3;
  return uint8_t((v * 256 + 242) / 243);
}

// Trit n (0 = the most significant) of a packed byte: shift it to the top by an 8-bit multiply by 3^n,
// then (b * 3) >> 8 is that trit.
int8_t unpack_trit(uint8_t b, int n) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  const uint8_t t = uint8_t(b * pow3[n]);
  return int8_t(((unsigned(t) * 3) >> 8) - 1);
}
}  // namespace

void quantize_ternary(const float* x, int64_t n, int8_t* q, float* d) {
  check_blocks("quantize_ternary", n);
  for (int64_t b = 0; b < n / QKK; b++) d[b] = round_to_f16(ternary_block(x + b * QKK, q + b * QKK));
}

void tq2_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockTQ2_0* y) {
  check_blocks("tq2_0_from_codes", n);
  for (int64_t b = 0; b < n / QKK; b++, q += QKK) {
    y[b].d = f32_to_f16(d[b]);
    for (int c = 0; c < 2; c++)
      for (int m = 0; m < 32; m++) {
        unsigned v = 0;
        for (int l = 0; l < 4; l++) v |= unsigned(q[128 * c + 32 * l + m] + 1) << (2 * l);
        y[b].qs[32 * c + m] = uint8_t(v);
      }
  }
}

void tq2_0_to_codes(const BlockTQ2_0* x, int64_t n, int8_t* q, float* d) {
  check_blocks("tq2_0_to_codes", n);
  for (int64_t b = 0; b < n / QKK; b++, q += QKK) {
    d[b] = f16_to_f32(x[b].d);
    for (int c = 0; c < 2; c++)
      for (int l = 0; l < 4; l++)
        for (int m = 0; m < 32; m++) q[128 * c + 32 * l + m] = int8_t(((x[b].qs[32 * c + m] >> (2 * l)) & 3) - 1);
  }
}

void tq1_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockTQ1_0* y) {
  check_blocks("tq1_0_from_codes", n);
  for (int64_t b = 0; b < n / QKK; b++, q += QKK) {
    y[b].d = f32_to_f16(d[b]);
    for (int m = 0; m < 32; m++) y[b].qs[m] = pack_trits(q + m, 32, 5);             // elements 0..159
    for (int m = 0; m < 16; m++) y[b].qs[32 + m] = pack_trits(q + 160 + m, 16, 5);  // 160..239
    for (int j = 0; j < 4; j++) y[b].qh[j] = pack_trits(q + 240 + j, 4, 4);         // 240..255
  }
}

void tq1_0_to_codes(const BlockTQ1_0* x, int64_t n, int8_t* q, float* d) {
  check_blocks("tq1_0_to_codes", n);
  for (int64_t b = 0; b < n / QKK; b++, q += QKK) {
    d[b] = f16_to_f32(x[b].d);
    for (int t = 0; t < 5; t++)
      for (int m = 0; m < 32; m++) q[32 * t + m] = unpack_trit(x[b].qs[m], t);
    for (int t = 0; t < 5; t++)
      for (int m = 0; m < 16; m++) q[160 + 16 * t + m] = unpack_trit(x[b].qs[32 + m], t);
    for (int t = 0; t < 4; t++)
      for (int j = 0; j < 4; j++) q[240 + 4 * t + j] = unpack_trit(x[b].qh[j], t);
  }
}

namespace {
// Both layouts quantize and dequantize the same way, a block at a time through their codes.
template <class Block>
void quantize_blocks(const char* what, const float* x, int64_t n, Block* y,
                     void (*from_codes)(const int8_t*, const float*, int64_t, Block*)) {
  check_blocks(what, n);
  for (int64_t b = 0; b < n / QKK; b++) {
    int8_t q[QKK];
    const float d = ternary_block(x + b * QKK, q);
    from_codes(q, &d, QKK, y + b);  // stores f16(d)
  }
}

template <class Block>
void dequantize_blocks(const char* what, const Block* x, int64_t n, float* y,
                       void (*to_codes)(const Block*, int64_t, int8_t*, float*)) {
  check_blocks(what, n);
  for (int64_t b = 0; b < n / QKK; b++, y += QKK) {
    int8_t q[QKK];
    float d;
    to_codes(x + b, QKK, q, &d);
    dequantize(q, &d, QKK, QKK, y);
  }
}
}  // namespace

void quantize_tq2_0(const float* x, int64_t n, BlockTQ2_0* y) { quantize_blocks("quantize_tq2_0", x, n, y, tq2_0_from_codes); }
void quantize_tq1_0(const float* x, int64_t n, BlockTQ1_0* y) { quantize_blocks("quantize_tq1_0", x, n, y, tq1_0_from_codes); }
void dequantize_tq2_0(const BlockTQ2_0* x, int64_t n, float* y) {
  dequantize_blocks("dequantize_tq2_0", x, n, y, tq2_0_to_codes);
}
void dequantize_tq1_0(const BlockTQ1_0* x, int64_t n, float* y) {
  dequantize_blocks("dequantize_tq1_0", x, n, y, tq1_0_to_codes);
}

}  // namespace qat
