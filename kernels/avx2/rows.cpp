// AVX2 row functions, bit-identical to kernels/scalar/rows.cpp: the same multiplies, adds and integer
// steps, 8 lanes at a time (no FMA anywhere: -ffp-contract=off keeps mul + add apart).
#include "kernels/avx2/intrin.h"
#include "kernels/avx2/lanes.h"

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

// Heads g < G, columns [0, 8W) of out_g over all n rows: G x W accumulators in registers, each value
// vector loaded once for the G heads; the last vector masked when `masked` (lanes past D load zeros and
// are not stored).
template <int G, int W>
void columns(const float* p, int64_t ldp, const float* v, int64_t stride, int64_t n, float* out, int64_t ldo,
             __m256i tail, bool masked) {
  __m256 acc[G][W];
  QAT_UNROLL
  for (int g = 0; g < G; g++)
    QAT_UNROLL
    for (int w = 0; w < W; w++) acc[g][w] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j++) {
    __m256 pj[G];
    QAT_UNROLL
    for (int g = 0; g < G; g++) pj[g] = _mm256_broadcast_ss(p + g * ldp + j);
    const float* vj = v + j * stride;
    QAT_UNROLL
    for (int w = 0; w < W; w++) {
      const __m256 vw = w == W - 1 && masked ? _mm256_maskload_ps(vj + 8 * w, tail) : _mm256_loadu_ps(vj + 8 * w);
      QAT_UNROLL
      for (int g = 0; g < G; g++) acc[g][w] = _mm256_add_ps(acc[g][w], _mm256_mul_ps(pj[g], vw));
    }
  }
  QAT_UNROLL
  for (int g = 0; g < G; g++)
    QAT_UNROLL
    for (int w = 0; w < W; w++) {
      if (w == W - 1 && masked) _mm256_maskstore_ps(out + g * ldo + 8 * w, tail, acc[g][w]);
      else _mm256_storeu_ps(out + g * ldo + 8 * w, acc[g][w]);
    }
}

// One pass of c columns for G = 1 (c <= 64) or G = 2 (c <= 48) heads.
template <int G>
void pass(const float* p, int64_t ldp, const float* v, int64_t stride, int64_t n, int64_t c, float* out, int64_t ldo) {
  const bool masked = c % 8 != 0;
  const __m256i tail = tail_mask(masked ? c % 8 : 0);
  switch ((c + 7) / 8) {
    case 1: columns<G, 1>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 2: columns<G, 2>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 3: columns<G, 3>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 4: columns<G, 4>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 5: columns<G, 5>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 6: columns<G, 6>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 7: if constexpr (G == 1) columns<G, 7>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
    case 8: if constexpr (G == 1) columns<G, 8>(p, ldp, v, stride, n, out, ldo, tail, masked); break;
  }
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

// Heads two at a time (48 columns a pass: 12 accumulators), a last single head 64 columns a pass.
void weighted_rows(const float* p, int64_t ldp, int64_t G, const float* v, int64_t stride, int64_t n, int64_t D,
                   float* out, int64_t ldo) {
  int64_t g = 0;
  for (; g + 2 <= G; g += 2)
    for (int64_t d = 0; d < D; d += 48) pass<2>(p + g * ldp, ldp, v + d, stride, n, D - d < 48 ? D - d : 48, out + g * ldo + d, ldo);
  if (g < G)
    for (int64_t d = 0; d < D; d += 64) pass<1>(p + g * ldp, ldp, v + d, stride, n, D - d < 64 ? D - d : 64, out + g * ldo + d, ldo);
}

namespace {

// Scores of NH consecutive query heads from h0 at one position (its heads at kj): one ymm of 8 partial sums
// per head (lane i takes d % 8 == i, acc = acc + q * k), combined in dot_f32's order. D % 8 == 0.
template <int NH>
inline void head_dots(const float* q, int64_t h0, int64_t group, const float* kj, int64_t D, float* s, int64_t lds) {
  __m256 acc[NH];
  QAT_UNROLL
  for (int i = 0; i < NH; i++) acc[i] = _mm256_setzero_ps();
  for (int64_t t = 0; t < D; t += 8)
    QAT_UNROLL
    for (int i = 0; i < NH; i++)
      acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(_mm256_loadu_ps(q + (h0 + i) * D + t),
                                                   _mm256_loadu_ps(kj + (h0 + i) / group * D + t)));
  QAT_UNROLL
  for (int i = 0; i < NH; i++) s[(h0 + i) * lds] = combine8(acc[i]);
}

}  // namespace

// Position-major: for each position, its row of Hkv heads (one contiguous run) against every query head,
// 8 heads at a time (8 independent sums in flight). D % 8 != 0 (no real model): the per-head GEMV.
void head_scores(const float* q, int64_t H, int64_t group, const float* k, int64_t stride, int64_t n, int64_t D,
                 float* s, int64_t lds) {
  if (D % 8 != 0) {
    for (int64_t h = 0; h < H; h++) gemv_f32(q + h * D, k + (h / group) * D, stride, n, D, s + h * lds);
    return;
  }
  for (int64_t j = 0; j < n; j++) {
    const float* kj = k + j * stride;
    int64_t h = 0;
    for (; h + 8 <= H; h += 8) head_dots<8>(q, h, group, kj, D, s + j, lds);
    for (; h < H; h++) head_dots<1>(q, h, group, kj, D, s + j, lds);
  }
}

// out (H, D) accumulates position after position, two at a time (each element still takes
// acc = acc + p_j * v_j, then acc + p_j+1 * v_j+1: weighted_rows's steps in its order); the H x D sums
// stay in L1 while the cache streams past once.
void head_weighted(const float* p, int64_t ldp, int64_t H, int64_t group, const float* v, int64_t stride, int64_t n,
                   int64_t D, float* out) {
  if (D % 8 != 0) {
    for (int64_t h = 0; h < H; h++) weighted_rows(p + h * ldp, ldp, 1, v + (h / group) * D, stride, n, D, out + h * D, D);
    return;
  }
  for (int64_t i = 0; i < H * D; i += 8) _mm256_storeu_ps(out + i, _mm256_setzero_ps());
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const float *v0 = v + j * stride, *v1 = v0 + stride;
    for (int64_t h = 0; h < H; h++) {
      const __m256 p0 = _mm256_set1_ps(p[h * ldp + j]), p1 = _mm256_set1_ps(p[h * ldp + j + 1]);
      const int64_t kv = h / group * D;
      float* o = out + h * D;
      for (int64_t t = 0; t < D; t += 8) {
        const __m256 a = _mm256_add_ps(_mm256_loadu_ps(o + t), _mm256_mul_ps(p0, _mm256_loadu_ps(v0 + kv + t)));
        _mm256_storeu_ps(o + t, _mm256_add_ps(a, _mm256_mul_ps(p1, _mm256_loadu_ps(v1 + kv + t))));
      }
    }
  }
  if (j < n) {
    const float* v0 = v + j * stride;
    for (int64_t h = 0; h < H; h++) {
      const __m256 p0 = _mm256_set1_ps(p[h * ldp + j]);
      const int64_t kv = h / group * D;
      float* o = out + h * D;
      for (int64_t t = 0; t < D; t += 8)
        _mm256_storeu_ps(o + t, _mm256_add_ps(_mm256_loadu_ps(o + t), _mm256_mul_ps(p0, _mm256_loadu_ps(v0 + kv + t))));
    }
  }
}

// Three passes over the row: scale and running maximum, exp and sum, normalise.
void softmax(float* s, int64_t n, float scale, float* max, float* sum) {
  const __m256 sc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-__builtin_inff());
  const int64_t body = n & ~int64_t(7);
  const __m256i tail = tail_mask(n - body);
  const __m256 ftail = _mm256_castsi256_ps(tail);
  __m256 mv = ninf;  // max_ps(x, m) returns m when x is NaN or equal: lane by lane `x > m ? x : m`
  for (int64_t j = 0; j < body; j += 8) {
    const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(s + j), sc);
    _mm256_storeu_ps(s + j, x);
    mv = _mm256_max_ps(x, mv);
  }
  if (body < n) {
    const __m256 x = _mm256_mul_ps(_mm256_maskload_ps(s + body, tail), sc);
    _mm256_maskstore_ps(s + body, tail, x);
    mv = _mm256_max_ps(_mm256_blendv_ps(ninf, x, ftail), mv);
  }
  const float m = hmax8(mv);
  const __m256 mm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t j = 0; j < body; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mm));
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (body < n) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(s + body, tail), mm));
    _mm256_maskstore_ps(s + body, tail, e);
    acc = _mm256_blendv_ps(acc, _mm256_add_ps(acc, e), ftail);
  }
  const float total = combine8(acc);  // sum_f32's order
  const __m256 inv = _mm256_set1_ps(1.0f / total);
  for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
  if (body < n) _mm256_maskstore_ps(s + body, tail, _mm256_mul_ps(_mm256_maskload_ps(s + body, tail), inv));
  *max = m;
  *sum = total;
}

void swiglu(const float* g, const float* u, int64_t n, float* y) {
  const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
  auto step = [&](__m256 gv, __m256 uv) {
    return _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, exp8(_mm256_xor_ps(gv, neg)))), uv);
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, step(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, step(_mm256_maskload_ps(g + i, m), _mm256_maskload_ps(u + i, m)));
  }
}

void swiglu_backward(const float* g, const float* u, const float* dy, int64_t n, float* dg, float* du) {
  const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
  auto block = [&](int64_t i, __m256i mask, bool masked) {
    auto load = [&](const float* p) { return masked ? _mm256_maskload_ps(p + i, mask) : _mm256_loadu_ps(p + i); };
    auto store = [&](float* p, __m256 v) {
      if (masked) _mm256_maskstore_ps(p + i, mask, v);
      else _mm256_storeu_ps(p + i, v);
    };
    const __m256 gv = load(g), uv = load(u), dyv = load(dy);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_xor_ps(gv, neg))));
    if (dg) {
      const __m256 ds = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, s))));
      store(dg, _mm256_add_ps(load(dg), _mm256_mul_ps(_mm256_mul_ps(dyv, uv), ds)));
    }
    if (du) store(du, _mm256_add_ps(load(du), _mm256_mul_ps(_mm256_mul_ps(dyv, gv), s)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) block(i, _mm256_setzero_si256(), false);
  if (i < n) block(i, tail_mask(n - i), true);
}

}  // namespace qat::QAT_KERNEL_NS
