// RMSNorm and LayerNorm over the last dimension C, forward and backward side by side.
//   rmsnorm:   xh = x * rstd,             rstd = 1/sqrt(mean(x^2) + eps),   y = xh * w
//              dx = rstd * (g - xh * mean(g * xh)),  g = dy * w;   dw += sum_rows dy * xh
//   layernorm: xh = (x - mean) * rstd,    rstd = 1/sqrt(var + eps),         y = xh * w + b
//              dx = rstd * (g - mean(g) - xh * mean(g * xh));  dw += sum dy * xh;  db += sum dy
// Weight gradients: threads split the channels and each sums its rows in order (deterministic).
#include <cmath>
#include <vector>

#include "src/ops/ops.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

namespace qat {

// dw[c] += sum_r dy[r, c] * xh[r, c] (and db[c] += sum_r dy[r, c] when db != nullptr), with xh recomputed
// from x, mean and rstd. Parallel over channel blocks.
static void norm_param_grads(const float* x, const float* dy, const float* mean, const float* rstd,
                             int64_t R, int64_t C, float* dw, float* db) {
  constexpr int64_t kCols = 32;
#pragma omp parallel for schedule(static)
  for (int64_t c0 = 0; c0 < C; c0 += kCols) {
    int64_t c1 = c0 + kCols < C ? c0 + kCols : C;
    for (int64_t r = 0; r < R; r++) {
      float mu = mean ? mean[r] : 0.0f;
      for (int64_t c = c0; c < c1; c++) {
        float xh = (x[r * C + c] - mu) * rstd[r];
        if (dw) dw[c] += dy[r * C + c] * xh;
        if (db) db[c] += dy[r * C + c];
      }
    }
  }
}

Tensor rmsnorm(const Tensor& x_in, const Tensor& w, float eps) {
  Tensor x = contiguous(x_in);
  int64_t C = x.dim(-1), R = x.numel() / (C ? C : 1);
  QAT_CHECK(w.ndim() == 1 && w.dim(0) == C && w.is_contiguous(), "rmsnorm: weight ", w.shape_string(),
            " does not match x ", x.shape_string());
  QAT_PROF("rmsnorm", forward, 4.0 * double(R * C), 8.0 * double(R * C));
  Tensor out = Tensor::empty(x.shape());
  Tensor rstd = Tensor::empty({R});
  const float* px = x.f32();
  float* py = out.f32();
  float* pr = rstd.f32();
  const float* pw = w.f32();
#pragma omp parallel for schedule(static) if (R * C > 16384)
  for (int64_t r = 0; r < R; r++) pr[r] = rmsnorm_row(px + r * C, pw, eps, C, py + r * C);
  record(out, "rmsnorm", {x, w}, [x, w, rstd, R, C](const Tensor&, const Tensor& dout) {
    const float *px = x.f32(), *pw = w.f32(), *pr = rstd.f32(), *dy = dout.f32();
    if (Tensor dx = grad_buffer(x); dx.defined()) {
      float* pdx = dx.f32();
#pragma omp parallel if (R * C > 16384)
      {
        std::vector<float> g(static_cast<size_t>(C)), xh(static_cast<size_t>(C));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
          const float *xr = px + r * C, *dyr = dy + r * C;
          for (int64_t c = 0; c < C; c++) {
            g[size_t(c)] = dyr[c] * pw[c];
            xh[size_t(c)] = xr[c] * pr[r];
          }
          const float m = dot_f32(g.data(), xh.data(), C) / float(C);  // mean(g * xh), dot_f32's order
          for (int64_t c = 0; c < C; c++) pdx[r * C + c] += pr[r] * (g[size_t(c)] - xh[size_t(c)] * m);
        }
      }
    }
    if (Tensor dw = grad_buffer(w); dw.defined()) norm_param_grads(px, dy, nullptr, pr, R, C, dw.f32(), nullptr);
  });
  return out;
}

Tensor layernorm(const Tensor& x_in, const Tensor& w, const Tensor& b, float eps) {
  Tensor x = contiguous(x_in);
  int64_t C = x.dim(-1), R = x.numel() / (C ? C : 1);
  QAT_CHECK(w.ndim() == 1 && w.dim(0) == C && b.ndim() == 1 && b.dim(0) == C && w.is_contiguous() &&
                b.is_contiguous(),
            "layernorm: weight ", w.shape_string(), " / bias ", b.shape_string(), " do not match x ",
            x.shape_string());
  QAT_PROF("layernorm", forward, 6.0 * double(R * C), 8.0 * double(R * C));
  Tensor out = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({R}), rstd = Tensor::empty({R});
  const float *px = x.f32(), *pw = w.f32(), *pb = b.f32();
  float *py = out.f32(), *pm = mean.f32(), *pr = rstd.f32();
#pragma omp parallel for schedule(static) if (R * C > 16384)
  for (int64_t r = 0; r < R; r++) {
    const float* xr = px + r * C;
    double s = 0, ss = 0;
    for (int64_t c = 0; c < C; c++) s += xr[c];
    float mu = float(s / double(C));
    for (int64_t c = 0; c < C; c++) ss += double(xr[c] - mu) * (xr[c] - mu);
    float rs = 1.0f / std::sqrt(float(ss / double(C)) + eps);
    pm[r] = mu;
    pr[r] = rs;
    for (int64_t c = 0; c < C; c++) py[r * C + c] = (xr[c] - mu) * rs * pw[c] + pb[c];
  }
  record(out, "layernorm", {x, w, b}, [x, w, b, mean, rstd, R, C](const Tensor&, const Tensor& dout) {
    const float *px = x.f32(), *pw = w.f32(), *pm = mean.f32(), *pr = rstd.f32(), *dy = dout.f32();
    if (Tensor dx = grad_buffer(x); dx.defined()) {
      float* pdx = dx.f32();
#pragma omp parallel for schedule(static) if (R * C > 16384)
      for (int64_t r = 0; r < R; r++) {
        const float* xr = px + r * C;
        const float* gr = dy + r * C;
        double sg = 0, sgx = 0;
        for (int64_t c = 0; c < C; c++) {
          float g = gr[c] * pw[c];
          sg += g;
          sgx += double(g) * ((xr[c] - pm[r]) * pr[r]);
        }
        float mg = float(sg / double(C)), mgx = float(sgx / double(C));
        for (int64_t c = 0; c < C; c++)
          pdx[r * C + c] += pr[r] * (gr[c] * pw[c] - mg - (xr[c] - pm[r]) * pr[r] * mgx);
      }
    }
    float* dw = w.requires_grad() ? grad_buffer(w).f32() : nullptr;
    float* db = b.requires_grad() ? grad_buffer(b).f32() : nullptr;
    if (dw || db) norm_param_grads(px, dy, pm, pr, R, C, dw, db);
  });
  return out;
}

}  // namespace qat
