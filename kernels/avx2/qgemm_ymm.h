// The ymm vector layer of the integer GEMM tiles (kernels/qgemm_tiles.h: the loops, the lane layout,
// the exactness arguments): panels of NR = 8 rows, one int32 lane per output column of a ymm.
// avx2/qgemm.cpp includes it with QAT_YMM_VNNI 0 (vpmaddubsw + vpmaddwd) and avxvnni/qgemm.cpp with 1
// (vpdpbusd), each after its own intrin.h, so every function lands in that ISA's namespace, compiled
// with that ISA's flags only.
//
// The AVX2 q4_0 GEMV inner loop, i.e. Q4::tile<1, 1> of qgemm_tiles.h with these steps, per block b:
//     u    = load 32 packed bytes (4 k of each of the 8 rows), & 0x0f (low nibbles; >> 4 for the high)
//     a    = 4 activation bytes broadcast to every int32 lane                     (bcast4)
//     isum = isum + vpmaddubsw(u, a)          int16 lanes, 8 steps per block       (step_q4)
//     acc  = fmadd(dw * da, (float)(vpmaddwd(isum, 1) - 8 * s), acc)             (q4_finish, fma_scaled)
// Read next: avx512/qgemm_zmm.h (the same layer with 16 rows per panel).
#pragma once

namespace qat::QAT_KERNEL_NS {
namespace {

constexpr int NR = 8;                    // rows per panel = int32 lanes of a ymm
constexpr int kGemmMR = 4, kGemmNP = 1;  // M > 1 tile: 4 rows x 8 columns (16 ymm registers)
// M = 1 s8_pc tiles read one panel at a time as q4_0 / q8_0 do (one sequential stream: from DRAM at
// 1 thread 14 -> 30 GB/s against two panels side by side).
constexpr int kGemvNP = 1;
constexpr int kS8Offset = QAT_YMM_VNNI ? 128 : 0;  // what packing added to int8 weight codes

using VecF = __m256;
using VecI = __m256i;

inline VecF zero_f() { return _mm256_setzero_ps(); }
inline VecI load_i(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline VecF load_f16(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline VecF load_f32(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
inline void store_f(float* y, VecF v) { _mm256_storeu_ps(y, v); }
inline void store_i(int32_t* y, VecI v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), v); }

inline VecI bcast4(const int8_t* p) {  // 4 activation bytes into every int32 lane
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// q4_0 weights of one nibble half (0: low, 1: high) as u8 lanes.
inline VecI low4() { return _mm256_set1_epi8(0x0f); }
inline VecI nibbles(VecI raw, int half, VecI low4) {
  return _mm256_and_si256(half ? _mm256_srli_epi16(raw, 4) : raw, low4);
}
// tq weights: the 2-bit field at bit 2l of every byte (code + 1) as u8 lanes.
inline VecI low2() { return _mm256_set1_epi8(0x03); }
inline VecI crumbs(VecI raw, int l, VecI low2) { return _mm256_and_si256(_mm256_srli_epi16(raw, 2 * l), low2); }
inline void q4_half_fence() {}

// q4_0 step: acc += u (u8 nibbles) . a (s8), in int16 lanes (AVX2) or int32 lanes (VNNI).
inline VecI step_q4(VecI acc, VecI u, VecI a) {
#if QAT_YMM_VNNI
  return _mm256_dpbusd_avx_epi32(acc, u, a);
#else
  return _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, a));
#endif
}

// Where a block's int32 accumulators start and how they end, for u8 weights u = code + off (q4_0:
// off 8, tq: off 1) and os = off * s: with VNNI the u8 operand added os, so they start at -os (one
// broadcast instead of a subtraction per accumulator); the int16 steps start at 0 and subtract os
// after widening.
inline VecI q4_start(int32_t os) {
#if QAT_YMM_VNNI
  return _mm256_set1_epi32(-os);
#else
  (void)os;
  return _mm256_setzero_si256();
#endif
}
inline VecI q4_finish(VecI acc, int32_t os) {
#if QAT_YMM_VNNI
  (void)os;
  return acc;
#else
  return _mm256_sub_epi32(_mm256_madd_epi16(acc, _mm256_set1_epi16(1)), _mm256_set1_epi32(os));
#endif
}
inline VecI s8_start(int32_t s) { return kS8Offset ? _mm256_set1_epi32(-kS8Offset * s) : _mm256_setzero_si256(); }

// Weights of one 4-k step as the int8 steps use them: VNNI the u8 codes (w + 128); AVX2 |w| (shared by
// all activation rows) and w itself, whose sign vpsignb puts on the activations.
struct WStep {
  VecI u;
#if !QAT_YMM_VNNI
  VecI w;
#endif
};
inline WStep weight_step(VecI w) {
#if QAT_YMM_VNNI
  return WStep{w};
#else
  return WStep{_mm256_abs_epi8(w), w};
#endif
}
inline VecI step_s8(VecI acc, const WStep& w, VecI a) {
#if QAT_YMM_VNNI
  return _mm256_dpbusd_avx_epi32(acc, w.u, a);
#else
  const VecI pairs = _mm256_maddubs_epi16(w.u, _mm256_sign_epi8(a, w.w));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

inline VecF fma_scaled(VecF dw, float d, VecI isum, VecF acc) {
  return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d)), _mm256_cvtepi32_ps(isum), acc);
}
inline VecF scaled(VecF dw, float d, VecI isum) {
  return _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(d)), _mm256_cvtepi32_ps(isum));
}

}  // namespace
}  // namespace qat::QAT_KERNEL_NS

#include "kernels/qgemm_tiles.h"
