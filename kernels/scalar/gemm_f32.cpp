// The fixed-order f32 GEMM, the spec: every output is dot_f32 (kernels/ref/order.h) of a row of x and a
// row of w, so a QAT model's f32 matmuls give the same bits in training, in serving and in any ISA.
#include "kernels/scalar/scalar.h"
#include "kernels/ref/order.h"

namespace qat::scalar {

void gemv_f32(const float* x, const float* w, int64_t ldw, int64_t N, int64_t K, float* y) {
  for (int64_t n = 0; n < N; n++) y[n] = dot_f32(x, w + n * ldw, K);
}

void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; m++) gemv_f32(x + m * ldx, w, ldw, N, K, y + m * ldy);
}

}  // namespace qat::scalar
