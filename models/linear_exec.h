// How one linear layer y (M, N) = x (M, K) W^T runs at inference: f32 weights through OpenBLAS, and
// (serving issue) packed integer weights through kernels/, or the oneDNN / OpenBLAS comparison
// backends. One small interface because the KV-cache decode (decode.h) and the QAT training forward
// must call the very same object for the same layer. Read next: decode.h.
#pragma once
#include <cstdint>
#include <memory>

#include "kernels/qgemm.h"
#include "src/core/tensor.h"

namespace qat {

class LinearExec {
 public:
  virtual ~LinearExec() = default;
  // x (M, K) row-major -> y (M, N) row-major. Threads split N (never K).
  virtual void forward(const float* x, int64_t M, float* y) const = 0;
  virtual int64_t rows() const = 0;     // N
  virtual int64_t cols() const = 0;     // K
  virtual int64_t weight_bytes() const = 0;
};

// f32 weights w (N, K) (kept alive by the tensor) through OpenBLAS sgemm.
std::unique_ptr<LinearExec> make_f32_blas_linear(const Tensor& w);
// f32 weights through the project's fixed-order kernel (kernels/qgemm.h gemm_f32): what a QAT model's
// f32 layers run in training and serving alike.
std::unique_ptr<LinearExec> make_f32_fixed_linear(const Tensor& w);
// Integer weights: codes (N, K) and scales (N, K/32) (q4_0, q8_0) or (N) (s8_pc), packed once for the
// active kernel table; forward quantizes x by the reference rule and runs the integer kernel.
std::unique_ptr<LinearExec> make_quant_linear(WFormat format, const int8_t* codes, const float* scales,
                                              int64_t N, int64_t K);

}  // namespace qat
