// AVX-512 peak loops (bin/bench peak): 12 independent zmm accumulators, as avx2/peak.cpp.
#include "kernels/avx512/intrin.h"

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

namespace {
template <class V>
int64_t lane0(V v) {  // keeps a result alive
  int64_t t[8];
  _mm512_storeu_si512(t, v);
  return t[0];
}
}  // namespace

double peak_f32_fma(int64_t iters) {
  __m512 a[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps(float(j));
  __m512 b = _mm512_set1_ps(0.999999f);
  const __m512 c = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(b);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
  }
  __m512 s = a[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
  volatile int64_t sink = lane0(_mm512_castps_si512(s));
  (void)sink;
  return 2.0 * 16 * 12 * double(iters);
}

// The exact step of the AVX-512BW kernels without the sign: vpmaddubsw, vpmaddwd by 1, vpaddd (64 MACs).
double peak_int8_exact(int64_t iters) {
  __m512i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm512_setzero_si512();
  __m512i u = _mm512_set1_epi8(3);
  const __m512i ones = _mm512_set1_epi16(1);
  __m512i a[12];  // one operand per chain: a shared product would be computed once
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm512_set1_epi8(char(j - 6));
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm512_add_epi32(acc[j], _mm512_madd_epi16(_mm512_maddubs_epi16(u, a[j]), ones));
  }
  __m512i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm512_add_epi32(s, acc[j]);
  volatile int64_t sink = lane0(s);
  (void)sink;
  return 2.0 * 64 * 12 * double(iters);
}

double peak_int8_i16(int64_t iters) {
  __m512i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm512_setzero_si512();
  __m512i u = _mm512_set1_epi8(3);
  __m512i a[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm512_set1_epi8(char(j - 6));
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm512_add_epi16(acc[j], _mm512_maddubs_epi16(u, a[j]));
  }
  __m512i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm512_add_epi16(s, acc[j]);
  volatile int64_t sink = lane0(s);
  (void)sink;
  return 2.0 * 64 * 12 * double(iters);
}

uint64_t peak_read(const uint8_t* p, int64_t bytes) {
  __m512i s[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  for (int64_t i = 0; i < bytes; i += 256)
    QAT_UNROLL
    for (int j = 0; j < 4; j++) s[j] = _mm512_add_epi64(s[j], _mm512_loadu_si512(p + i + 64 * j));
  uint64_t w[8];
  _mm512_storeu_si512(w, _mm512_add_epi64(_mm512_add_epi64(s[0], s[1]), _mm512_add_epi64(s[2], s[3])));
  uint64_t t = 0;
  for (int j = 0; j < 8; j++) t += w[j];
  return t;
}

}  // namespace qat::QAT_KERNEL_NS
