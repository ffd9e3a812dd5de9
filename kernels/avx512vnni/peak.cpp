// AVX-512 VNNI peak loop (bin/bench peak): vpdpbusd on 12 independent zmm accumulators (64 MACs each).
#include "kernels/avx512vnni/intrin.h"

#ifdef QAT_SIMDE
#define QAT_OPAQUE(v) __asm__ volatile("" : "+m"(v))
#else
#define QAT_OPAQUE(v) __asm__ volatile("" : "+v"(v))
#endif
#ifdef QAT_SIMDE
#define QAT_UNROLL  // SIMDe emulates each vector op in a loop: unrolling only multiplies compile time
#else
#define QAT_UNROLL _Pragma("GCC unroll 16")
#endif

namespace qat::QAT_KERNEL_NS {

double peak_int8_exact(int64_t iters) {
  __m512i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm512_setzero_si512();
  __m512i u = _mm512_set1_epi8(3);
  const __m512i a = _mm512_set1_epi8(-2);
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], u, a);
  }
  __m512i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm512_add_epi32(s, acc[j]);
  int32_t t[16];
  _mm512_storeu_si512(t, s);
  volatile int32_t sink = t[0];
  (void)sink;
  return 2.0 * 64 * 12 * double(iters);
}

}  // namespace qat::QAT_KERNEL_NS
