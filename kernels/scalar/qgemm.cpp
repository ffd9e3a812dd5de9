// The integer GEMMs, the spec: the reduction orders of kernels.h written as plain loops over canonical
// blocks (a scalar panel has NR = 1 row, which pack.h makes exactly the row's q4_0 / q8_0 blocks; a tq
// row is blocks of 32 k carrying their 256-block's scale).
// y[m][n]: acc = 0; for each block b: acc = fmaf(dw * da, (float)isum_b, acc).
// Read next: kernels/qgemm_tiles.h, the same computation NR columns at a time (8 with the ymm steps of
// kernels/avx2/qgemm_ymm.h).
#include <cmath>
#include <cstring>

#include "kernels/scalar/scalar.h"
#include "src/core/dtype.h"
#include "kernels/ref/quant.h"

namespace qat::scalar {

namespace {

int32_t dot(const int8_t* w, const int8_t* a, int64_t n) {
  int32_t s = 0;
  for (int64_t j = 0; j < n; j++) s += int32_t(w[j]) * int32_t(a[j]);
  return s;
}

// The codes of one q4_0 / q8_0 block (value = code * d).
void block_codes(const BlockQ4_0& blk, int8_t* q) {
  for (int j = 0; j < QK / 2; j++) {
    q[j] = int8_t((blk.qs[j] & 0x0f) - 8);
    q[j + QK / 2] = int8_t((blk.qs[j] >> 4) - 8);
  }
}
void block_codes(const BlockQ8_0& blk, int8_t* q) { std::memcpy(q, blk.qs, QK); }

// A tq block of 32 k in a scalar panel (kernels/pack.h, NR = 1): the f16 scale of its 256-block, then
// 8 bytes; bits 2l of byte 4v + t hold k = 4v + 8l + t as code + 1.
struct BlockTQ32 {
  uint16_t d;
  uint8_t qs[8];
};
static_assert(sizeof(BlockTQ32) == 10, "scalar tq panel block");
void block_codes(const BlockTQ32& blk, int8_t* q) {
  for (int v = 0; v < 2; v++)
    for (int t = 0; t < 4; t++)
      for (int l = 0; l < 4; l++) q[4 * v + 8 * l + t] = int8_t(((blk.qs[4 * v + t] >> (2 * l)) & 3) - 1);
}

// x (M, K) q8_0 activations (q, d per block) x blocks W (N, K/32) -> y (M, ldy), columns [n0, n1).
template <class Block>
void gemm_blocks(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                 int64_t M, float* y, int64_t ldy) {
  const int64_t nb = K / QK;
  const Block* W = reinterpret_cast<const Block*>(w);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = n0; n < n1; n++) {
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; b++) {
        const Block& blk = W[n * nb + b];
        int8_t wq[QK];
        block_codes(blk, wq);
        const int32_t isum = dot(wq, q + m * K + b * QK, QK);
        acc = std::fma(f16_to_f32(blk.d) * d[m * nb + b], float(isum), acc);
      }
      y[m * ldy + n] = acc;
    }
}

// s8_pc panel of one row: f32 scale, then the K codes.
const int8_t* s8_row(const uint8_t* w, int64_t n, int64_t K, float* dw) {
  const uint8_t* p = w + n * (4 + K);
  std::memcpy(dw, p, 4);
  return reinterpret_cast<const int8_t*>(p + 4);
}

}  // namespace

void gemm_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t*, int64_t M, float* y, int64_t ldy) {
  gemm_blocks<BlockQ4_0>(w, n0, n1, K, q, d, M, y, ldy);
}
void gemm_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t*, int64_t M, float* y, int64_t ldy) {
  gemm_blocks<BlockQ8_0>(w, n0, n1, K, q, d, M, y, ldy);
}

void gemm_tq(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
             const int32_t*, int64_t M, float* y, int64_t ldy) {
  gemm_blocks<BlockTQ32>(w, n0, n1, K, q, d, M, y, ldy);
}

void gemm_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t*, int64_t M, float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = n0; n < n1; n++) {
      float dw;
      const int8_t* wq = s8_row(w, n, K, &dw);
      y[m * ldy + n] = (dw * d[m]) * float(dot(wq, q + m * K, K));
    }
}

void gemm_s8_pc_s32(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const int32_t*,
                    int64_t M, int32_t* y, int64_t ldy) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = n0; n < n1; n++) {
      float dw;
      y[m * ldy + n] = dot(s8_row(w, n, K, &dw), q + m * K, K);
    }
}

// M = 1: the same loops (the scalar table has no separate fast path).
void gemv_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y) {
  gemm_q4_0(w, n0, n1, K, q, d, s, 1, y, 0);
}
void gemv_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y) {
  gemm_q8_0(w, n0, n1, K, q, d, s, 1, y, 0);
}
void gemv_tq(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
             const int32_t* s, float* y) {
  gemm_tq(w, n0, n1, K, q, d, s, 1, y, 0);
}
void gemv_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t* s, float* y) {
  gemm_s8_pc(w, n0, n1, K, q, d, s, 1, y, 0);
}

}  // namespace qat::scalar
