// softmax, log_softmax (last dimension) and the fused softmax + cross-entropy loss.
//   softmax:      y = exp(x - max) / sum            dx = y * (dy - sum(dy * y))
//   log_softmax:  y = x - lse                       dx = dy - softmax(x) * sum(dy)
//   cross_entropy (mean over the n rows whose target is not -1):
//                 loss = mean(lse - x[target])      dx = (softmax(x) - onehot(target)) * dloss / n
//   distill_kl (knowledge distillation: the mean over the same rows of KL(teacher || student)):
//                 loss = mean(sum_i p_t (log p_t - log p_s))   dx = (softmax(x) - p_t) * dloss / n
//                 (p_t = softmax(teacher logits), a constant: the teacher gets no gradient)
// The loss is summed row by row in order (double), so it does not depend on the thread count. Every
// exponential is rowops' exp_f32 (the kernel table's, the same bits in every ISA), a row at a time.
#include <cmath>
#include <vector>

#include "src/ops/ops.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

namespace qat {

// e (V) = exp(x - c), elementwise.
static void exp_shifted(const float* x, float c, int64_t V, float* e) {
  for (int64_t i = 0; i < V; i++) e[i] = x[i] - c;
  exp_f32(e, V, e);
}

// Log-sum-exp of one row, with the max subtracted first; e (V) is scratch (left holding exp(x - max)).
static float row_lse(const float* x, int64_t V, float* e) {
  float m = -INFINITY;
  for (int64_t i = 0; i < V; i++) m = x[i] > m ? x[i] : m;
  exp_shifted(x, m, V, e);
  return m + std::log(sum_f32(e, V));
}

Tensor softmax(const Tensor& x_in) {
  QAT_PROF("softmax", forward, 5.0 * double(x_in.numel()), 8.0 * double(x_in.numel()));
  Tensor x = contiguous(x_in);
  int64_t V = x.dim(-1), R = x.numel() / (V ? V : 1);
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.f32();
  float* py = out.f32();
#pragma omp parallel if (R * V > 16384)
  {
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) exp_shifted(px + r * V, row_lse(px + r * V, V, e.data()), V, py + r * V);
  }
  record(out, "softmax", {x}, [x, R, V](const Tensor& out, const Tensor& dout) {
    const float *py = out.f32(), *dy = dout.f32();
    float* dx = grad_buffer(x).f32();
#pragma omp parallel for schedule(static) if (R * V > 16384)
    for (int64_t r = 0; r < R; r++) {
      double s = 0;
      for (int64_t i = 0; i < V; i++) s += double(dy[r * V + i]) * py[r * V + i];
      for (int64_t i = 0; i < V; i++) dx[r * V + i] += py[r * V + i] * (dy[r * V + i] - float(s));
    }
  });
  return out;
}

Tensor log_softmax(const Tensor& x_in) {
  QAT_PROF("log_softmax", forward, 5.0 * double(x_in.numel()), 8.0 * double(x_in.numel()));
  Tensor x = contiguous(x_in);
  int64_t V = x.dim(-1), R = x.numel() / (V ? V : 1);
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.f32();
  float* py = out.f32();
#pragma omp parallel if (R * V > 16384)
  {
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < R; r++) {
      float lse = row_lse(px + r * V, V, e.data());
      for (int64_t i = 0; i < V; i++) py[r * V + i] = px[r * V + i] - lse;
    }
  }
  record(out, "log_softmax", {x}, [x, R, V](const Tensor& out, const Tensor& dout) {
    const float *py = out.f32(), *dy = dout.f32();
    float* dx = grad_buffer(x).f32();
#pragma omp parallel if (R * V > 16384)
    {
      std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < R; r++) {
        double s = 0;
        for (int64_t i = 0; i < V; i++) s += dy[r * V + i];
        exp_f32(py + r * V, V, e.data());
        for (int64_t i = 0; i < V; i++) dx[r * V + i] += dy[r * V + i] - e[size_t(i)] * float(s);
      }
    }
  });
  return out;
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets) {
  Tensor logits = contiguous(logits_in);
  QAT_CHECK(logits.ndim() == 2, "cross_entropy: logits must be (N, V), got ", logits.shape_string());
  QAT_CHECK(targets.dtype() == DType::s32 && targets.ndim() == 1 && targets.dim(0) == logits.dim(0) &&
                targets.is_contiguous(),
            "cross_entropy: targets must be s32 (N) matching logits ", logits.shape_string());
  int64_t N = logits.dim(0), V = logits.dim(1);
  QAT_PROF("cross_entropy", forward, 4.0 * double(N * V), 4.0 * double(N * V));
  const float* px = logits.f32();
  const int32_t* tg = targets.data<int32_t>();
  for (int64_t r = 0; r < N; r++)
    QAT_CHECK(tg[r] == -1 || (tg[r] >= 0 && tg[r] < V), "cross_entropy: target ", tg[r], " out of range [0, ", V, ")");
  Tensor lse = Tensor::empty({N});
  float* pl = lse.f32();
  std::vector<float> row_loss(static_cast<size_t>(N), 0.0f);
#pragma omp parallel if (N * V > 16384)
  {
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      pl[r] = row_lse(px + r * V, V, e.data());
      if (tg[r] >= 0) row_loss[r] = pl[r] - px[r * V + tg[r]];
    }
  }
  double total = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < N; r++)
    if (tg[r] >= 0) { total += row_loss[r]; count++; }
  Tensor out = Tensor::full({}, count ? float(total / double(count)) : 0.0f);
  record(out, "cross_entropy", {logits}, [logits, targets, lse, N, V, count](const Tensor&, const Tensor& dout) {
    if (!count) return;
    const float *px = logits.f32(), *pl = lse.f32();
    const int32_t* tg = targets.data<int32_t>();
    float* dx = grad_buffer(logits).f32();
    float g = dout.f32()[0] / float(count);
#pragma omp parallel if (N * V > 16384)
    {
      std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < N; r++) {
        if (tg[r] < 0) continue;
        exp_shifted(px + r * V, pl[r], V, e.data());
        for (int64_t i = 0; i < V; i++) dx[r * V + i] += g * e[size_t(i)];
        dx[r * V + tg[r]] -= g;
      }
    }
  });
  return out;
}

Tensor distill_kl(const Tensor& logits_in, const Tensor& teacher_in, const Tensor& targets) {
  Tensor logits = contiguous(logits_in), teacher = contiguous(teacher_in.detach());
  QAT_CHECK(logits.ndim() == 2 && teacher.shape() == logits.shape(), "distill_kl: logits ", logits.shape_string(),
            " and teacher logits ", teacher.shape_string(), " must both be (N, V)");
  QAT_CHECK(targets.dtype() == DType::s32 && targets.ndim() == 1 && targets.dim(0) == logits.dim(0) &&
                targets.is_contiguous(),
            "distill_kl: targets must be s32 (N) matching logits ", logits.shape_string());
  int64_t N = logits.dim(0), V = logits.dim(1);
  QAT_PROF("distill_kl", forward, 10.0 * double(N * V), 8.0 * double(N * V));
  const float *px = logits.f32(), *pt = teacher.f32();
  const int32_t* tg = targets.data<int32_t>();
  // The teacher's probabilities are kept for the backward (N, V); the student's lse per row.
  Tensor p_teacher = Tensor::empty({N, V}), lse = Tensor::empty({N});
  float *pp = p_teacher.f32(), *pl = lse.f32();
  std::vector<double> row_kl(static_cast<size_t>(N), 0.0);
#pragma omp parallel if (N * V > 16384)
  {
    std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < N; r++) {
      if (tg[r] < 0) continue;
      const float *xs = px + r * V, *xt = pt + r * V;
      float lse_t = row_lse(xt, V, e.data());
      pl[r] = row_lse(xs, V, e.data());
      exp_shifted(xt, lse_t, V, pp + r * V);
      double kl = 0;
      for (int64_t i = 0; i < V; i++) kl += double(pp[r * V + i]) * double((xt[i] - lse_t) - (xs[i] - pl[r]));
      row_kl[size_t(r)] = kl;
    }
  }
  double total = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < N; r++)
    if (tg[r] >= 0) { total += row_kl[size_t(r)]; count++; }
  Tensor out = Tensor::full({}, count ? float(total / double(count)) : 0.0f);
  record(out, "distill_kl", {logits}, [logits, p_teacher, targets, lse, N, V, count](const Tensor&, const Tensor& dout) {
    if (!count) return;
    const float *px = logits.f32(), *pp = p_teacher.f32(), *pl = lse.f32();
    const int32_t* tg = targets.data<int32_t>();
    float* dx = grad_buffer(logits).f32();
    float g = dout.f32()[0] / float(count);
#pragma omp parallel if (N * V > 16384)
    {
      std::vector<float> e(static_cast<size_t>(V));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < N; r++) {
        if (tg[r] < 0) continue;
        exp_shifted(px + r * V, pl[r], V, e.data());
        for (int64_t i = 0; i < V; i++) dx[r * V + i] += g * (e[size_t(i)] - pp[r * V + i]);
      }
    }
  });
  return out;
}

}  // namespace qat
