// LinearExec implementations (see linear_exec.h).
#include "models/linear_exec.h"

#include "kernels/qgemm.h"
#include "src/ops/blas.h"

namespace qat {

namespace {
class F32BlasLinear : public LinearExec {
 public:
  explicit F32BlasLinear(const Tensor& w) : w_(w.contiguous()) {
    QAT_CHECK(w_.ndim() == 2 && w_.dtype() == DType::f32, "f32 linear: weight must be f32 (N, K), got ", w_.shape_string());
  }
  void forward(const float* x, int64_t M, float* y) const override {
    sgemm(false, true, M, rows(), cols(), 1.0f, x, cols(), w_.f32(), cols(), 0.0f, y, rows());
  }
  int64_t rows() const override { return w_.dim(0); }
  int64_t cols() const override { return w_.dim(1); }
  int64_t weight_bytes() const override { return int64_t(w_.nbytes()); }

 private:
  Tensor w_;
};
class F32FixedLinear : public LinearExec {
 public:
  explicit F32FixedLinear(const Tensor& w) : w_(w.contiguous()) {
    QAT_CHECK(w_.ndim() == 2 && w_.dtype() == DType::f32, "f32 linear: weight must be f32 (N, K), got ", w_.shape_string());
  }
  void forward(const float* x, int64_t M, float* y) const override {
    gemm_f32(x, cols(), w_.f32(), cols(), M, rows(), cols(), y, rows());
  }
  int64_t rows() const override { return w_.dim(0); }
  int64_t cols() const override { return w_.dim(1); }
  int64_t weight_bytes() const override { return int64_t(w_.nbytes()); }

 private:
  Tensor w_;
};

class QuantLinear : public LinearExec {
 public:
  QuantLinear(WFormat f, const int8_t* codes, const float* scales, int64_t N, int64_t K) {
    pack_weights(f, codes, scales, N, K, &packed_);
    bytes_ = f == WFormat::q4_0 ? N * K / 32 * 18 : f == WFormat::q8_0 ? N * K / 32 * 34 : N * K + N * 4;
  }
  void forward(const float* x, int64_t M, float* y) const override { qgemm(packed_, x, M, y); }
  int64_t rows() const override { return packed_.N; }
  int64_t cols() const override { return packed_.K; }
  int64_t weight_bytes() const override { return bytes_; }  // the canonical storage (GGUF) size

 private:
  PackedWeights packed_;
  int64_t bytes_;
};
}  // namespace

std::unique_ptr<LinearExec> make_f32_blas_linear(const Tensor& w) { return std::make_unique<F32BlasLinear>(w); }
std::unique_ptr<LinearExec> make_f32_fixed_linear(const Tensor& w) { return std::make_unique<F32FixedLinear>(w); }
std::unique_ptr<LinearExec> make_quant_linear(WFormat format, const int8_t* codes, const float* scales, int64_t N,
                                              int64_t K) {
  return std::make_unique<QuantLinear>(format, codes, scales, N, K);
}

}  // namespace qat
