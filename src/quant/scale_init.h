// Where quantization scales come from without training:
//   minmax  the ggml rule (scale from the largest magnitude in the group: amax/8 for int4, amax/127
//           for int8); for PTQ exactly ggml's quantizer (q4_0 keeps its signed d)
//   mse     MSE-optimal clipping: the scale s = alpha * amax/qmax, alpha on a grid in [0.30, 1.30],
//           that minimises sum (w - w_hat)^2 under the learned rule (f16 scale included)
// QAT initialises its learned scales with one of these; PTQ (bin/quantize, bin/eval --ptq) quantizes
// with one of these once. Read next: fake_quant.h.
#pragma once
#include <cstdint>
#include <string>

#include "src/quant/scheme.h"

namespace qat {

// w (N, K) -> scale (N, K/G) positive initial scales for the learned rule.
void init_scales(const float* w, int64_t N, int64_t K, const LayerQuant& q, const std::string& method, float* scale);

// PTQ: w (N, K) -> codes (N, K) and scales d (N, K/G) as served (f16 values for blocks and per-channel).
void ptq_quantize(const float* w, int64_t N, int64_t K, const LayerQuant& q, const std::string& method,
                  int8_t* codes, float* d);

}  // namespace qat
