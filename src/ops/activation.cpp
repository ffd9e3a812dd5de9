// Pointwise activations, forward and backward side by side.
//   silu(x)   = x s,  s = sigmoid(x)                 silu'(x) = s (1 + x (1 - s))
//   gelu(x)   = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//             gelu'(x) = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(u)
//   swiglu(g, u) = silu(g) u                         dg = dy u silu'(g),  du = dy silu(g)
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "src/ops/ops.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

namespace qat {

static inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// out = f(x) elementwise, and on backward dx += dy * df(x).
template <class F, class DF>
static Tensor unary(const char* name, const Tensor& x_in, F f, DF df) {
  prof::Scope scope(name, prof::Phase::forward, 5.0 * double(x_in.numel()), 8.0 * double(x_in.numel()));
  Tensor x = contiguous(x_in);
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.f32();
  float* py = out.f32();
  int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) py[i] = f(px[i]);
  record(out, name, {x}, [x, df, n](const Tensor&, const Tensor& dout) {
    const float *px = x.f32(), *dy = dout.f32();
    float* dx = grad_buffer(x).f32();
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * df(px[i]);
  });
  return out;
}

static float silu_grad(float x) {
  float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

Tensor silu(const Tensor& x) {
  return unary("silu", x, [](float v) { return v * sigmoid(v); }, silu_grad);
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;

Tensor gelu(const Tensor& x) {
  return unary(
      "gelu", x,
      [](float v) { return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + kGeluC * v * v * v))); },
      [](float v) {
        float t = std::tanh(kSqrt2OverPi * (v + kGeluC * v * v * v));
        return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * v * v);
      });
}

Tensor swiglu(const Tensor& gate_in, const Tensor& up_in) {
  check_same_shape("swiglu", gate_in, up_in);
  QAT_PROF("swiglu", forward, 6.0 * double(gate_in.numel()), 12.0 * double(gate_in.numel()));
  Tensor gate = contiguous(gate_in), up = contiguous(up_in);
  Tensor out = Tensor::empty(gate.shape());
  int64_t n = gate.numel();
  const float *pg = gate.f32(), *pu = up.f32();
  float* py = out.f32();
  constexpr int64_t kBlock = 4096;
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i += kBlock) swiglu_row(pg + i, pu + i, i + kBlock < n ? kBlock : n - i, py + i);
  record(out, "swiglu", {gate, up}, [gate, up, n](const Tensor&, const Tensor& dout) {
    const float *pg = gate.f32(), *pu = up.f32(), *dy = dout.f32();
    float* dg = gate.requires_grad() ? grad_buffer(gate).f32() : nullptr;
    float* du = up.requires_grad() ? grad_buffer(up).f32() : nullptr;
    const Kernels& kt = kernels();  // sigmoid through the project's exp, as the forward's silu
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i0 = 0; i0 < n; i0 += kBlock)
      kt.rows.swiglu_backward(pg + i0, pu + i0, dy + i0, n - i0 < kBlock ? n - i0 : kBlock, dg ? dg + i0 : nullptr,
                              du ? du + i0 : nullptr);
  });
  return out;
}

}  // namespace qat
