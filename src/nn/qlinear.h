// The three ways qat runs a quantized linear layer y (M, N) = x (M, K) W (N, K)^T, chosen by
// --backend on bench and generate:
//   native    our integer kernels (kernels/qgemm.h): exact, bit-identical to kernels/scalar.
//   onednn    oneDNN's int8 matmul, for comparison: per-channel int8 weights reordered to the layout the
//             primitive asks for (once per M, outside any timed loop), per-token int8 activations from
//             our quantizer, s8 x s8 -> s32, scales applied by us as in gemm_s8_pc. Not exact on every
//             ISA: where oneDNN uses vpmaddubsw, u8 x s8 pairs saturate at 32767.
//   openblas  f32 on the dequantized weights: cblas_sgemv for M = 1 (rows split over OpenMP threads),
//             sgemm (src/ops/blas.h: OpenBLAS in OpenMP panels) for M > 1.
// Read next: tools/bench.cpp (the kernels table).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/qgemm.h"

namespace qat {

enum class Backend : uint8_t { native, onednn, openblas };
const char* backend_name(Backend b);
Backend parse_backend(const std::string& name);  // UsageError listing the valid names

class QLinear {
 public:
  // W from codes q (N, K) and scales d (N, K/32) or (N, 1) in format f (as pack_weights takes them).
  // onednn runs per-channel int8 only: q4_0 / q8_0 weights are dequantized and re-quantized per
  // channel (a different model, numerically). t: the native kernel table.
  QLinear(Backend b, WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K,
          const Kernels& t = kernels());
  ~QLinear();
  QLinear(QLinear&&) noexcept;
  QLinear& operator=(QLinear&&) noexcept;

  // y (M, N) from x (M, K), reading the weights of copy `replica` (see set_replicas).
  void forward(const float* x, int64_t M, float* y, int replica = 0);
  // The int32 accumulators y (M, N) of given per-token activations: native s8_pc and onednn only.
  void forward_s32(const QuantActs& a, int32_t* y);
  // Makes n independent copies of the streamed weights (benchmarks with weights in DRAM: each call
  // reads a copy that is not in cache). Prepares for M rows first (oneDNN's layout depends on M).
  void set_replicas(int n, int64_t M);

  Backend backend() const;
  int64_t N() const;
  int64_t K() const;
  int64_t weight_bytes() const;  // bytes of weights (codes + scales) one forward streams

  struct Impl;  // one per backend, in qlinear.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

// "oneDNN 2.6.3 (avx512_core_vnni), OpenBLAS 0.3.21 (Haswell)": the comparison libraries, for tables.
std::string backend_versions();

}  // namespace qat
