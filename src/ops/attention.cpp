// Causal scaled-dot-product attention, the project's own fused kernel.
// Forward, per (b, h, t): s_j = scale * q_t . k_j (j <= t), p = softmax(s), out_t = sum_j p_j v_j;
// attention_rows (rowops.cpp) computes such rows, the query heads of one kv-head together, and the
// KV-cache decode of models/ calls the same function, so training and serving compute every row
// identically. The log-sum-exp of each row is saved; backward recomputes P from it, one (b, head) at a time, with matrix products:
//   S = scale Q K^T,  P = exp(S - lse) (causal),  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),
//   dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
// The backward is not part of the train = serve identity, so it may use OpenBLAS. Each thread owns
// one (b, kv-head) and its heads in order: deterministic at any thread count.
#include <cmath>
#include <vector>

#include "src/ops/blas.h"
#include "src/ops/ops.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

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
  // Causal: about half of the T x T scores. Backward runs full T x T products (4 of them).
  const double att_flops = 2.0 * double(B * H * T * (T + 1) / 2 * D) * 2, att_bytes = 4.0 * double(B * T * (2 * H + 2 * Hkv) * D);
  QAT_PROF("attention", forward, att_flops, att_bytes);
  float scale = 1.0f / std::sqrt(float(D));
  Tensor out = Tensor::empty(q.shape());
  Tensor lse = Tensor::empty({B, T, H});
  const float *pq = q.f32(), *pk = k.f32(), *pv = v.f32();
  float *po = out.f32(), *pl = lse.f32();
  int64_t kv_stride = Hkv * D;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(group * T));
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < B * T * Hkv; item++) {  // the `group` query heads of one kv-head
      int64_t b = item / (T * Hkv), t = (item / Hkv) % T, g = item % Hkv;
      int64_t kv0 = b * T * kv_stride + g * D, row = (b * T + t) * H + g * group;
      attention_rows(pq + row * D, D, group, pk + kv0, pv + kv0, kv_stride, t + 1, D, scale, scores.data(),
                     po + row * D, D, pl + row);
    }
  }
  record(out, "attention", {q, k, v}, [q, k, v, lse, B, T, H, D, Hkv](const Tensor& out, const Tensor& dout) {
    int64_t group = H / Hkv, qs = H * D, ks = Hkv * D;  // row strides of q/out/dout and k/v
    float scale = 1.0f / std::sqrt(float(D));
    const float *pq = q.f32(), *pk = k.f32(), *pv = v.f32(), *po = out.f32(), *pl = lse.f32(), *dy = dout.f32();
    float* dq = q.requires_grad() ? grad_buffer(q).f32() : nullptr;
    float* dk = k.requires_grad() ? grad_buffer(k).f32() : nullptr;
    float* dv = v.requires_grad() ? grad_buffer(v).f32() : nullptr;
#pragma omp parallel
    {
      std::vector<float> P(static_cast<size_t>(T * T)), dS(static_cast<size_t>(T * T));
#pragma omp for schedule(static)
      for (int64_t bg = 0; bg < B * Hkv; bg++) {
        int64_t b = bg / Hkv, g = bg % Hkv;
        const float* K = pk + b * T * ks + g * D;  // (T, D), row stride ks
        const float* Vv = pv + b * T * ks + g * D;
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
          int64_t q0 = b * T * qs + h * D;  // (T, D) slices of q, out, dout, dq; row stride qs
          sgemm_serial(false, true, T, T, D, scale, pq + q0, qs, K, ks, 0.0f, P.data(), T);      // S
          sgemm_serial(false, true, T, T, D, 1.0f, dy + q0, qs, Vv, ks, 0.0f, dS.data(), T);     // dP
          for (int64_t t = 0; t < T; t++) {
            float lse_t = pl[(b * T + t) * H + h];
            float di = dot_f32(dy + q0 + t * qs, po + q0 + t * qs, D);
            float* pr = P.data() + t * T;
            float* dr = dS.data() + t * T;
            for (int64_t j = 0; j <= t; j++) pr[j] = pr[j] - lse_t;
            exp_f32(pr, t + 1, pr);
            for (int64_t j = t + 1; j < T; j++) pr[j] = 0.0f;
            for (int64_t j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - di);
          }
          if (dq) sgemm_serial(false, false, T, D, T, scale, dS.data(), T, K, ks, 1.0f, dq + q0, qs);
          if (dk) sgemm_serial(true, false, T, D, T, scale, dS.data(), T, pq + q0, qs, 1.0f, dk + b * T * ks + g * D, ks);
          if (dv) sgemm_serial(true, false, T, D, T, 1.0f, P.data(), T, dy + q0, qs, 1.0f, dv + b * T * ks + g * D, ks);
        }
      }
    }
  });
  set_backward_cost(out, 2.0 * double(B * H * T * T * D) * 5, 2 * att_bytes);
  return out;
}

}  // namespace qat
