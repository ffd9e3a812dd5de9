// One linear layer y (M, N) = x (M, K) W (N, K)^T, whatever holds W and whoever runs it. The KV-cache
// decode (models/decode.h), the served model and the benchmarks all call this one interface, so for a
// QAT model the served layer is the very object the bit-identity tests check. Implementations:
//   native    f32 W: the fixed-order gemm_f32 (what a QAT model's f32 layers run in training too);
//             integer W (q4_0, q8_0, s8_pc): packed once for a kernel table, x quantized by the
//             reference rule, our integer kernels (kernels/qgemm.h): exact, bit-identical to kernels/scalar.
//   onednn    oneDNN's int8 matmul, for comparison: per-channel int8 weights reordered to the layout the
//             primitive asks for (once per M, on the first call with that M), per-token int8 activations
//             from our quantizer, s8 x s8 -> s32, scales applied as gemm_s8_pc does. Not exact on every
//             ISA: where oneDNN uses vpmaddubsw, u8 x s8 pairs saturate at 32767. f32 W runs native.
//   openblas  f32 W (dequantized if need be): cblas_sgemv for M = 1 (rows split over OpenMP threads),
//             sgemm (src/ops/blas.h: OpenBLAS in OpenMP panels) for M > 1.
// Read next: models/decode.h (its user), kernels/qgemm.h (the native integer path).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/qgemm.h"
#include "src/core/tensor.h"

namespace qat {

enum class Backend : uint8_t { native, onednn, openblas };
const char* backend_name(Backend b);
Backend parse_backend(const std::string& name);  // UsageError listing the valid names

class Linear {
 public:
  virtual ~Linear() = default;
  // x (M, K) row-major -> y (M, N) row-major. Threads split N (never K): the bits do not depend on the
  // thread count. const and reentrant for native and openblas (scratch is per thread); the onednn
  // comparison backend caches a primitive per M and is not reentrant.
  virtual void forward(const float* x, int64_t M, float* y) const = 0;
  // The int32 accumulators y (M, N) of given per-token activations (exactness checks): native s8_pc
  // and onednn; the others fail with a one-line error.
  virtual void forward_s32(const QuantActs& a, int32_t* y) const;
  virtual Backend backend() const = 0;
  virtual int64_t weight_bytes() const = 0;  // bytes of weights in memory, all of which one forward reads
  int64_t rows() const { return N_; }  // N
  int64_t cols() const { return K_; }  // K

 protected:
  Linear(int64_t N, int64_t K) : N_(N), K_(K) {}
  const int64_t N_, K_;
};

// f32 weights w (N, K) (kept alive by the tensor): native (and onednn) the fixed-order gemm_f32 of
// table t, openblas sgemm / sgemv.
std::unique_ptr<Linear> make_f32_linear(Backend b, const Tensor& w, const Kernels& t = kernels());
// Integer weights: codes q (N, K) and scales d (N, K/32) (q4_0, q8_0) or (N) (s8_pc), as pack_weights
// takes them; K a positive multiple of 32. onednn runs per-channel int8 only: q4_0 / q8_0 weights are
// dequantized and re-quantized per channel (numerically another model). t: the native kernel table.
std::unique_ptr<Linear> make_quant_linear(Backend b, WFormat f, const int8_t* q, const float* d, int64_t N,
                                          int64_t K, const Kernels& t = kernels());

// "oneDNN 2.6.3 (avx512_core_vnni), OpenBLAS 0.3.21 (Haswell)": the comparison libraries, for tables.
std::string backend_versions();

}  // namespace qat
