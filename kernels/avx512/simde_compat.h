// What SIMDe 0.7.4 lacks or computes differently for the AVX-512 kernels, included after SIMDe in the
// -DQAT_SIMDE build only; each replacement computes what the native instruction computes:
//  * _mm512_cvtph_ps, _mm512_cvtepi32_ps: missing; built from their 256-bit halves (both exact);
//  * _mm512_madd_epi16's native alias takes the four arguments of the masked form (a SIMDe 0.7.4 bug),
//    and the __mmask64 type has no alias;
//  * _mm512_fmadd_ps without native FMA is a multiply then an add (two roundings), which would break
//    the reduction order of kernels.h: replaced by a lane-wise fmaf (one rounding, as vfmadd).
#pragma once

static inline simde__m512 qat_simde_mm512_from_halves(simde__m256 lo, simde__m256 hi) {
  return simde_mm512_insertf32x8(simde_mm512_castps256_ps512(lo), hi, 1);
}
static inline simde__m512 qat_simde_mm512_cvtph_ps(simde__m256i h) {
  return qat_simde_mm512_from_halves(simde_mm256_cvtph_ps(simde_mm256_castsi256_si128(h)),
                                     simde_mm256_cvtph_ps(simde_mm256_extracti128_si256(h, 1)));
}
static inline simde__m512 qat_simde_mm512_cvtepi32_ps(simde__m512i v) {
  return qat_simde_mm512_from_halves(simde_mm256_cvtepi32_ps(simde_mm512_castsi512_si256(v)),
                                     simde_mm256_cvtepi32_ps(simde_mm512_extracti64x4_epi64(v, 1)));
}
static inline simde__m512 qat_simde_mm512_fmadd_ps(simde__m512 a, simde__m512 b, simde__m512 c) {
  float fa[16], fb[16], fc[16];
  simde_mm512_storeu_ps(fa, a);
  simde_mm512_storeu_ps(fb, b);
  simde_mm512_storeu_ps(fc, c);
  for (int i = 0; i < 16; i++) fc[i] = __builtin_fmaf(fa[i], fb[i], fc[i]);
  return simde_mm512_loadu_ps(fc);
}
typedef simde__mmask64 __mmask64;
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps(h) qat_simde_mm512_cvtph_ps(h)
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(v) qat_simde_mm512_cvtepi32_ps(v)
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps(a, b, c) qat_simde_mm512_fmadd_ps(a, b, c)
