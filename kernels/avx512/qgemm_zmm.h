// The zmm vector layer of the integer GEMM tiles (kernels/qgemm_tiles.h), as avx2/qgemm_ymm.h is for
// ymm (read that first). avx512/qgemm.cpp includes it with QAT_ZMM_VNNI 0 (AVX-512BW: vpmaddubsw +
// vpmaddwd) and avx512vnni/qgemm.cpp with 1 (vpdpbusd), each after its own intrin.h: every function
// lands in that ISA's namespace (qat::avx512, qat::avx512vnni, or their _simde twins) and is compiled
// with that ISA's flags only.
//
// Differences from ymm: panels of NR = 16 rows (one int32 lane per output column of a zmm), 32
// registers (tiles of up to 6 activation rows x 2 panels), and no vpsignb in AVX-512: the sign trick
// negates the activation bytes under the mask of negative weights instead (vpmovb2m + masked vpsubb;
// where w = 0 the product is 0 whatever the activation).
#pragma once

namespace qat::QAT_KERNEL_NS {
namespace {

constexpr int NR = 16;  // rows per panel = int32 lanes of a zmm
#if QAT_ZMM_VNNI
constexpr int kGemmMR = 6, kGemmNP = 2;  // M > 1 tile: 6 rows x 32 columns
#else
constexpr int kGemmMR = 4, kGemmNP = 2;  // (the sign trick needs registers for |w| and masks)
#endif
// M = 1 tile of gemm_s8_pc: 64 columns. With one panel every activation broadcast feeds a single
// vpdpbusd and the in-cache GEMV ran 1.2-1.8x slower; from DRAM the two were equal.
constexpr int kGemvNP = 4;
constexpr int kS8Offset = QAT_ZMM_VNNI ? 128 : 0;  // what packing added to int8 weight codes

using VecF = __m512;
using VecI = __m512i;

inline VecF zero_f() { return _mm512_setzero_ps(); }
inline VecI load_i(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline VecF load_f16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline VecF load_f32(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
inline void store_f(float* y, VecF v) { _mm512_storeu_ps(y, v); }
inline void store_i(int32_t* y, VecI v) { _mm512_storeu_si512(y, v); }

inline VecI bcast4(const int8_t* p) {  // 4 activation bytes into every int32 lane
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// q4_0 weights of one nibble half (0: low, 1: high) as u8 lanes.
inline VecI low4() { return _mm512_set1_epi8(0x0f); }
inline VecI nibbles(VecI raw, int half, VecI low4) {
  return _mm512_and_si512(half ? _mm512_srli_epi16(raw, 4) : raw, low4);
}
// tq weights: the 2-bit field at bit 2l of every byte (code + 1) as u8 lanes.
inline VecI low2() { return _mm512_set1_epi8(0x03); }
inline VecI crumbs(VecI raw, int l, VecI low2) { return _mm512_and_si512(_mm512_srli_epi16(raw, 2 * l), low2); }
inline void q4_half_fence() {
#if !QAT_ZMM_VNNI && !defined(QAT_SIMDE)
  // AVX-512BW: without this barrier clang 14 hoists all 32 activation broadcasts of the block, spills
  // them and reloads them as operands; with it the 4 x 2 q4_0 tile ran 15-27% faster (pinned A/B).
  asm volatile("" ::: "memory");
#endif
}

// q4_0 step: acc += u (u8 nibbles) . a (s8), in int16 lanes (BW) or int32 lanes (VNNI).
inline VecI step_q4(VecI acc, VecI u, VecI a) {
#if QAT_ZMM_VNNI
  return _mm512_dpbusd_epi32(acc, u, a);
#else
  return _mm512_add_epi16(acc, _mm512_maddubs_epi16(u, a));
#endif
}

// Where a block's int32 accumulators start and how they end, os = off * s (as in qgemm_ymm.h).
inline VecI q4_start(int32_t os) {
#if QAT_ZMM_VNNI
  return _mm512_set1_epi32(-os);
#else
  (void)os;
  return _mm512_setzero_si512();
#endif
}
inline VecI q4_finish(VecI acc, int32_t os) {
#if QAT_ZMM_VNNI
  (void)os;
  return acc;
#else
  return _mm512_sub_epi32(_mm512_madd_epi16(acc, _mm512_set1_epi16(1)), _mm512_set1_epi32(os));
#endif
}
inline VecI s8_start(int32_t s) { return kS8Offset ? _mm512_set1_epi32(-kS8Offset * s) : _mm512_setzero_si512(); }

// Weights of one 4-k step as the int8 steps use them: VNNI the u8 codes (w + 128); BW |w| and the mask
// of negative w.
struct WStep {
  VecI u;
#if !QAT_ZMM_VNNI
  __mmask64 neg;
#endif
};
inline WStep weight_step(VecI w) {
#if QAT_ZMM_VNNI
  return WStep{w};
#else
  return WStep{_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
#endif
}
inline VecI step_s8(VecI acc, const WStep& w, VecI a) {
#if QAT_ZMM_VNNI
  return _mm512_dpbusd_epi32(acc, w.u, a);
#else
  const VecI sa = _mm512_mask_sub_epi8(a, w.neg, _mm512_setzero_si512(), a);  // a * sign(w)
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w.u, sa), _mm512_set1_epi16(1)));
#endif
}

inline VecF fma_scaled(VecF dw, float d, VecI isum, VecF acc) {
  return _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(d)), _mm512_cvtepi32_ps(isum), acc);
}
inline VecF scaled(VecF dw, float d, VecI isum) {
  return _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(d)), _mm512_cvtepi32_ps(isum));
}

}  // namespace
}  // namespace qat::QAT_KERNEL_NS

#include "kernels/qgemm_tiles.h"
