// What SIMDe 0.7.4 lacks or computes differently for the AVX-VNNI kernels, included after SIMDe in the
// -DQAT_SIMDE build only:
//  * no AVX-VNNI (VEX) intrinsic names: _mm256_dpbusd_avx_epi32 computes exactly what the AVX512VL +
//    VNNI _mm256_dpbusd_epi32 computes (u8 x s8 4-way dot products added to int32 lanes, no
//    saturation), which SIMDe has, so the first maps onto the second;
//  * _mm256_fmadd_ps without native FMA is a multiply then an add (two roundings), which would break
//    the reduction order of kernels.h: replaced by a lane-wise fmaf (one rounding, as vfmadd).
#pragma once

#ifndef simde_mm256_dpbusd_avx_epi32
#define simde_mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
#endif
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_avx_epi32(src, a, b)

static inline simde__m256 qat_simde_mm256_fmadd_ps(simde__m256 a, simde__m256 b, simde__m256 c) {
  float fa[8], fb[8], fc[8];
  simde_mm256_storeu_ps(fa, a);
  simde_mm256_storeu_ps(fb, b);
  simde_mm256_storeu_ps(fc, c);
  for (int i = 0; i < 8; i++) fc[i] = __builtin_fmaf(fa[i], fb[i], fc[i]);
  return simde_mm256_loadu_ps(fc);
}
#undef _mm256_fmadd_ps
#define _mm256_fmadd_ps(a, b, c) qat_simde_mm256_fmadd_ps(a, b, c)
