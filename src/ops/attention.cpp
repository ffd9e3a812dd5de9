// Causal scaled-dot-product attention, the project's own fused kernel.
// Forward, per (b, h, t): s_j = scale * q_t . k_j (j <= t), p = softmax(s), out_t = sum_j p_j v_j;
// attention_row (rowops.cpp) computes one such row, and the KV-cache decode of models/ calls the same
// function, so training and serving compute every row identically. The log-sum-exp of each row is
// saved; backward recomputes p from it (no T x T matrix is kept):
//   dp_j = dout_t . v_j,   ds_j = p_j (dp_j - dout_t . out_t),
//   dq_t = scale sum_j ds_j k_j,   dk_j += scale ds_j q_t,   dv_j += p_j dout_t.
// Backward threads own one (b, kv-head) each and walk its queries in order: deterministic.
#include <cmath>
#include <vector>

#include "src/ops/ops.h"
#include "src/ops/rowops.h"

namespace qat {

Tensor causal_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in) {
  QAT_CHECK(q_in.ndim() == 4 && k_in.ndim() == 4 && v_in.ndim() == 4,
            "causal_attention: q, k, v must be (B, T, H, D), got ", q_in.shape_string(), ", ",
            k_in.shape_string(), ", ", v_in.shape_string());
  check_same_shape("causal_attention (k vs v)", k_in, v_in);
  Tensor q = contiguous(q_in), k = contiguous(k_in), v = contiguous(v_in);
  int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  if (k.dim(0) != B || k.dim(1) != T || k.dim(3) != D || Hkv == 0 || H % Hkv != 0)
    shape_error("causal_attention (q vs k)", q.shape(), k.shape());
  int64_t group = H / Hkv;
  float scale = 1.0f / std::sqrt(float(D));
  Tensor out = Tensor::empty(q.shape());
  Tensor lse = Tensor::empty({B, T, H});
  const float *pq = q.f32(), *pk = k.f32(), *pv = v.f32();
  float *po = out.f32(), *pl = lse.f32();
  int64_t kv_stride = Hkv * D;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(T));
#pragma omp for schedule(dynamic, 4)
    for (int64_t row = 0; row < B * T * H; row++) {
      int64_t b = row / (T * H), t = (row / H) % T, h = row % H;
      int64_t kv0 = b * T * kv_stride + (h / group) * D;
      pl[row] = attention_row(pq + row * D, pk + kv0, pv + kv0, kv_stride, t + 1, D, scale, scores.data(),
                              po + row * D);
    }
  }
  record(out, "attention", {q, k, v}, [q, k, v, lse, B, T, H, D, Hkv, scale](const Tensor& out, const Tensor& dout) {
    int64_t group = H / Hkv, kv_stride = Hkv * D;
    const float *pq = q.f32(), *pk = k.f32(), *pv = v.f32(), *po = out.f32(), *pl = lse.f32(), *dy = dout.f32();
    float* dq = q.requires_grad() ? grad_buffer(q).f32() : nullptr;
    float* dk = k.requires_grad() ? grad_buffer(k).f32() : nullptr;
    float* dv = v.requires_grad() ? grad_buffer(v).f32() : nullptr;
#pragma omp parallel
    {
      std::vector<float> ds(static_cast<size_t>(T)), p(static_cast<size_t>(T));
#pragma omp for schedule(static)
      for (int64_t bg = 0; bg < B * Hkv; bg++) {
        int64_t b = bg / Hkv, g = bg % Hkv;
        int64_t kv0 = b * T * kv_stride + g * D;
        for (int64_t h = g * group; h < (g + 1) * group; h++)
          for (int64_t t = 0; t < T; t++) {
            int64_t row = (b * T + t) * H + h;
            const float* qt = pq + row * D;
            const float* gt = dy + row * D;
            float di = dot_f32(gt, po + row * D, D);  // sum_j p_j dp_j = dout_t . out_t
            for (int64_t j = 0; j <= t; j++) {
              p[j] = std::exp(dot_f32(qt, pk + kv0 + j * kv_stride, D) * scale - pl[row]);
              ds[j] = p[j] * (dot_f32(gt, pv + kv0 + j * kv_stride, D) - di);
            }
            for (int64_t j = 0; j <= t; j++) {
              const float* kj = pk + kv0 + j * kv_stride;
              if (dq)
                for (int64_t d = 0; d < D; d++) dq[row * D + d] += scale * ds[j] * kj[d];
              if (dk)
                for (int64_t d = 0; d < D; d++) dk[kv0 + j * kv_stride + d] += scale * ds[j] * qt[d];
              if (dv)
                for (int64_t d = 0; d < D; d++) dv[kv0 + j * kv_stride + d] += p[j] * gt[d];
            }
          }
      }
    }
  });
  return out;
}

}  // namespace qat
