// The entry points the rest of qat calls for integer and fixed-order f32 matrix products:
// pack weights once (serving) or every step (QAT), quantize activations with the reference rule, run
// the dispatched kernel, split over OpenMP threads by output columns / rows (never over K, so every
// thread count gives the same bits). Ops and models never call intrinsics or kernel tables directly.
// out y (M, N) = x (M, K) W (N, K)^T. Read next: kernels.h (the families and the reduction orders).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/quant.h"

namespace qat {

// Weight formats of the integer kernels (the named schemes of src/quant: q4_0, q8_0, w8a8).
enum class WFormat : uint8_t {
  q4_0,   // q4_0 blocks x q8_0 activations
  q8_0,   // q8_0 blocks x q8_0 activations
  s8_pc,  // per-channel int8 x per-token int8 activations (w8a8)
  tq,     // ternary codes, one scale per 256 (tq2_0, tq1_0: the two GGUF layouts of one kernel) x q8_0 activations
};
const char* wformat_name(WFormat f);
// Elements of a row sharing one weight scale: 32 (q4_0, q8_0), 256 (tq), K (s8_pc).
inline int64_t wformat_group(WFormat f, int64_t K) { return f == WFormat::s8_pc ? K : f == WFormat::tq ? QKK : QK; }

// Weights repacked for one kernel table (kernels/pack.h). The canonical blocks stay the storage format.
struct PackedWeights {
  WFormat format = WFormat::q4_0;
  const Kernels* table = nullptr;  // the table whose layout `data` has; qgemm runs that table
  int64_t N = 0, K = 0;
  std::vector<uint8_t> data;       // ceil(N / nr) panels
};

// q (N, K) codes and d (N, K/G) scales, G = wformat_group (f16 values for q4_0, q8_0, tq) -> *out. Reuses
// out's memory when it is large enough. K % 32 == 0 (tq: K % 256 == 0); s8_pc: K <= kMaxKS8.
void pack_weights(WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K, PackedWeights* out,
                  const Kernels& t = kernels());

// Quantized activations: q (M, K) codes, d and s (M, K/32) for q8_0 blocks, (M) per token.
struct QuantActs {
  bool per_token = false;
  int64_t M = 0, K = 0;
  std::vector<int8_t> q;
  std::vector<float> d;    // scale values (q8_0: f16-rounded; per token: f32)
  std::vector<int32_t> s;  // sum of the codes of each group
};
// The activation format a weight format multiplies: per token for s8_pc, q8_0 blocks otherwise.
inline bool uses_per_token(WFormat f) { return f == WFormat::s8_pc; }

// x (M, K) -> *out, the reference rule (bit-identical in every table).
void quantize_acts(bool per_token, const float* x, int64_t M, int64_t K, QuantActs* out,
                   const Kernels& t = kernels());
// Activations from given codes (tests, experiments): fills d and s; q (M, K), d (M, K/32) or (M).
void acts_from_codes(bool per_token, const int8_t* q, const float* d, int64_t M, int64_t K, QuantActs* out);

// kernels/ref's quantize_learned (the QAT weight quantizer) with table t's kernel: bit-identical, SIMD,
// split over threads by groups. x (n), s (n/G) -> q (n) codes in [lo, hi], s16 (n/G, may be null).
void quantize_weights_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q,
                              float* s16, const Kernels& t = kernels());

// y (M, N) = a W^T in the reduction order of kernels.h, with w's table (M = 1: the gemv path).
void qgemm(const PackedWeights& w, const QuantActs& a, float* y);
// One part of a GEMV (a.M == 1): the outputs y[n0, n1) of part `part` of `parts`, whole panels each,
// by the same kernel call per panel as qgemm, so the parts of any split give qgemm's bits. No threads:
// the caller runs the parts where it likes (src/nn/linear.cpp: a WorkerPool).
void qgemv_part(const PackedWeights& w, const QuantActs& a, int part, int parts, float* y);
// Quantizes x (M, K) into *scratch (a thread-local buffer when null), then qgemm.
void qgemm(const PackedWeights& w, const float* x, int64_t M, float* y, QuantActs* scratch = nullptr);
// s8_pc only: the int32 accumulators y (M, N) (what oneDNN's s8 x s8 -> s32 matmul returns).
void qgemm_s32(const PackedWeights& w, const QuantActs& a, int32_t* y);

// The fixed-order f32 GEMM: y (M, ldy) = x (M, ldx) w (N, ldw)^T over K columns, each output bit-equal
// to dot_f32(x_m, w_n, K) (kernels/ref/order.h). M = 1 takes the gemv path.
void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy, const Kernels& t = kernels());

}  // namespace qat
