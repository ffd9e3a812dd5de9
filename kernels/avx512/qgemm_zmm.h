// The zmm integer GEMM kernels: one source for two ISAs, as avx2/qgemm_ymm.h is for ymm (read that
// first: the lane layout, the reduction order and the exactness arguments are the same). avx512/qgemm.cpp
// includes it with QAT_ZMM_VNNI 0 (AVX-512BW: vpmaddubsw + vpmaddwd) and avx512vnni/qgemm.cpp with 1
// (vpdpbusd), each after its own intrin.h: every function lands in that ISA's namespace (qat::avx512,
// qat::avx512vnni, or their _simde twins) and is compiled with that ISA's flags only.
//
// Differences from ymm: panels of NR = 16 rows (one int32 lane per output column of a zmm), 32
// registers (tiles of up to 6 activation rows x 2 panels), and no vpsignb in AVX-512: the sign trick
// negates the activation bytes under the mask of negative weights instead (vpmovb2m + masked vpsubb;
// where w = 0 the product is 0 whatever the activation).
#pragma once

namespace qat::QAT_KERNEL_NS {
namespace {

#ifdef QAT_SIMDE
#define QAT_UNROLL  // SIMDe emulates each vector op in a loop: unrolling only multiplies compile time
#else
#define QAT_UNROLL _Pragma("GCC unroll 16")
#endif

constexpr int NR = 16;  // rows per panel = int32 lanes of a zmm
#if QAT_ZMM_VNNI
constexpr int kGemmMR = 6, kGemmNP = 2;  // M > 1 tile: 6 rows x 32 columns
#else
constexpr int kGemmMR = 4, kGemmNP = 2;  // (the sign trick needs registers for |w| and masks)
#endif
constexpr int kGemvNP = 4;  // M = 1 tile of gemm_s8_pc: 64 columns (q4_0 / q8_0 read one panel at a time)
constexpr int kS8Offset = QAT_ZMM_VNNI ? 128 : 0;  // what packing added to int8 weight codes

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

inline __m512i bcast4(const int8_t* p) {  // 4 activation bytes into every int32 lane
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline __m512 load_f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// q4_0 step: acc += u (u8 nibbles) . a (s8), in int16 lanes (BW) or int32 lanes (VNNI).
inline __m512i step_q4(__m512i acc, __m512i u, __m512i a) {
#if QAT_ZMM_VNNI
  return _mm512_dpbusd_epi32(acc, u, a);
#else
  return _mm512_add_epi16(acc, _mm512_maddubs_epi16(u, a));
#endif
}
inline __m512i widen_q4(__m512i acc) {
#if QAT_ZMM_VNNI
  return acc;
#else
  return _mm512_madd_epi16(acc, _mm512_set1_epi16(1));
#endif
}

// Where a block's int32 accumulators start and how they end: with VNNI the u8 operand added
// offset * sum(a), so they start at -offset * s (one broadcast instead of a subtraction per
// accumulator); the int16 steps start at 0 and subtract 8 * s after widening.
inline __m512i q4_start(int32_t s) {
#if QAT_ZMM_VNNI
  return _mm512_set1_epi32(-8 * s);
#else
  (void)s;
  return _mm512_setzero_si512();
#endif
}
inline __m512i q4_finish(__m512i acc, int32_t s) {
#if QAT_ZMM_VNNI
  (void)s;
  return acc;
#else
  return _mm512_sub_epi32(widen_q4(acc), _mm512_set1_epi32(8 * s));
#endif
}
inline __m512i s8_start(int32_t s) { return kS8Offset ? _mm512_set1_epi32(-kS8Offset * s) : _mm512_setzero_si512(); }

// Weights of one 4-k step as the int8 steps use them: VNNI the u8 codes (w + 128); BW |w| and the mask
// of negative w.
struct WStep {
  __m512i u;
#if !QAT_ZMM_VNNI
  __mmask64 neg;
#endif
};
inline WStep weight_step(__m512i w) {
#if QAT_ZMM_VNNI
  return WStep{w};
#else
  return WStep{_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
#endif
}
inline __m512i step_s8(__m512i acc, const WStep& w, __m512i a) {
#if QAT_ZMM_VNNI
  return _mm512_dpbusd_epi32(acc, w.u, a);
#else
  const __m512i sa = _mm512_mask_sub_epi8(a, w.neg, _mm512_setzero_si512(), a);  // a * sign(w)
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(w.u, sa), _mm512_set1_epi16(1)));
#endif
}

inline void store_cols(float* y, __m512 v, int64_t cols) {
  if (cols >= NR) return _mm512_storeu_ps(y, v);
  float t[NR];
  _mm512_storeu_ps(t, v);
  for (int64_t j = 0; j < cols; j++) y[j] = t[j];
}
inline void store_cols(int32_t* y, __m512i v, int64_t cols) {
  if (cols >= NR) return _mm512_storeu_si512(y, v);
  int32_t t[NR];
  _mm512_storeu_si512(t, v);
  for (int64_t j = 0; j < cols; j++) y[j] = t[j];
}

struct Args {  // as in qgemm_ymm.h
  const uint8_t* w;
  int64_t pb, nb, K, groups;
  const int8_t* q;
  const float* d;
  const int32_t* s;
  float* y;
  int32_t* y32;
  int64_t ldy;
};

struct Q4 {
  static constexpr int64_t kBlockBytes = NR * 18;
  // M = 1 reads one panel at a time: the weights are then one sequential stream, which from DRAM ran
  // 10-20% faster than kGemvNP panels read side by side (4 streams); in cache the two were equal.
  static constexpr int kGemvPanels = 1;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m512 acc[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) acc[i][p] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int64_t b = 0; b < g.nb; b++) {
      const uint8_t* blk = w + b * kBlockBytes;
      __m512i isum[MR][NP];
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m512i start = q4_start(g.s[(m + i) * g.groups + b]);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = start;
      }
      QAT_UNROLL
      for (int h = 0; h < 8; h++) {  // one nibble half at a time, as in qgemm_ymm.h
        const int v = h / 2, half = h % 2;
#if !QAT_ZMM_VNNI && !defined(QAT_SIMDE)
        // AVX-512BW: without this barrier clang 14 hoists all 32 activation broadcasts of the block, spills
        // them and reloads them as operands; with it the 4 x 2 q4_0 tile ran 15-27% faster (pinned A/B).
        asm volatile("" ::: "memory");
#endif
        __m512i u[NP];
        QAT_UNROLL
        for (int p = 0; p < NP; p++) {
          const __m512i raw = _mm512_loadu_si512(blk + p * g.pb + 2 * NR + 64 * v);
          u[p] = _mm512_and_si512(half ? _mm512_srli_epi16(raw, 4) : raw, low4);
        }
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const __m512i a = bcast4(q + i * g.K + 32 * b + 16 * half + 4 * v);
          QAT_UNROLL
          for (int p = 0; p < NP; p++) isum[i][p] = step_q4(isum[i][p], u[p], a);
        }
      }
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        const __m512 dw = load_f16x16(blk + p * g.pb);
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const int64_t gi = (m + i) * g.groups + b;
          const __m512i t = q4_finish(isum[i][p], g.s[gi]);
          acc[i][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(g.d[gi])), _mm512_cvtepi32_ps(t), acc[i][p]);
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
  static constexpr int kGemvPanels = 1;  // as Q4 (in cache (1, 768, 768) also ran 6.7 -> 4.2 us with VNNI)
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m512 acc[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) acc[i][p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < g.nb; b++) {
      const uint8_t* blk = w + b * kBlockBytes;
      __m512i isum[MR][NP];
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m512i start = s8_start(g.s[(m + i) * g.groups + b]);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = start;
      }
      QAT_UNROLL
      for (int t = 0; t < 8; t++) {
        WStep ws[NP];
        QAT_UNROLL
        for (int p = 0; p < NP; p++) ws[p] = weight_step(_mm512_loadu_si512(blk + p * g.pb + 2 * NR + 64 * t));
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const __m512i a = bcast4(q + i * g.K + 32 * b + 4 * t);
          QAT_UNROLL
          for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], ws[p], a);
        }
      }
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        const __m512 dw = load_f16x16(blk + p * g.pb);
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const int64_t gi = (m + i) * g.groups + b;
          const __m512i t = isum[i][p];
          acc[i][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(g.d[gi])), _mm512_cvtepi32_ps(t), acc[i][p]);
        }
      }
    }
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) store_cols(g.y + (m + i) * g.ldy + n + p * NR, acc[i][p], cols - p * NR);
  }
};

template <bool S32>
struct S8 {
  // M = 1 keeps kGemvNP panels per tile: with one, every activation broadcast feeds a single vpdpbusd
  // and the in-cache GEMV ran 1.2-1.8x slower; from DRAM the two were equal.
  static constexpr int kGemvPanels = kGemvNP;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    __m512i isum[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++) {
      const __m512i start = s8_start(g.s[m + i]);
      QAT_UNROLL
      for (int p = 0; p < NP; p++) isum[i][p] = start;
    }
    for (int64_t t = 0; t < g.K / 4; t++) {
      WStep ws[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) ws[p] = weight_step(_mm512_loadu_si512(w + p * g.pb + 4 * NR + 64 * t));
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m512i a = bcast4(q + i * g.K + 4 * t);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], ws[p], a);
      }
    }
    QAT_UNROLL
    for (int p = 0; p < NP; p++) {
      const __m512 dw = _mm512_loadu_ps(reinterpret_cast<const float*>(w + p * g.pb));
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const __m512i t = isum[i][p];
        const int64_t at = (m + i) * g.ldy + n + p * NR;
        if constexpr (S32)
          store_cols(g.y32 + at, t, cols - p * NR);
        else
          store_cols(g.y + at, _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(g.d[m + i])), _mm512_cvtepi32_ps(t)),
                     cols - p * NR);
      }
    }
  }
};

// Rows m.. (rem < MR of them) with a smaller tile.
template <class Kern, int MR, int NP>
void row_tail(const Args& g, int64_t n, int64_t m, int64_t rem, int64_t cols) {
  if constexpr (MR > 0) {
    if (rem == MR)
      Kern::template tile<MR, NP>(g, n, m, cols);
    else
      row_tail<Kern, MR - 1, NP>(g, n, m, rem, cols);
  }
}

template <class Kern, int NP>
void column_group(const Args& g, int64_t n, int64_t M, int64_t cols) {
  int64_t m = 0;
  for (; m + kGemmMR <= M; m += kGemmMR) Kern::template tile<kGemmMR, NP>(g, n, m, cols);
  if (m < M) row_tail<Kern, kGemmMR - 1, NP>(g, n, m, M - m, cols);
}

// M > 1: kGemmNP panels at a time (they stay in L1 while every row passes over them).
template <class Kern>
void run_gemm(const Args& g, int64_t n0, int64_t n1, int64_t M) {
  int64_t n = n0;
  for (; n1 - n > (kGemmNP - 1) * NR; n += kGemmNP * NR) column_group<Kern, kGemmNP>(g, n, M, n1 - n);
  for (; n < n1; n += NR) column_group<Kern, 1>(g, n, M, n1 - n);
}

// M = 1: Kern::kGemvPanels panels per tile, streaming the weights once.
template <class Kern>
void run_gemv(const Args& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  constexpr int NP = Kern::kGemvPanels;
  for (; n1 - n > (NP - 1) * NR; n += NP * NR) Kern::template tile<1, NP>(g, n, 0, n1 - n);
  for (; n < n1; n += NR) Kern::template tile<1, 1>(g, n, 0, n1 - n);
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
