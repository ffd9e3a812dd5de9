// AdamW over a ParamStore's flat buffers (decoupled weight decay, PyTorch's update order), global
// gradient-norm clipping, and the learning-rate schedule (linear warmup, cosine decay to min_lr).
// Read next: tools/train.cpp (the loop that calls these).
#pragma once
#include <cstdint>

#include "src/nn/params.h"

namespace qat {

struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // applied only to parameters declared with decay = true
};

class AdamW {
 public:
  AdamW(ParamStore& params, AdamWConfig cfg);
  // One update with learning rate `lr` (from the schedule) using the gradients in params.flat_grad().
  //   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
  //   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  // Parameters declared log_space (QAT scales) take the same step on log(p): g is replaced by g * p
  // (the gradient with respect to log p) and p *= exp(-step), so a step changes p by a fraction of
  // itself, whatever its magnitude; no weight decay. A parameter's ParamInfo::lr_mult scales its step.
  void step(float lr);
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  Tensor& exp_avg() { return m_; }     // flat, same layout as params.flat()
  Tensor& exp_avg_sq() { return v_; }
  const AdamWConfig& config() const { return cfg_; }

 private:
  ParamStore& params_;
  AdamWConfig cfg_;
  Tensor m_, v_;
  int64_t t_ = 0;
};

// Scales all gradients so that their global L2 norm is at most max_norm (if max_norm > 0); returns the
// norm before clipping (deterministic: fixed-chunk sum). Non-finite norms are returned unchanged and
// nothing is scaled, so the caller can skip the step.
float clip_grad_norm(ParamStore& params, float max_norm);

// lr at `step` (0-based): linear warmup over `warmup` steps, then cosine from lr to min_lr at `total`.
float lr_schedule(int64_t step, int64_t total, int64_t warmup, float lr, float min_lr);

}  // namespace qat
