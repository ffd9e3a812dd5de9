// The model FLOPs of one training step (forward + backward) of a ModelConfig, counted analytically from
// the shape, for the benchmarks' GFLOP/s and MFU columns (bin/bench shapes). The profiler counts the
// same work op by op (src/util/profile.h); tests/test_step_flops.cpp checks the two against each other.
#pragma once
#include <cstdint>

#include "models/config.h"

namespace qat {

// FLOPs of one training step on B sequences of T tokens. Backward costs twice the forward (dx and dW
// each as large as y), so every term is 3x its forward:
//   gemm      = 6 * (GEMM weights: every projection of every layer + the LM head V x C) * B*T
//   attention = 12 * L * T^2 * C * B: QK^T and PV over the full T x T square (the PaLM / llm.c MFU
//               convention; a causal kernel needs only the lower half, which the profiler counts)
// 6 * n_params() * B*T differs from `gemm` only by the norm weights (2C per layer + C), 6 FLOPs each.
struct StepFlops {
  double gemm = 0, attention = 0;
  double total() const { return gemm + attention; }
};
StepFlops train_step_flops(const ModelConfig& cfg, int64_t B, int64_t T);

}  // namespace qat
