// Picking the next token from logits: greedy (temperature 0), or sampling with temperature, top-k and
// top-p (nucleus), from a seeded generator. Read next: decode.h.
#pragma once
#include <cstdint>

#include "src/core/rng.h"

namespace qat {

struct SamplerConfig {
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 40;        // 0: off
  float top_p = 0.95f;       // 1: off
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg) : cfg_(cfg), rng_(cfg.seed) {}
  // logits (V): returns the chosen token id. Ties in greedy pick the lowest id.
  int32_t sample(const float* logits, int64_t V);

 private:
  SamplerConfig cfg_;
  Rng rng_;
};

}  // namespace qat
