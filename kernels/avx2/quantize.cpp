// AVX2 activation quantization, bit-exact with the int8 ggml rule of kernels/ref/quant.h:
//   amax = max |x| (NaN ignored), d = amax / 127, id = d != 0 ? 1/d : 0, code = roundf(x * id)
//   clamped to [-127, 127] (NaN -> 0), d stored f16-rounded (q8_0) or f32 (per token), s = sum(codes).
// The f32 operations are the scalar ones (one multiply x * id, IEEE divisions); roundf is done as
// below, since vroundps has no round-half-away-from-zero mode.
#include "kernels/avx2/intrin.h"
#include "kernels/avx2/lanes.h"

namespace qat::QAT_KERNEL_NS {
namespace {

#define QAT_UNROLL _Pragma("GCC unroll 16")  // tile arrays must live in registers

// roundf(p) clamped to [-127, 127], NaN -> 0 (kernels/ref/quant.h's clamp_round). trunc(p + copysign(h, p)) with
// h = 0.49999997 (the float below 0.5) equals roundf(p) for every float p: below a half the sum stays
// below the next integer (p = 0.49999997 gives 0.99999994), at or above a half it reaches it (the sum
// rounds to nearest, and p + h is within half an ulp of the integer above).
inline __m256i round_codes(__m256 p, __m256 lo = _mm256_set1_ps(-127.0f), __m256 hi = _mm256_set1_ps(127.0f)) {
  const __m256 sign = _mm256_and_ps(p, _mm256_set1_ps(-0.0f));
  __m256 r = _mm256_add_ps(p, _mm256_or_ps(sign, _mm256_set1_ps(0x1.fffffep-2f)));
  r = _mm256_round_ps(r, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  r = _mm256_and_ps(r, _mm256_cmp_ps(p, p, _CMP_ORD_Q));  // NaN -> +0
  r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
  return _mm256_cvttps_epi32(r);
}

// 4 x 8 int32 codes -> 32 bytes at q. packs works per 128-bit lane: dwords come out as 0 4 1 5 2 6 3 7.
inline void store_codes32(const __m256i c[4], int8_t* q) {
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// max |v| lanes into m: _mm256_max_ps(a, m) returns m when a is NaN, so NaN never wins.
inline __m256 max_abs(__m256 v, __m256 m) {
  return _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), m);
}

inline int32_t hsum(__m256i v) {  // integers: order-free
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// 32 elements x * id -> 32 codes at q; returns their sum.
inline int32_t codes32(const float* x, float id, int8_t* q) {
  const __m256 vid = _mm256_set1_ps(id);
  __m256i c[4];
  QAT_UNROLL
  for (int j = 0; j < 4; j++) c[j] = round_codes(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), vid));
  store_codes32(c, q);
  return hsum(_mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3])));
}

}  // namespace

// Blocks in groups of 8: their scales are computed in one vector (two vdivps instead of sixteen
// dependent divss), then each block's codes.
void quantize_q8_0(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s) {
  const int64_t nb = M * K / 32;
  for (int64_t b0 = 0; b0 < nb; b0 += 8) {
    const int64_t n = nb - b0 < 8 ? nb - b0 : 8;
    alignas(32) float amax[8] = {}, id[8], dq[8];
    for (int64_t j = 0; j < n; j++) {
      const float* xb = x + 32 * (b0 + j);
      __m256 m = _mm256_setzero_ps();
      QAT_UNROLL
      for (int t = 0; t < 4; t++) m = max_abs(_mm256_loadu_ps(xb + 8 * t), m);
      amax[j] = hmax8(m);
    }
    const __m256 vd = _mm256_div_ps(_mm256_load_ps(amax), _mm256_set1_ps(127.0f));
    const __m256 nonzero = _mm256_cmp_ps(vd, _mm256_setzero_ps(), _CMP_NEQ_OQ);
    _mm256_store_ps(id, _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), vd), nonzero));  // 1/d, or 0
    _mm256_store_ps(dq, _mm256_cvtph_ps(_mm256_cvtps_ph(vd, _MM_FROUND_TO_NEAREST_INT)));  // f16(d)
    for (int64_t j = 0; j < n; j++) {
      s[b0 + j] = codes32(x + 32 * (b0 + j), id[j], q + 32 * (b0 + j));
      d[b0 + j] = dq[j];
    }
  }
}

void quantize_per_token(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s) {
  for (int64_t r = 0; r < M; r++) {
    const float* xr = x + r * K;
    __m256 m = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 8) m = max_abs(_mm256_loadu_ps(xr + k), m);
    const float dr = hmax8(m) / 127.0f;
    const float id = dr != 0.0f ? 1.0f / dr : 0.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; k += 32) sum += codes32(xr + k, id, q + r * K + k);
    s[r] = sum;
    d[r] = dr;
  }
}

// The learned rule of kernels/ref/quant.h (weights in QAT, every step): s16 = f16(clamp(s, 2^-14, 65504)) per
// group (NaN or s <= 0 give 2^-14), code = clamp(roundf(x / s16), lo, hi), NaN -> 0. One IEEE division
// per element, as the reference does.
void quantize_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q, float* s16) {
  const __m256 vlo = _mm256_set1_ps(float(lo)), vhi = _mm256_set1_ps(float(hi));
  for (int64_t g = 0; g < n / G; g++) {
    float c = s[g] > 0x1p-14f ? s[g] : 0x1p-14f;
    c = c < 65504.0f ? c : 65504.0f;
    const float sg = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(c), _MM_FROUND_TO_NEAREST_INT)));
    const __m256 vs = _mm256_set1_ps(sg);
    const float* xg = x + g * G;
    int8_t* qg = q + g * G;
    for (int64_t j = 0; j < G; j += 32) {
      alignas(32) float tail[32] = {};
      int8_t tq[32];
      const bool full = j + 32 <= G;  // a group of G % 32 != 0 ends on a zero-padded copy
      if (!full)
        for (int64_t t = 0; t < G - j; t++) tail[t] = xg[j + t];
      const float* xs = full ? xg + j : tail;
      __m256i cd[4];
      QAT_UNROLL
      for (int t = 0; t < 4; t++) cd[t] = round_codes(_mm256_div_ps(_mm256_loadu_ps(xs + 8 * t), vs), vlo, vhi);
      store_codes32(cd, full ? qg + j : tq);
      if (!full)
        for (int64_t t = 0; t < G - j; t++) qg[j + t] = tq[t];
    }
    if (s16) s16[g] = sg;
  }
}

}  // namespace qat::QAT_KERNEL_NS
