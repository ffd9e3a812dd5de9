// matmul and linear: forward and backward through OpenBLAS sgemm (FP32 training).
//   forward   C = A B                  linear: y = x W^T
//   backward  dA += dC B^T, dB += A^T dC      dx += dy W,  dW += dy^T x
// Accumulating straight into the gradient buffers (beta = 1) is the `+=` of autograd.
// Threads: OpenBLAS 0.3.21's own threading gives different bits at 1 and 2 threads (measured: 3843 of
// 24576 outputs of a 256x96x200 sgemm differ), so OpenBLAS runs single-threaded and sgemm() below
// splits C into panels whose size depends on the shape only, one OpenBLAS call per panel, spread over
// OpenMP threads: the same bits at any thread count (tests/test_determinism.cpp), and as fast as
// OpenBLAS's own threading on 2 cores. The fixed-order GEMM that serving shares lives in kernels/.
#include <cblas.h>

#include <algorithm>

#include "src/ops/blas.h"
#include "src/core/parallel.h"
#include "src/ops/ops.h"
#include "src/util/profile.h"

namespace qat {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  static const bool blas_ready = (blas_single_threaded(), true);
  (void)blas_ready;
  // Panels along the larger of M and N: about 8 of them, 64 to 256 rows/columns each, a multiple of 16.
  bool split_rows = M >= N;
  int64_t total = split_rows ? M : N;
  int64_t panel = std::clamp<int64_t>((total / 8 + 15) / 16 * 16, 64, 256);
  int64_t panels = (total + panel - 1) / panel;
  auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
#pragma omp parallel for schedule(static) if (panels > 1 && M * N * K > 65536)
  for (int64_t p = 0; p < panels; p++) {
    int64_t s = p * panel, n = std::min(panel, total - s);
    if (split_rows)  // rows s..s+n of op(A) and C
      cblas_sgemm(CblasRowMajor, ta, tb, int(n), int(N), int(K), alpha, trans_a ? A + s : A + s * lda, int(lda), B,
                  int(ldb), beta, C + s * ldc, int(ldc));
    else  // columns s..s+n of op(B) and C
      cblas_sgemm(CblasRowMajor, ta, tb, int(M), int(n), int(K), alpha, A, int(lda), trans_b ? B + s * ldb : B + s,
                  int(ldb), beta, C + s, int(ldc));
  }
}

void sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  static const bool blas_ready = (blas_single_threaded(), true);
  (void)blas_ready;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(M),
              int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void sgemv(int64_t N, int64_t K, const float* A, const float* x, float* y) {
  static const bool blas_ready = (blas_single_threaded(), true);
  (void)blas_ready;
  const int64_t panel = 256, panels = (N + panel - 1) / panel;
#pragma omp parallel for schedule(static) if (panels > 1 && N * K > 65536)
  for (int64_t p = 0; p < panels; p++) {
    int64_t n = std::min(panel, N - p * panel);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(K), 1.0f, A + p * panel * K, int(K), x, 1, 0.0f, y + p * panel, 1);
  }
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  QAT_CHECK(a_in.ndim() >= 2 && b_in.ndim() >= 2, "matmul: needs 2-d or batched operands, got ",
            a_in.shape_string(), " and ", b_in.shape_string());
  Tensor a = contiguous(a_in), b = contiguous(b_in);
  int64_t M = a.dim(-2), K = a.dim(-1), N = b.dim(-1);
  if (b.dim(-2) != K) shape_error("matmul", a.shape(), b.shape());
  Shape batch(a.shape().begin(), a.shape().end() - 2);
  bool b_shared = b.ndim() == 2;  // one B for every batch element
  if (!b_shared && Shape(b.shape().begin(), b.shape().end() - 2) != batch) shape_error("matmul", a.shape(), b.shape());
  int64_t nb = shape_numel(batch);
  const double mm_flops = 2.0 * double(nb * M * N * K), mm_bytes = 4.0 * double(nb * (M * K + M * N) + (b_shared ? 1 : nb) * K * N);
  QAT_PROF("matmul", forward, mm_flops, mm_bytes);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape);
  for (int64_t i = 0; i < nb; i++)
    sgemm(false, false, M, N, K, 1.0f, a.f32() + i * M * K, K, b.f32() + (b_shared ? 0 : i * K * N), N, 0.0f,
          out.f32() + i * M * N, N);
  record(out, "matmul", {a, b}, [a, b, M, N, K, nb, b_shared](const Tensor&, const Tensor& dout) {
    const float* dc = dout.f32();
    if (Tensor da = grad_buffer(a); da.defined())
      for (int64_t i = 0; i < nb; i++)  // dA (M, K) += dC (M, N) B^T
        sgemm(false, true, M, K, N, 1.0f, dc + i * M * N, N, b.f32() + (b_shared ? 0 : i * K * N), N, 1.0f,
              da.f32() + i * M * K, K);
    if (Tensor db = grad_buffer(b); db.defined())
      for (int64_t i = 0; i < nb; i++)  // dB (K, N) += A^T (K, M) dC (M, N), batches in order
        sgemm(true, false, K, N, M, 1.0f, a.f32() + i * M * K, K, dc + i * M * N, N, 1.0f,
              db.f32() + (b_shared ? 0 : i * K * N), N);
  });
  set_backward_cost(out, 2 * mm_flops, 2 * mm_bytes);
  return out;
}

Tensor linear(const Tensor& x_in, const Tensor& w_in) {
  Tensor x = contiguous(x_in), w = contiguous(w_in);
  QAT_CHECK(w.ndim() == 2 && x.ndim() >= 1, "linear: weight must be (N, K), got ", w.shape_string());
  int64_t K = x.dim(-1), N = w.dim(0);
  if (w.dim(1) != K) shape_error("linear", x.shape(), w.shape());
  int64_t R = x.numel() / (K ? K : 1);  // rows: every leading index of x
  const double flops = 2.0 * double(R * N * K), bytes = 4.0 * double(R * K + N * K + R * N);
  QAT_PROF("linear", forward, flops, bytes);
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor out = Tensor::empty(out_shape);
  sgemm(false, true, R, N, K, 1.0f, x.f32(), K, w.f32(), K, 0.0f, out.f32(), N);  // y (R, N) = x (R, K) W^T
  record(out, "linear", {x, w}, [x, w, R, N, K](const Tensor&, const Tensor& dout) {
    if (Tensor dx = grad_buffer(x); dx.defined())  // dx (R, K) += dy (R, N) W (N, K)
      sgemm(false, false, R, K, N, 1.0f, dout.f32(), N, w.f32(), K, 1.0f, dx.f32(), K);
    if (Tensor dw = grad_buffer(w); dw.defined())  // dW (N, K) += dy^T (N, R) x (R, K)
      sgemm(true, false, N, K, R, 1.0f, dout.f32(), N, x.f32(), K, 1.0f, dw.f32(), K);
  });
  set_backward_cost(out, 2 * flops, 2 * bytes);
  return out;
}

}  // namespace qat
