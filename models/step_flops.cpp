// Analytic FLOPs of a training step; see step_flops.h for the convention.
#include "models/step_flops.h"

namespace qat {

StepFlops train_step_flops(const ModelConfig& cfg, int64_t B, int64_t T) {
  const double C = double(cfg.d_model), D = double(cfg.head_dim()), H = double(cfg.n_heads),
               Hkv = double(cfg.n_kv_heads), F = double(cfg.ffn), L = double(cfg.n_layers), V = double(cfg.vocab);
  // weight elements a token multiplies: q (H*D, C), k and v (Hkv*D, C), o (C, H*D), gate/up (F, C), down (C, F)
  const double per_layer = C * H * D + 2 * C * Hkv * D + H * D * C + 3 * C * F;
  const double weights = L * per_layer + V * C;  // + the LM head (tied or not, it is one V x C GEMM)
  const double tokens = double(B) * double(T);
  StepFlops f;
  f.gemm = 6 * weights * tokens;
  f.attention = 12 * L * double(T) * double(T) * C * double(B);
  return f;
}

}  // namespace qat
