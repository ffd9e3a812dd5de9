// The integer GEMM tiles of the SIMD tables, one source for every vector width: the tile loops, the
// M > 1 and M = 1 drivers and the entry points of kernels/qgemm_entries.inc. Included at the end of
// avx2/qgemm_ymm.h (ymm, NR = 8) and avx512/qgemm_zmm.h (zmm, NR = 16), after each has defined its
// vector layer; those are included by one kernels/<isa>/qgemm.cpp each, after the ISA's intrin.h, so
// every function below lands in that ISA's namespace and is compiled with that ISA's flags only.
//
// Lane layout (panels of kernels/pack.h, NR rows): a vector of 4 * NR bytes holds 4 consecutive k of
// each of the NR rows, so int32 lane r of its product with a broadcast of 4 activation bytes is row r's
// dot product over those 4 k. In scalar pseudocode, for one activation row and one panel:
//     acc[r] = 0                                                    r = 0..NR-1, one output column each
//     for each block b:  isum[r] = 0
//         for each 4-k step t:  isum[r] += sum_{u<4} w[r][32b+4t+u] * a[32b+4t+u]
//         acc[r] = fmaf(dw[r][b] * da[b], (float)isum[r], acc[r])   (the order of kernels.h)
// The products of a block are summed in another order than the scalar loop (exact for integers); the
// f32 steps are the scalar ones, one output per lane, so results are bit-identical to kernels/scalar.
//
// Exactness of the integer steps (the step functions of each width):
//  q4_0: nibbles u = code + 8 in [0, 15] (u8) times activation codes (s8). vpmaddubsw pairs are at
//        most 2*15*127 = 3810 and 8 of them per int16 lane per block at most 30480 < 32767. The sum is
//        isum + 8*sum(a): 8 * s (the block's code sum, from the activation quantizer) is subtracted.
//  tq:   2-bit fields u = code + 1 in [0, 2], the same steps as q4_0: pairs at most 2*2*127 = 508, 8 per
//        int16 lane per block at most 4064; 1 * s is subtracted.
//  q8_0, s8_pc without VNNI (the sign trick): vpmaddubsw(|w|, a * sign(w)) gives pairs of w*a; with
//        codes in [-127, 127] a pair is at most 2*127*127 = 32258, so nothing saturates (a -128 would
//        break it: the quantizer never makes one). vpmaddwd by 1 widens the pairs to int32.
//  q8_0, s8_pc with VNNI: weights are packed as w + 128 (u8); vpdpbusd accumulates (w+128)*a in int32
//        without saturation, and 128 * s is subtracted.
//
// The vector layer each width defines before including this file (all in the anonymous namespace):
//   NR                    rows per panel = int32 lanes of a vector (a vector holds 4 * NR bytes)
//   kGemmMR, kGemmNP      the M > 1 tile: activation rows x panels
//   kGemvNP               panels per M = 1 tile of s8_pc (q4_0 / q8_0 read one panel at a time)
//   VecF, VecI            the f32 and integer vector types
//   zero_f, load_i, load_f16 (NR f16 scales), load_f32, store_f, store_i (unaligned)
//   bcast4                4 activation bytes into every int32 lane
//   low4, nibbles         the q4_0 weights of one nibble half as u8 lanes
//   q4_start, step_q4, q4_finish, q4_half_fence    a q4_0 block's integer sum (u8 weights u = code + off,
//                                                  q4_start / q4_finish given os = off * s)
//   low2, crumbs          the tq weights of one 2-bit field as u8 lanes (then the q4_0 steps, off = 1)
//   WStep, weight_step, s8_start, step_s8           the int8 (q8_0, s8_pc) integer sum
//   fma_scaled(dw, d, isum, acc) = acc + (dw * d) * (float)isum, one rounding (vfmadd)
//   scaled(dw, d, isum)          = (dw * d) * (float)isum
// Read next: avx2/qgemm_ymm.h (the ymm steps), then avx512/qgemm_zmm.h.
#pragma once
#include <cstdint>

#ifndef QAT_KERNEL_NS
#error "kernels/qgemm_tiles.h is included by a width header inside an ISA's namespace only"
#endif

namespace qat::QAT_KERNEL_NS {
namespace {

// Every loop over tile rows, panels or steps is unrolled, so the accumulator arrays live in registers.
#ifdef QAT_SIMDE
#define QAT_UNROLL  // SIMDe emulates each vector op in a loop: unrolling only multiplies compile time
#else
#define QAT_UNROLL _Pragma("GCC unroll 16")
#endif

constexpr int64_t kVecBytes = 4 * NR;

inline void store_cols(float* y, VecF v, int64_t cols) {
  if (cols >= NR) return store_f(y, v);
  float t[NR];
  store_f(t, v);
  for (int64_t j = 0; j < cols; j++) y[j] = t[j];
}
inline void store_cols(int32_t* y, VecI v, int64_t cols) {
  if (cols >= NR) return store_i(y, v);
  int32_t t[NR];
  store_i(t, v);
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

// Tiles: MR activation rows x NP panels (NP * NR output columns starting at column n), whole K.
// `cols` = valid columns from n (the last panel may be partly padding).
//
// q4_0 and q8_0 (blocks of 32 k): per block, each tile row's int32 sums start at Fmt::start, take the
// block's 8 steps of 4 k (Fmt::steps), end at Fmt::finish, and enter the f32 accumulator with one fmadd.
// M = 1 reads one panel at a time: the weights are then one sequential stream. With panels side by side
// (sharing each activation broadcast) the GEMVs read DRAM slower (ymm, 1 thread: q4_0 23-25 GB/s against
// 12.5-14, q8_0 26-27 against 15-18; zmm 10-20% faster than 4 panels; zmm q8_0 with VNNI in cache
// (1, 768, 768) 4.2 us against 6.7); in cache otherwise within 10%.
template <class Fmt>
struct Blocks {
  static constexpr int64_t kBlockBytes = Fmt::kBlockBytes;
  static constexpr int kGemvPanels = 1;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    VecF acc[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) acc[i][p] = zero_f();
    for (int64_t b = 0; b < g.nb; b++) {
      const uint8_t* blk = w + b * kBlockBytes;
      VecI isum[MR][NP];
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const VecI start = Fmt::start(g.s[(m + i) * g.groups + b]);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = start;
      }
      Fmt::template steps<MR, NP>(g, isum, blk, q, b);
      QAT_UNROLL
      for (int p = 0; p < NP; p++) {
        const VecF dw = load_f16(blk + p * g.pb);
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const int64_t gi = (m + i) * g.groups + b;
          const VecI t = Fmt::finish(isum[i][p], g.s[gi]);
          acc[i][p] = fma_scaled(dw, g.d[gi], t, acc[i][p]);
        }
      }
    }
    QAT_UNROLL
    for (int i = 0; i < MR; i++)
      QAT_UNROLL
      for (int p = 0; p < NP; p++) store_cols(g.y + (m + i) * g.ldy + n + p * NR, acc[i][p], cols - p * NR);
  }
};

// The steps of block b: isum[i][p] += the block's weights (panel p at blk + p * g.pb, past its NR f16
// scales) . the block's 32 codes of activation row i (at q + i * g.K + 32 * b).
struct Q4Fmt {  // NR f16 scales, then 4 groups v of 4 * NR bytes: low nibbles k = 4v.., high k = 16 + 4v..
  static constexpr int64_t kBlockBytes = NR * 18;
  static VecI start(int32_t s) { return q4_start(8 * s); }
  static VecI finish(VecI isum, int32_t s) { return q4_finish(isum, 8 * s); }
  template <int MR, int NP>
  static void steps(const Args& g, VecI (&isum)[MR][NP], const uint8_t* blk, const int8_t* q, int64_t b) {
    const VecI mask = low4();
    // One nibble half at a time: only one unpacked weight vector per panel is live, which keeps a 4-row
    // ymm tile within 16 registers.
    QAT_UNROLL
    for (int h = 0; h < 8; h++) {
      const int v = h / 2, half = h % 2;
      q4_half_fence();
      VecI u[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) u[p] = nibbles(load_i(blk + p * g.pb + 2 * NR + kVecBytes * v), half, mask);
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const VecI a = bcast4(q + i * g.K + 32 * b + 16 * half + 4 * v);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = step_q4(isum[i][p], u[p], a);
      }
    }
  }
};

struct Q8Fmt {  // NR f16 scales, then 8 groups t of 4 * NR bytes: k = 4t..4t+3
  static constexpr int64_t kBlockBytes = NR * 34;
  static VecI start(int32_t s) { return s8_start(s); }
  static VecI finish(VecI isum, int32_t) { return isum; }
  template <int MR, int NP>
  static void steps(const Args& g, VecI (&isum)[MR][NP], const uint8_t* blk, const int8_t* q, int64_t b) {
    QAT_UNROLL
    for (int t = 0; t < 8; t++) {
      WStep ws[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) ws[p] = weight_step(load_i(blk + p * g.pb + 2 * NR + kVecBytes * t));
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const VecI a = bcast4(q + i * g.K + 32 * b + 4 * t);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], ws[p], a);
      }
    }
  }
};

// NR f16 scales (the 256-block's, repeated in each of its 8 blocks), then 2 groups v of 4 * NR bytes:
// the 2-bit field l of byte (v, r, t) is row r's k = 4v + 8l + t, so field l of group v is 4 consecutive
// k of every row, multiplied by the 4 activation codes from 4v + 8l.
struct TQFmt {
  static constexpr int64_t kBlockBytes = NR * 10;
  static VecI start(int32_t s) { return q4_start(s); }
  static VecI finish(VecI isum, int32_t s) { return q4_finish(isum, s); }
  template <int MR, int NP>
  static void steps(const Args& g, VecI (&isum)[MR][NP], const uint8_t* blk, const int8_t* q, int64_t b) {
    const VecI mask = low2();
    QAT_UNROLL
    for (int v = 0; v < 2; v++) {
      VecI raw[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) raw[p] = load_i(blk + p * g.pb + 2 * NR + kVecBytes * v);
      QAT_UNROLL
      for (int l = 0; l < 4; l++) {
        q4_half_fence();
        VecI u[NP];
        QAT_UNROLL
        for (int p = 0; p < NP; p++) u[p] = crumbs(raw[p], l, mask);
        QAT_UNROLL
        for (int i = 0; i < MR; i++) {
          const VecI a = bcast4(q + i * g.K + 32 * b + 4 * v + 8 * l);
          QAT_UNROLL
          for (int p = 0; p < NP; p++) isum[i][p] = step_q4(isum[i][p], u[p], a);
        }
      }
    }
  }
};

using Q4 = Blocks<Q4Fmt>;
using Q8 = Blocks<Q8Fmt>;
using TQ = Blocks<TQFmt>;

// s8_pc: one int32 sum over all of K, then y = (dw * da) * (float)isum, or the int32 sum itself (S32).
template <bool S32>
struct S8 {
  static constexpr int kGemvPanels = kGemvNP;
  template <int MR, int NP>
  static void tile(const Args& g, int64_t n, int64_t m, int64_t cols) {
    const uint8_t* w = g.w + n / NR * g.pb;
    const int8_t* q = g.q + m * g.K;
    VecI isum[MR][NP];
    QAT_UNROLL
    for (int i = 0; i < MR; i++) {
      const VecI start = s8_start(g.s[m + i]);
      QAT_UNROLL
      for (int p = 0; p < NP; p++) isum[i][p] = start;
    }
    for (int64_t t = 0; t < g.K / 4; t++) {
      WStep ws[NP];
      QAT_UNROLL
      for (int p = 0; p < NP; p++) ws[p] = weight_step(load_i(w + p * g.pb + 4 * NR + kVecBytes * t));
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const VecI a = bcast4(q + i * g.K + 4 * t);
        QAT_UNROLL
        for (int p = 0; p < NP; p++) isum[i][p] = step_s8(isum[i][p], ws[p], a);
      }
    }
    QAT_UNROLL
    for (int p = 0; p < NP; p++) {
      const VecF dw = load_f32(w + p * g.pb);
      QAT_UNROLL
      for (int i = 0; i < MR; i++) {
        const int64_t at = (m + i) * g.ldy + n + p * NR;
        if constexpr (S32)
          store_cols(g.y32 + at, isum[i][p], cols - p * NR);
        else
          store_cols(g.y + at, scaled(dw, g.d[m + i], isum[i][p]), cols - p * NR);
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

// NP panels from column n, every activation row passing over them (they stay in L1 meanwhile).
template <class Kern, int NP>
void column_group(const Args& g, int64_t n, int64_t M, int64_t cols) {
  int64_t m = 0;
  for (; m + kGemmMR <= M; m += kGemmMR) Kern::template tile<kGemmMR, NP>(g, n, m, cols);
  if (m < M) row_tail<Kern, kGemmMR - 1, NP>(g, n, m, M - m, cols);
}

// M > 1: kGemmNP panels at a time, then single panels for what is left.
template <class Kern>
void run_gemm(const Args& g, int64_t n0, int64_t n1, int64_t M) {
  int64_t n = n0;
  if constexpr (kGemmNP > 1)
    for (; n1 - n > (kGemmNP - 1) * NR; n += kGemmNP * NR) column_group<Kern, kGemmNP>(g, n, M, n1 - n);
  for (; n < n1; n += NR) column_group<Kern, 1>(g, n, M, n1 - n);
}

// M = 1: Kern::kGemvPanels panels per tile, streaming the weights once.
template <class Kern>
void run_gemv(const Args& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
  constexpr int NP = Kern::kGemvPanels;
  if constexpr (NP > 1)
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
void gemm_tq(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
             const int32_t* s, int64_t M, float* y, int64_t ldy) {
  run_gemm<TQ>(make_args(w, K / 32 * TQ::kBlockBytes, K, K / 32, q, d, s, y, nullptr, ldy), n0, n1, M);
}
void gemv_tq(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
             const int32_t* s, float* y) {
  run_gemv<TQ>(make_args(w, K / 32 * TQ::kBlockBytes, K, K / 32, q, d, s, y, nullptr, 0), n0, n1);
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
