// Horizontal reductions of one ymm shared by the AVX2 kernel files (included after intrin.h, so they
// land in this ISA's namespace and are compiled with its flags only).
#pragma once

namespace qat::QAT_KERNEL_NS {
namespace {

// The project's fixed f32 order over 8 lanes (dot_f32 / sum_f32 of kernels/ref/order.h):
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), i.e. low half + high half, then pairs.
inline float combine8(__m256 l) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(l), _mm256_extractf128_ps(l, 1));  // l0+l4, l1+l5, l2+l6, l3+l7
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));  // (l0+l4)+(l2+l6), (l1+l5)+(l3+l7)
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// The largest of 8 non-NaN lanes (order-free up to the sign of a zero maximum).
inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

}  // namespace
}  // namespace qat::QAT_KERNEL_NS
