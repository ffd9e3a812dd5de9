// AVX2 fixed-order f32 GEMM, bit-identical to dot_f32 (kernels/ref/order.h) per output: one ymm holds
// the 8 interleaved partial sums of one (m, n) pair, lane j summing x[k] * w[k] for k % 8 == j with a
// separate multiply and add (no FMA), the tail updating lanes below K % 8 only; then
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)) = (lo half + hi half), then pairs, as combine8() (lanes.h) does.
#include "kernels/avx2/intrin.h"
#include "kernels/avx2/lanes.h"

namespace qat::QAT_KERNEL_NS {
namespace {

#define QAT_UNROLL _Pragma("GCC unroll 16")  // tile arrays must live in registers

// y (MR, ldy) columns 0..NN-1 = x (MR, ldx) w (NN, ldw)^T over K.
template <int MR, int NN>
void tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* y, int64_t ldy) {
  __m256 acc[MR][NN];
  QAT_UNROLL
  for (int i = 0; i < MR; i++)
    QAT_UNROLL
    for (int j = 0; j < NN; j++) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NN];
    QAT_UNROLL
    for (int j = 0; j < NN; j++) wv[j] = _mm256_loadu_ps(w + j * ldw + k);
    QAT_UNROLL
    for (int i = 0; i < MR; i++) {
      const __m256 xv = _mm256_loadu_ps(x + i * ldx + k);
      QAT_UNROLL
      for (int j = 0; j < NN; j++) acc[i][j] = _mm256_add_ps(acc[i][j], _mm256_mul_ps(xv, wv[j]));
    }
  }
  if (k < K) {  // lanes below K - k take one more product; the others keep their value (and zero sign)
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(K - k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 fmask = _mm256_castsi256_ps(mask);
    QAT_UNROLL
    for (int i = 0; i < MR; i++) {
      const __m256 xv = _mm256_maskload_ps(x + i * ldx + k, mask);
      QAT_UNROLL
      for (int j = 0; j < NN; j++) {
        const __m256 p = _mm256_mul_ps(xv, _mm256_maskload_ps(w + j * ldw + k, mask));
        acc[i][j] = _mm256_blendv_ps(acc[i][j], _mm256_add_ps(acc[i][j], p), fmask);
      }
    }
  }
  QAT_UNROLL
  for (int i = 0; i < MR; i++)
    QAT_UNROLL
    for (int j = 0; j < NN; j++) y[i * ldy + j] = combine8(acc[i][j]);
}

template <int MR>
void row_tiles(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t N, int64_t K, float* y,
               int64_t ldy) {
  int64_t n = 0;
  for (; n + 4 <= N; n += 4) tile<MR, 4>(x, ldx, w + n * ldw, ldw, K, y + n, ldy);
  for (; n < N; n++) tile<MR, 1>(x, ldx, w + n * ldw, ldw, K, y + n, ldy);
}

}  // namespace

void gemv_f32(const float* x, const float* w, int64_t ldw, int64_t N, int64_t K, float* y) {
  row_tiles<1>(x, 0, w, ldw, N, K, y, 0);
}

// Columns in groups of 16 (their weight rows stay in cache) over every row, 2 rows x 4 columns a tile.
void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy) {
  for (int64_t n0 = 0; n0 < N; n0 += 16) {
    const int64_t nn = N - n0 < 16 ? N - n0 : 16;
    int64_t m = 0;
    for (; m + 2 <= M; m += 2) row_tiles<2>(x + m * ldx, ldx, w + n0 * ldw, ldw, nn, K, y + m * ldy + n0, ldy);
    if (m < M) row_tiles<1>(x + m * ldx, ldx, w + n0 * ldw, ldw, nn, K, y + m * ldy + n0, ldy);
  }
}

}  // namespace qat::QAT_KERNEL_NS
