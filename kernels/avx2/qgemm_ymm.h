// The ymm integer GEMM kernels: one source for two ISAs. avx2/qgemm.cpp includes it with QAT_YMM_VNNI
// 0 (vpmaddubsw + vpmaddwd) and avxvnni/qgemm.cpp with 1 (vpdpbusd), each after its own intrin.h, so
// every function below lands in that ISA's namespace, compiled with that ISA's flags only.
//
// Lane layout (panels of kernels/pack.h, NR = 8 rows): a 32-byte group holds 4 consecutive k of each
// of the 8 rows, so int32 lane r of its product with a broadcast of 4 activation bytes is row r's dot
// product over those 4 k. In scalar pseudocode, for one activation row and one panel:
//     acc[r] = 0                                                    r = 0..7, one output column each
//     for each block b:  isum[r] = 0
//         for each 4-k step t:  isum[r] += sum_{u<4} w[r][32b+4t+u] * a[32b+4t+u]
//         acc[r] = fmaf(dw[r][b] * da[b], (float)isum[r], acc[r])   (the order of kernels.h)
// The products of a block are summed in another order than the scalar loop (exact for integers); the
// f32 steps are the scalar ones, one output per lane, so results are bit-identical to kernels/scalar.
//
// Exactness of the integer steps:
//  q4_0: nibbles u = code + 8 in [0, 15] (u8) times activation codes (s8). vpmaddubsw pairs are at
//        most 2*15*127 = 3810 and 8 of them per int16 lane per block at most 30480 < 32767. The sum is
//        isum + 8*sum(a): 8 * s (the block's code sum, from the activation quantizer) is subtracted.
//  q8_0, s8_pc on AVX2 (the sign trick): vpmaddubsw(|w|, sign(a, w)) gives pairs of w*a; with codes in
//        [-127, 127] a pair is at most 2*127*127 = 32258, so nothing saturates (a -128 would break it:
//        the quantizer never makes one). vpmaddwd by 1 widens the pairs to int32.
//  q8_0, s8_pc with VNNI: weights are packed as w + 128 (u8); vpdpbusd accumulates (w+128)*a in int32
//        without saturation, and 128 * s is subtracted.
// Read next: avx512/qgemm_zmm.h (the same with 16 rows per panel).
#pragma once

namespace qat::QAT_KERNEL_NS {
namespace {

// Every loop over tile rows, panels or steps is unrolled, so the accumulator arrays live in registers.
#ifdef QAT_SIMDE
#define QAT_UNROLL  // SIMDe emulates each vector op in a loop: unrolling only multiplies compile time
#else
#define QAT_UNROLL _Pragma("GCC unroll 16")
#endif

constexpr int NR = 8;         // rows per panel = int32 lanes of a ymm
// M = 1 tiles read one panel (8 rows) at a time, so the weights are a single sequential stream: with
// two panels side by side (sharing each activation broadcast) the GEMVs read DRAM at half the rate
// (AVX2, 1 thread: q4_0 12.5-14 -> 23-25 GB/s, q8_0 15-18 -> 26-27, s8_pc 14 -> 30), in cache within 10%.
constexpr int kGemvPanels = 1;
constexpr int kS8Offset = QAT_YMM_VNNI ? 128 : 0;  // what packing added to int8 weight codes

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline __m256i bcast4(const int8_t* p) {  // 4 activation bytes into every int32 lane
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// q4_0 step: acc += u (u8 nibbles) . a (s8), in int16 lanes (AVX2) or int32 lanes (VNNI).
inline __m256i step_q4(__m256i acc, __m256i u, __m256i a) {
#if QAT_YMM_VNNI
  return _mm256_dpbusd_avx_epi32(acc, u, a);
#else
  return _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, a));
#endif
}
inline __m256i widen_q4(__m256i acc) {  // -> int32 lanes
#if QAT_YMM_VNNI
  return acc;
#else
  return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
#endif
}

// Where a block's int32 accumulators start and how they end: with VNNI the u8 operand added
// offset * sum(a), so they start at -offset * s (one broadcast instead of a subtraction per
// accumulator); the int16 steps start at 0 and subtract 8 * s after widening.
inline __m256i q4_start(int32_t s) {
#if QAT_YMM_VNNI
  return _mm256_set1_epi32(-8 * s);
#else
  (void)s;
  return _mm256_setzero_si256();
#endif
}
inline __m256i q4_finish(__m256i acc, int32_t s) {
#if QAT_YMM_VNNI
  (void)s;
  return acc;
#else
  return _mm256_sub_epi32(widen_q4(acc), _mm256_set1_epi32(8 * s));
#endif
}
inline __m256i s8_start(int32_t s) { return kS8Offset ? _mm256_set1_epi32(-kS8Offset * s) : _mm256_setzero_si256(); }

// int8 step: acc (int32) += w . a. wu = |w| on AVX2 (shared by all activation rows), w itself with VNNI
// (packed as w + 128).
inline __m256i weight_u8(__m256i w) {
#if QAT_YMM_VNNI
  return w;
#else
  return _mm256_abs_epi8(w);
#endif
}
inline __m256i step_s8(__m256i acc, __m256i w, __m256i wu, __m256i a) {
#if QAT_YMM_VNNI
  (void)w;
  return _mm256_dpbusd_avx_epi32(acc, wu, a);
#else
  const __m256i pairs = _mm256_maddubs_epi16(wu, _mm256_sign_epi8(a, w));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

inline void store_cols(float* y, __m256 v, int64_t cols) {
  if (cols >= NR) return _mm256_storeu_ps(y, v);
  float t[NR];
  _mm256_storeu_ps(t, v);
  for (int64_t j = 0; j < cols; j++) y[j] = t[j];
}
inline void store_cols(int32_t* y, __m256i v, int64_t cols) {
  if (cols >= NR) return _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), v);
  int32_t t[NR];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(t), v);
  for (int64_t j = 0; j < cols; j++) y[j] = t[j];
}

// Everything a tile needs. Activation rows start at q, d, s (`groups` scales per row); y (M, ldy).
struct Args {
  const uint8_t* w;  // packed panels
  int64_t pb, nb, K, groups;
  const int8_t* q;
  const float* d;
  const int32_t* s;
  float* y;
  int32_t* y32;
  int64_t ldy;
};

// Tiles: MR activation rows x NP panels (NP * 8 output columns starting at column n), whole K.
// `cols` = valid columns from n (the last panel may be partly padding).
struct Q4 {
  static constexpr int64_t kBlockBytes = NR * 18;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m256 acc[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) acc[i][p] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < g.nb; b++) {
      const uint8_t* blk = w + b * kBlockBytes;
      __m256i isum[MR][NP];
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m256i start = q4_start(g.s[(m + i) * g.groups + b]);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = start;
      }
      // One nibble half at a time (the low nibbles hold k = 32b + 4v + 0..3, the high ones k + 16): only
      // one unpacked weight vector per panel is live, which keeps a 4-row tile within 16 registers.
      QAT_UNROLL
      for (int h = 0; h < 8; h++) {
        const int v = h / 2, half = h % 2;
        __m256i u[NP];
        QAT_UNROLL
        for (int p = 0; p < NP; p++) {
          const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + p * g.pb + 2 * NR + 32 * v));
          u[p] = _mm256_and_si256(half ? _mm256_srli_epi16(raw, 4) : raw, low4);
        }
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const __m256i a = bcast4(q + i * g.K + 32 * b + 16 * half + 4 * v);
          QAT_UNROLL
          for (int p = 0; p < NP; p++) isum[i][p] = step_q4(isum[i][p], u[p], a);
        }
      }
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + p * g.pb)));
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const int64_t gi = (m + i) * g.groups + b;
          const __m256i t = q4_finish(isum[i][p], g.s[gi]);
          acc[i][p] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(g.d[gi])), _mm256_cvtepi32_ps(t), acc[i][p]);
        }
      }
    }
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) store_cols(g.y + (m + i) * g.ldy + n + p * NR, acc[i][p], cols - p * NR);
  }
};

struct Q8 {
  static constexpr int64_t kBlockBytes = NR * 34;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m256 acc[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) acc[i][p] = _mm256_setzero_ps();
    for (int64_t b = 0; b < g.nb; b++) {
      const uint8_t* blk = w + b * kBlockBytes;
      __m256i isum[MR][NP];
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m256i start = s8_start(g.s[(m + i) * g.groups + b]);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = start;
      }
      QAT_UNROLL
      for (int t = 0; t < 8; t++) {
        __m256i wv[NP], wu[NP];
        QAT_UNROLL
        for (int p = 0; p < NP; p++) {
          wv[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + p * g.pb + 2 * NR + 32 * t));
          wu[p] = weight_u8(wv[p]);
        }
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const __m256i a = bcast4(q + i * g.K + 32 * b + 4 * t);
          QAT_UNROLL
          for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], wv[p], wu[p], a);
        }
      }
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + p * g.pb)));
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const int64_t gi = (m + i) * g.groups + b;
          const __m256i t = isum[i][p];
          acc[i][p] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(g.d[gi])), _mm256_cvtepi32_ps(t), acc[i][p]);
        }
      }
    }
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) store_cols(g.y + (m + i) * g.ldy + n + p * NR, acc[i][p], cols - p * NR);
  }
};

// s8_pc: one int32 sum over all of K, then y = (dw * da) * (float)isum, or the int32 sum itself (S32).
template <bool S32>
struct S8 {
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m256i isum[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++) {
      const __m256i start = s8_start(g.s[m + i]);
      QAT_UNROLL
      for (int p = 0; p < NP; p++) isum[i][p] = start;
    }
    for (int64_t t = 0; t < g.K / 4; t++) {
      __m256i wv[NP], wu[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        wv[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + p * g.pb + 4 * NR + 32 * t));
        wu[p] = weight_u8(wv[p]);
      }
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m256i a = bcast4(q + i * g.K + 4 * t);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], wv[p], wu[p], a);
      }
    }
    QAT_UNROLL
    for (int p = 0; p < NP; p++) {
      const __m256 dw = _mm256_loadu_ps(reinterpret_cast<const float*>(w + p * g.pb));
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m256i t = isum[i][p];
        const int64_t at = (m + i) * g.ldy + n + p * NR;
        if constexpr (S32)
          store_cols(g.y32 + at, t, cols - p * NR);
        else
          store_cols(g.y + at, _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(g.d[m + i])), _mm256_cvtepi32_ps(t)),
                     cols - p * NR);
      }
    }
  }
};

// M > 1: panel by panel (a panel stays in L1 while every row block passes over it), 4 rows per tile.
template <class Kern>
void run_gemm(const Args& g, int64_t n0, int64_t n1, int64_t M) {
  for (int64_t n = n0; n < n1; n += NR) {
    const int64_t cols = min64(NR, n1 - n);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) Kern::template tile<4, 1>(g, n, m, cols);
    switch (M - m) {
      case 3: Kern::template tile<3, 1>(g, n, m, cols); break;
      case 2: Kern::template tile<2, 1>(g, n, m, cols); break;
      case 1: Kern::template tile<1, 1>(g, n, m, cols); break;
      default: break;
    }
  }
}

// M = 1: one panel per tile, streaming the weights once.
template <class Kern>
void run_gemv(const Args& g, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n += NR) Kern::template tile<1, kGemvPanels>(g, n, 0, n1 - n);
}

Args make_args(const uint8_t* w, int64_t pb, int64_t K, int64_t groups, const int8_t* q, const float* d,
               const int32_t* s, float* y, int32_t* y32, int64_t ldy) {
  return Args{w, pb, K / 32, K, groups, q, d, s, y, y32, ldy};
}

}  // namespace

void gemm_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, int64_t M, float* y, int64_t ldy) {
  run_gemm<Q4>(make_args(w, K / 32 * Q4::kBlockBytes, K, K / 32, q, d, s, y, nullptr, ldy), n0, n1, M);
}
void gemv_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y) {
  run_gemv<Q4>(make_args(w, K / 32 * Q4::kBlockBytes, K, K / 32, q, d, s, y, nullptr, 0), n0, n1);
}
void gemm_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, int64_t M, float* y, int64_t ldy) {
  run_gemm<Q8>(make_args(w, K / 32 * Q8::kBlockBytes, K, K / 32, q, d, s, y, nullptr, ldy), n0, n1, M);
}
void gemv_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y) {
  run_gemv<Q8>(make_args(w, K / 32 * Q8::kBlockBytes, K, K / 32, q, d, s, y, nullptr, 0), n0, n1);
}
void gemm_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t* s, int64_t M, float* y, int64_t ldy) {
  run_gemm<S8<false>>(make_args(w, NR * 4 + NR * K, K, 1, q, d, s, y, nullptr, ldy), n0, n1, M);
}
void gemv_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t* s, float* y) {
  run_gemv<S8<false>>(make_args(w, NR * 4 + NR * K, K, 1, q, d, s, y, nullptr, 0), n0, n1);
}
void gemm_s8_pc_s32(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const int32_t* s,
                    int64_t M, int32_t* y, int64_t ldy) {
  run_gemm<S8<true>>(make_args(w, NR * 4 + NR * K, K, 1, q, nullptr, s, nullptr, y, ldy), n0, n1, M);
}

}  // namespace qat::QAT_KERNEL_NS
