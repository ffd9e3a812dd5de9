// LinearExec implementations (see linear_exec.h).
#include "models/linear_exec.h"

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
}  // namespace

std::unique_ptr<LinearExec> make_f32_blas_linear(const Tensor& w) { return std::make_unique<F32BlasLinear>(w); }

}  // namespace qat
