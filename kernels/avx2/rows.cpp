// AVX2 row functions, bit-identical to kernels/scalar/rows.cpp: the same multiplies, adds and integer
// steps, 8 lanes at a time (no FMA anywhere: -ffp-contract=off keeps mul + add apart).
#include "kernels/avx2/intrin.h"

namespace qat::QAT_KERNEL_NS {
namespace {

inline __m256 exp8(__m256 x) {
  const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 n = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
  const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f))),
                                 _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
  // 2^a 2^b with a = n >> 1, b = n - a (lanes outside the range hold garbage here: replaced below).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 sa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
  const __m256 sb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
  y = _mm256_mul_ps(_mm256_mul_ps(y, sa), sb);
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GE_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN stays NaN
}

inline __m256i tail_mask(int64_t left) {  // lanes 0 .. left-1 (left < 8)
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define QAT_UNROLL _Pragma("GCC unroll 8")

// out[0 .. 8W) over all n rows, W accumulators in registers; the last one masked when `tail` (its
// lanes past D load zeros and are not stored).
template <int W>
void columns(const float* p, const float* v, int64_t stride, int64_t n, float* out, __m256i tail, bool masked) {
  __m256 acc[W];
  QAT_UNROLL
  for (int w = 0; w < W; w++) acc[w] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j++) {
    const __m256 pj = _mm256_broadcast_ss(p + j);
    const float* vj = v + j * stride;
    QAT_UNROLL
    for (int w = 0; w < W - 1; w++) acc[w] = _mm256_add_ps(acc[w], _mm256_mul_ps(pj, _mm256_loadu_ps(vj + 8 * w)));
    const __m256 last = masked ? _mm256_maskload_ps(vj + 8 * (W - 1), tail) : _mm256_loadu_ps(vj + 8 * (W - 1));
    acc[W - 1] = _mm256_add_ps(acc[W - 1], _mm256_mul_ps(pj, last));
  }
  QAT_UNROLL
  for (int w = 0; w < W - 1; w++) _mm256_storeu_ps(out + 8 * w, acc[w]);
  if (masked) _mm256_maskstore_ps(out + 8 * (W - 1), tail, acc[W - 1]);
  else _mm256_storeu_ps(out + 8 * (W - 1), acc[W - 1]);
}

}  // namespace

void exp_f32(const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, exp8(_mm256_maskload_ps(x + i, m)));
  }
}

// Up to 64 columns per pass over the rows (one load of p[j] feeds them all), in registers.
void weighted_rows(const float* p, const float* v, int64_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t d = 0; d < D; d += 64) {
    const int64_t c = D - d < 64 ? D - d : 64, w = (c + 7) / 8;
    const bool masked = c % 8 != 0;
    const __m256i tail = tail_mask(masked ? c % 8 : 0);
    const float* vd = v + d;
    float* od = out + d;
    switch (w) {
      case 1: columns<1>(p, vd, stride, n, od, tail, masked); break;
      case 2: columns<2>(p, vd, stride, n, od, tail, masked); break;
      case 3: columns<3>(p, vd, stride, n, od, tail, masked); break;
      case 4: columns<4>(p, vd, stride, n, od, tail, masked); break;
      case 5: columns<5>(p, vd, stride, n, od, tail, masked); break;
      case 6: columns<6>(p, vd, stride, n, od, tail, masked); break;
      case 7: columns<7>(p, vd, stride, n, od, tail, masked); break;
      default: columns<8>(p, vd, stride, n, od, tail, masked); break;
    }
  }
}

}  // namespace qat::QAT_KERNEL_NS
