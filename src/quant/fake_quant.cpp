// QAT ops (see fake_quant.h). Threads split rows of W (or elements), never a group's sum: the LSQ
// scale gradients are summed in a fixed order, so results do not depend on the thread count.
#include "src/quant/fake_quant.h"

#include <cmath>
#include <cstring>

#include "kernels/qgemm.h"
#include "src/ops/blas.h"
#include "src/core/rng.h"
#include "src/ops/strided.h"
#include "kernels/ref/quant.h"
#include "src/util/profile.h"

namespace qat {

namespace {

void check_weight(const char* op, const Tensor& w, const Tensor& scale, const LayerQuant& q) {
  QAT_CHECK(w.ndim() == 2 && w.is_contiguous(), op, ": weight must be a contiguous (N, K) tensor, got ", w.shape_string());
  QAT_CHECK(q.quantized(), op, ": layer format is f32");
  QAT_CHECK(!q.format().post_training, op, ": ", q.name(), " is a post-training format (QAT does not train it)");
  int64_t N = w.dim(0), K = w.dim(1), G = q.group(K);
  QAT_CHECK(K % G == 0, op, ": K = ", K, " is not a multiple of the group size ", G);
  if (scale.shape() != Shape{N, K / G} || !scale.is_contiguous())
    fail(op, ": scale has shape ", scale.shape_string(), ", expected ", shape_str(Shape{N, K / G}));
}

// The STE's clip range: v = w / s inside [lo, hi] gets the gradient (and is what dampening may move).
inline bool inside_clip_range(float v, int lo, int hi) { return v >= float(lo) && v <= float(hi); }

// dW_hat (N, K) -> dw (masked STE) and ds (LSQ), for codes q and scales s16 of w. `quantized` (N, K) or
// null (every element): elements it marks 0 were not quantized (Quant-Noise) and pass dW_hat straight to
// dw, adding nothing to ds.
void weight_backward(const float* dwh, const float* w, const int8_t* q, const float* s16, int64_t N, int64_t K,
                     int64_t G, int lo, int hi, bool identity_ste, float* dw, float* ds,
                     const uint8_t* quantized = nullptr) {
  const double gscale = 1.0 / std::sqrt(double(G) * double(hi));
  const int64_t groups_per_row = K / G;
#pragma omp parallel for schedule(static) if (N * K > 65536)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t gi = 0; gi < groups_per_row; gi++) {
      const int64_t g = n * groups_per_row + gi, e0 = n * K + gi * G;
      const float s = s16[g];
      double acc = 0;
      for (int64_t e = e0; e < e0 + G; e++) {
        if (quantized && !quantized[e]) {
          if (dw) dw[e] += dwh[e];
          continue;
        }
        float v = w[e] / s;
        bool in = inside_clip_range(v, lo, hi);
        if (dw && (in || identity_ste)) dw[e] += dwh[e];
        acc += double(dwh[e]) * (in ? double(q[e]) - double(v) : double(q[e]));
      }
      if (ds) ds[g] += float(gscale * acc);
    }
  }
}

// x (R, K) -> its fake-quantized values under a dynamic activation rule (the reference rule).
void act_dequant(AQuant a, const float* x, int64_t R, int64_t K, float* out) {
  std::vector<int8_t> q(static_cast<size_t>(R * K));
  if (a == AQuant::q8_0) {
    std::vector<float> d(static_cast<size_t>(R * K / QK));
    quantize_int8_ggml(x, R * K, QK, ScaleRound::f16, q.data(), d.data());
    dequantize(q.data(), d.data(), R * K, QK, out);
  } else {
    std::vector<float> d(static_cast<size_t>(R));
    quantize_per_token_int8(x, R, K, q.data(), d.data());
    dequantize(q.data(), d.data(), R * K, K, out);
  }
}

}  // namespace

void quantize_weight(const Tensor& w, const Tensor& scale, const LayerQuant& q, std::vector<int8_t>* codes,
                     std::vector<float>* s16) {
  check_weight("quantize_weight", w, scale, q);
  int64_t N = w.dim(0), K = w.dim(1), G = q.group(K);
  codes->resize(size_t(N * K));
  s16->resize(size_t(N * K / G));
  // The kernel table's learned quantizer: quantize_learned bit for bit (tests/test_kernels.cpp), in SIMD.
  quantize_weights_learned(w.f32(), N * K, G, scale.f32(), q.code_min(), q.code_max(), codes->data(), s16->data());
}

void dampen_toward_grid(float* w, const float* scale, int64_t N, int64_t K, const LayerQuant& q, float rate) {
  QAT_CHECK(q.quantized(), "dampen_toward_grid: layer format is f32");
  const int64_t G = q.group(K);
  QAT_CHECK(K % G == 0, "dampen_toward_grid: K = ", K, " is not a multiple of the group size ", G);
  const int lo = q.code_min(), hi = q.code_max();
  std::vector<int8_t> codes(static_cast<size_t>(N * K));
  std::vector<float> s16(static_cast<size_t>(N * K / G));
#pragma omp parallel for schedule(static) if (N * K > 65536)
  for (int64_t n = 0; n < N; n++) {
    float* row = w + n * K;
    int8_t* c = codes.data() + n * K;
    float* sr = s16.data() + n * (K / G);
    quantize_learned(row, K, G, scale + n * (K / G), lo, hi, c, sr);
    for (int64_t k = 0; k < K; k++) {
      const float s = sr[k / G], v = row[k] / s;
      if (inside_clip_range(v, lo, hi)) row[k] -= rate * (row[k] - float(c[k]) * s);
    }
  }
}

double sqnr_db(const float* x, const float* x_hat, int64_t n) {
  double sig = 0, noise = 0;
  for (int64_t i = 0; i < n; i++) {
    sig += double(x[i]) * x[i];
    double e = double(x[i]) - x_hat[i];
    noise += e * e;
  }
  if (noise == 0) return INFINITY;
  return 10.0 * std::log10(sig / noise);
}

Tensor fake_quant_weight(const Tensor& w, const Tensor& scale, const LayerQuant& q, bool identity_ste) {
  return fake_quant_weight_partial(w, scale, q, identity_ste, 1.0f, 0, 0);
}

Tensor fake_quant_weight_partial(const Tensor& w, const Tensor& scale, const LayerQuant& q, bool identity_ste,
                                 float p, uint64_t seed, uint64_t stream) {
  QAT_CHECK(p >= 0.0f && p <= 1.0f, "fake_quant_weight: the quantized fraction must be in [0, 1], got ", p);
  check_weight("fake_quant_weight", w, scale, q);
  int64_t N = w.dim(0), K = w.dim(1), G = q.group(K);
  QAT_PROF("fake_quant_weight", forward, 3.0 * double(N * K), 9.0 * double(N * K));
  auto codes = std::make_shared<std::vector<int8_t>>();
  auto s16 = std::make_shared<std::vector<float>>();
  quantize_weight(w, scale, q, codes.get(), s16.get());
  Tensor out = Tensor::empty({N, K});
  dequantize(codes->data(), s16->data(), N * K, G, out.f32());
  std::shared_ptr<std::vector<uint8_t>> quantized;  // Quant-Noise mask; null when every element is quantized
  if (p < 1.0f) {
    quantized = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(N * K));
    const float* pw = w.f32();
    float* po = out.f32();
    uint8_t* pm = quantized->data();
#pragma omp parallel for schedule(static) if (N * K > 65536)
    for (int64_t e = 0; e < N * K; e++) {
      pm[e] = rng_uniform(seed, stream, uint64_t(e)) < p;
      if (!pm[e]) po[e] = pw[e];
    }
  }
  record(out, "fake_quant_weight", {w, scale},
         [w, scale, q, identity_ste, codes, s16, quantized, N, K, G](const Tensor&, const Tensor& dout) {
           float* dw = w.requires_grad() ? grad_buffer(w).f32() : nullptr;
           float* ds = scale.requires_grad() ? grad_buffer(scale).f32() : nullptr;
           weight_backward(dout.f32(), w.f32(), codes->data(), s16->data(), N, K, G, q.code_min(), q.code_max(),
                           identity_ste, dw, ds, quantized ? quantized->data() : nullptr);
         });
  return out;
}

Tensor fake_quant_act(const Tensor& x_in, AQuant a, const Tensor& static_scale) {
  if (a == AQuant::none) return x_in;
  Tensor x = contiguous(x_in);
  int64_t K = x.dim(-1), R = x.numel() / K;
  QAT_PROF("fake_quant_act", forward, 3.0 * double(R * K), 8.0 * double(R * K));
  Tensor out = Tensor::empty(x.shape());
  if (a == AQuant::q8_0 || a == AQuant::int8_token) {
    QAT_CHECK(a != AQuant::q8_0 || K % QK == 0, "fake_quant_act: q8_0 needs K % 32 == 0, got ", K);
    act_dequant(a, x.f32(), R, K, out.f32());
    record(out, "fake_quant_act", {x}, [x](const Tensor&, const Tensor& dout) { accumulate(grad_buffer(x), dout); });
    return out;
  }
  // int8_static: one learned scale for the tensor, LSQ as for weights with G = every element.
  QAT_CHECK(static_scale.defined() && static_scale.numel() == 1, "fake_quant_act: int8_static needs a (1) scale");
  int64_t n = x.numel();
  auto codes = std::make_shared<std::vector<int8_t>>(static_cast<size_t>(n));
  float s16 = 0;
  quantize_learned(x.f32(), n, n, static_scale.f32(), -127, 127, codes->data(), &s16);
  dequantize(codes->data(), &s16, n, n, out.f32());
  record(out, "fake_quant_act", {x, static_scale}, [x, static_scale, codes, s16, n](const Tensor&, const Tensor& dout) {
    float* dx = x.requires_grad() ? grad_buffer(x).f32() : nullptr;
    float* ds = static_scale.requires_grad() ? grad_buffer(static_scale).f32() : nullptr;
    weight_backward(dout.f32(), x.f32(), codes->data(), &s16, 1, n, n, -127, 127, false, dx, ds);
  });
  return out;
}

Tensor quantized_linear(const Tensor& x_in, const Tensor& w, const Tensor& scale, const Tensor& act_scale,
                        const LayerQuant& q, bool identity_ste) {
  if (!q.served()) {  // weight-only or static activations: fake quant + f32 matmul (not served)
    return linear(fake_quant_act(x_in, q.a, act_scale), fake_quant_weight(w, scale, q, identity_ste));
  }
  check_weight("quantized_linear", w, scale, q);
  Tensor x = contiguous(x_in);
  int64_t N = w.dim(0), K = w.dim(1), G = q.group(K), R = x.numel() / K;
  if (x.dim(-1) != K) shape_error("quantized_linear", x.shape(), w.shape());
  const double flops = 2.0 * double(R * N * K);
  QAT_PROF("quantized_linear", forward, flops, 4.0 * double(R * K + R * N) + double(N * K));
  auto codes = std::make_shared<std::vector<int8_t>>();
  auto s16 = std::make_shared<std::vector<float>>();
  quantize_weight(w, scale, q, codes.get(), s16.get());
  // The served computation: pack the codes for the active kernel table, quantize x by the reference
  // rule, integer dot products, the f32 epilogue of kernels.h.
  thread_local PackedWeights packed;
  pack_weights(q.format().family, codes->data(), s16->data(), N, K, &packed);
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor out = Tensor::empty(out_shape);
  qgemm(packed, x.f32(), R, out.f32());
  record(out, "quantized_linear", {x, w, scale},
         [x, w, scale, q, identity_ste, codes, s16, N, K, G, R](const Tensor&, const Tensor& dout) {
           const float* dy = dout.f32();
           if (Tensor dx = grad_buffer(x); dx.defined()) {  // dx (R, K) += dy (R, N) W_hat (N, K)
             std::vector<float> wh(static_cast<size_t>(N * K));
             dequantize(codes->data(), s16->data(), N * K, G, wh.data());
             sgemm(false, false, R, K, N, 1.0f, dy, N, wh.data(), K, 1.0f, dx.f32(), K);
           }
           if (!w.requires_grad() && !scale.requires_grad()) return;
           std::vector<float> xh(static_cast<size_t>(R * K)), dwh(static_cast<size_t>(N * K));
           act_dequant(q.a, x.f32(), R, K, xh.data());
           sgemm(true, false, N, K, R, 1.0f, dy, N, xh.data(), K, 0.0f, dwh.data(), K);  // dW_hat = dy^T x_hat
           weight_backward(dwh.data(), w.f32(), codes->data(), s16->data(), N, K, G, q.code_min(), q.code_max(),
                           identity_ste, w.requires_grad() ? grad_buffer(w).f32() : nullptr,
                           scale.requires_grad() ? grad_buffer(scale).f32() : nullptr);
         });
  set_backward_cost(out, 2 * flops, 4.0 * double(2 * R * K + R * N + 3 * N * K));
  return out;
}

Tensor fixed_linear(const Tensor& x_in, const Tensor& w_in) {
  Tensor x = contiguous(x_in), w = contiguous(w_in);
  QAT_CHECK(w.ndim() == 2, "fixed_linear: weight must be (N, K), got ", w.shape_string());
  int64_t K = x.dim(-1), N = w.dim(0), R = x.numel() / (K ? K : 1);
  if (w.dim(1) != K) shape_error("fixed_linear", x.shape(), w.shape());
  QAT_PROF("fixed_linear", forward, 2.0 * double(R * N * K), 4.0 * double(R * K + N * K + R * N));
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor out = Tensor::empty(out_shape);
  gemm_f32(x.f32(), K, w.f32(), K, R, N, K, out.f32(), N);
  record(out, "fixed_linear", {x, w}, [x, w, R, N, K](const Tensor&, const Tensor& dout) {
    if (Tensor dx = grad_buffer(x); dx.defined())
      sgemm(false, false, R, K, N, 1.0f, dout.f32(), N, w.f32(), K, 1.0f, dx.f32(), K);
    if (Tensor dw = grad_buffer(w); dw.defined())
      sgemm(true, false, N, K, R, 1.0f, dout.f32(), N, x.f32(), K, 1.0f, dw.f32(), K);
  });
  return out;
}

}  // namespace qat
