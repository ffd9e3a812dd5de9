// AVX2 peak loops (bin/bench peak): 12 independent ymm accumulators; QAT_OPAQUE makes the compiler
// treat the constant operand as changed every iteration, so nothing is hoisted out of the loop.
#include "kernels/avx2/intrin.h"

#define QAT_OPAQUE(v) __asm__ volatile("" : "+x"(v))
#define QAT_UNROLL _Pragma("GCC unroll 16")

namespace qat::QAT_KERNEL_NS {

double peak_f32_fma(int64_t iters) {
  __m256 a[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps(float(j));
  __m256 b = _mm256_set1_ps(0.999999f);
  const __m256 c = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(b);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
  }
  __m256 s = a[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, a[j]);
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return 2.0 * 8 * 12 * double(iters);
}

// The exact step of the AVX2 kernels without the sign: vpmaddubsw, vpmaddwd by 1, vpaddd (32 MACs).
double peak_int8_exact(int64_t iters) {
  __m256i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm256_setzero_si256();
  __m256i u = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a[12];  // one operand per chain: a shared product would be computed once
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm256_set1_epi8(char(j - 6));
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(u, a[j]), ones));
  }
  __m256i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm256_add_epi32(s, acc[j]);
  volatile int sink = _mm256_extract_epi32(s, 0);
  (void)sink;
  return 2.0 * 32 * 12 * double(iters);
}

double peak_int8_i16(int64_t iters) {
  __m256i acc[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) acc[j] = _mm256_setzero_si256();
  __m256i u = _mm256_set1_epi8(3);
  __m256i a[12];
  QAT_UNROLL
  for (int j = 0; j < 12; j++) a[j] = _mm256_set1_epi8(char(j - 6));
  for (int64_t i = 0; i < iters; i++) {
    QAT_OPAQUE(u);
    QAT_UNROLL
    for (int j = 0; j < 12; j++) acc[j] = _mm256_add_epi16(acc[j], _mm256_maddubs_epi16(u, a[j]));
  }
  __m256i s = acc[0];
  QAT_UNROLL
  for (int j = 1; j < 12; j++) s = _mm256_add_epi16(s, acc[j]);
  volatile int sink = _mm256_extract_epi16(s, 0);
  (void)sink;
  return 2.0 * 32 * 12 * double(iters);
}

uint64_t peak_read(const uint8_t* p, int64_t bytes) {
  __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int64_t i = 0; i < bytes; i += 128)
    QAT_UNROLL
    for (int j = 0; j < 4; j++)
      s[j] = _mm256_add_epi64(s[j], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32 * j)));
  const __m256i t = _mm256_add_epi64(_mm256_add_epi64(s[0], s[1]), _mm256_add_epi64(s[2], s[3]));
  alignas(32) uint64_t w[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(w), t);
  return w[0] + w[1] + w[2] + w[3];
}

}  // namespace qat::QAT_KERNEL_NS
