// AVX-VNNI peak loop (bin/bench peak): VEX vpdpbusd on 12 independent ymm accumulators (32 MACs each).
#include "kernels/avxvnni/intrin.h"

#ifdef QAT_SIMDE
#define QAT_OPAQUE(v) __asm__ volatile("" : "+m"(v))
#else
#define QAT_OPAQUE(v) __asm__ volatile("" : "+x"(v))
#endif
#ifdef QAT_SIMDE
#define QAT_UNROLL  // SIMDe emulates each vector op in a loop: unrolling only multiplies compile time
#else
#define QAT_UNROLL _Pragma("GCC unroll 16")
#endif

namespace qat::QAT_KERNEL_NS {

double peak_int8_exact(int64_t iters) {
  __m256i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm256_setzero_si256();
  __m256i u = _mm256_set1_epi8(3);
  const __m256i a = _mm256_set1_epi8(-2);
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm256_dpbusd_avx_epi32(acc[j], u, a);
  }
  __m256i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm256_add_epi32(s, acc[j]);
  int32_t t[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(t), s);
  volatile int32_t sink = t[0];
  (void)sink;
  return 2.0 * 32 * 12 * double(iters);
}

}  // namespace qat::QAT_KERNEL_NS
