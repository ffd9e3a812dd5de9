// The one place qat calls OpenBLAS: row-major C = alpha * op(A) op(B) + beta * C.
// op(A) is (M, K), op(B) is (K, N); lda/ldb/ldc are row strides of the stored matrices.
#pragma once
#include <cstdint>

namespace qat {

// Threads split C into shape-determined panels (matmul.cpp says why).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same on the calling thread only, for callers that already run one task per thread.
void sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y (N) = A (N, K) x (K) with OpenBLAS sgemv, rows split over threads in shape-determined panels.
void sgemv(int64_t N, int64_t K, const float* A, const float* x, float* y);

}  // namespace qat
