// AdamW, clipping and the schedule (see adamw.h). Elementwise over the flat buffers: any split over
// threads gives the same bits.
#include "src/optim/adamw.h"

#include <cmath>

#include "src/core/parallel.h"

namespace qat {

AdamW::AdamW(ParamStore& params, AdamWConfig cfg)
    : params_(params), cfg_(cfg), m_(Tensor::zeros({params.total()})), v_(Tensor::zeros({params.total()})) {}

void AdamW::step(float lr) {
  t_++;
  const float b1 = cfg_.beta1, b2 = cfg_.beta2, eps = cfg_.eps;
  const float bc1 = 1.0f - float(std::pow(double(b1), double(t_)));
  const float bc2_sqrt = std::sqrt(1.0f - float(std::pow(double(b2), double(t_))));
  const float step_size = lr / bc1;
  float* p = params_.flat().f32();
  const float* g = params_.flat_grad().f32();
  float* m = m_.f32();
  float* v = v_.f32();
  for (const ParamInfo& info : params_.infos()) {
    const float decay = info.decay ? 1.0f - lr * cfg_.weight_decay : 1.0f;
    const int64_t lo = info.offset, hi = info.offset + info.numel;
    const float ss = info.lr_mult == 1.0f ? step_size : step_size * info.lr_mult;
    if (info.log_space) {
#pragma omp parallel for schedule(static) if (info.numel > 32768)
      for (int64_t i = lo; i < hi; i++) {
        float gl = g[i] * p[i];  // d loss / d log p
        m[i] = b1 * m[i] + (1.0f - b1) * gl;
        v[i] = b2 * v[i] + (1.0f - b2) * gl * gl;
        p[i] *= std::exp(-ss * (m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps)));
      }
      continue;
    }
#pragma omp parallel for schedule(static) if (info.numel > 32768)
    for (int64_t i = lo; i < hi; i++) {
      p[i] *= decay;
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      p[i] -= ss * (m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps));
    }
  }
}

float clip_grad_norm(ParamStore& params, float max_norm) {
  Tensor& g = params.flat_grad();
  float norm = float(std::sqrt(det_sum_squares(g.f32(), g.numel())));
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    float s = max_norm / (norm + 1e-6f);
    float* pg = g.f32();
    int64_t n = g.numel();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) pg[i] *= s;
  }
  return norm;
}

float lr_schedule(int64_t step, int64_t total, int64_t warmup, float lr, float min_lr) {
  if (warmup > 0 && step < warmup) return lr * float(step + 1) / float(warmup);
  if (total <= warmup) return lr;
  double progress = double(step - warmup) / double(total - warmup);
  if (progress > 1) progress = 1;
  return min_lr + float(0.5 * (1.0 + std::cos(M_PI * progress))) * (lr - min_lr);
}

}  // namespace qat
