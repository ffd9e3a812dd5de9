// QAT ops: fake quant is exactly dequantize(quantize(x)); STE and LSQ gradients equal their formulas
// (computed here independently, in double) and finite differences where the function is
// differentiable; the integer-kernel linear agrees with f32 math on the dequantized operands.
#include <cmath>

#include "src/core/rng.h"
#include "src/quant/fake_quant.h"
#include "kernels/ref/quant.h"
#include "src/quant/scale_init.h"
#include "src/quant/scheme.h"
#include "tests/helpers.h"

using namespace qat;

namespace {
constexpr float kLinearTol = 1e-5f;  // integer-kernel vs f32 matmul of dequantized operands (relative)

Tensor scales_for(const Tensor& w, const LayerQuant& q, const char* method) {
  int64_t N = w.dim(0), K = w.dim(1);
  Tensor s = Tensor::empty({N, K / q.group(K)});
  init_scales(w.f32(), N, K, q, method, s.f32());
  return s.set_requires_grad();
}
}  // namespace

TEST_CASE("fake quant equals dequantize(quantize(w)), codes in range", "[qat]") {
  for (const char* scheme : {"q4_0", "q8_0", "w8a8", "w4", "w8"}) {
    LayerQuant q = scheme_layer(scheme);
    Tensor w = Tensor::randn({7, 64}, 3, 0.5f);
    Tensor s = scales_for(w, q, "mse");
    Tensor wh = fake_quant_weight(w, s, q, false);
    std::vector<int8_t> codes;
    std::vector<float> s16;
    quantize_weight(w, s, q, &codes, &s16);
    std::vector<float> ref(codes.size());
    dequantize(codes.data(), s16.data(), int64_t(codes.size()), q.group(64), ref.data());
    INFO(scheme);
    REQUIRE(wh.to_vector() == ref);
    for (int8_t c : codes) REQUIRE((c >= q.code_min() && c <= q.code_max()));
    for (float v : s16) REQUIRE(v == round_to_f16(v));  // scales are f16 values
  }
}

TEST_CASE("oscillation dampening moves in-range weights toward their grid value, leaves clipped ones", "[qat]") {
  for (const char* scheme : {"q4_0", "w4"}) {
    LayerQuant q = scheme_layer(scheme);
    const int64_t N = 5, K = 64, G = q.group(K);
    Tensor w = Tensor::randn({N, K}, 11, 0.5f);
    Tensor s = scales_for(w, q, "mse");
    for (int64_t e = 0; e < N * K; e += 9) w.f32()[e] *= 3.0f;  // some weights beyond the clip range
    const std::vector<float> before = w.to_vector();
    const std::vector<float> wh = fake_quant_weight(w, s, q, false).to_vector();
    std::vector<int8_t> codes;
    std::vector<float> s16;
    quantize_weight(w, s, q, &codes, &s16);
    const float rate = 0.25f;
    dampen_toward_grid(w.f32(), s.f32(), N, K, q, rate);
    int in_range = 0, clipped = 0;
    for (int64_t e = 0; e < N * K; e++) {
      const float v = before[size_t(e)] / s16[size_t(e / G)];
      INFO(scheme << " element " << e);
      if (v >= float(q.code_min()) && v <= float(q.code_max())) {
        in_range++;
        REQUIRE(w.f32()[e] == before[size_t(e)] - rate * (before[size_t(e)] - wh[size_t(e)]));
      } else {
        clipped++;
        REQUIRE(w.f32()[e] == before[size_t(e)]);
      }
    }
    REQUIRE(in_range > 0);
    REQUIRE(clipped > 0);
    // The codes never change: a weight moves toward the middle of its own bin.
    std::vector<int8_t> after;
    quantize_weight(w, s, q, &after, &s16);
    REQUIRE(after == codes);
  }
}

TEST_CASE("STE and LSQ gradients equal their formulas", "[qat][lsq]") {
  for (bool identity : {false, true})
    for (const char* scheme : {"q4_0", "w8a8", "w4"}) {
      LayerQuant q = scheme_layer(scheme);
      const int64_t N = 5, K = 96, G = q.group(K);
      Tensor w = Tensor::randn({N, K}, 11, 1.0f).set_requires_grad();
      Tensor s = scales_for(w.detach(), q, "minmax");
      float* ps = s.f32();
      for (int64_t g = 0; g < s.numel(); g++) ps[g] *= 0.6f;  // shrink: many weights clip
      Tensor R = Tensor::randn({N, K}, 12);
      sum(mul(fake_quant_weight(w, s, q, identity), R)).backward();
      // Independent formula: v = w/s16, in = lo <= v <= hi;  dw = R [in or identity];
      // ds = 1/sqrt(G hi) sum_group R (in ? round(v) - v : clamp(round(v))).
      const float* pw = w.f32();
      const float* pr = R.f32();
      std::vector<float> gw = w.grad().to_vector(), gs = s.grad().to_vector();
      double max_dw = 0, max_ds = 0, max_s = 0;
      for (int64_t g = 0; g < N * K / G; g++) {
        double s16 = learned_scale(ps[g]), acc = 0;
        for (int64_t e = g * G; e < (g + 1) * G; e++) {
          double v = double(pw[e] / float(s16));
          bool in = v >= q.code_min() && v <= q.code_max();
          double code = std::min<double>(q.code_max(), std::max<double>(q.code_min(), std::round(v)));
          max_dw = std::max(max_dw, std::fabs(gw[size_t(e)] - ((in || identity) ? pr[e] : 0.0)));
          acc += pr[e] * (in ? code - v : code);
        }
        double ds = acc / std::sqrt(double(G) * q.code_max());
        max_ds = std::max(max_ds, std::fabs(gs[size_t(g)] - ds));
        max_s = std::max(max_s, std::fabs(ds));
      }
      INFO(scheme << (identity ? " identity STE" : " clipped STE") << ": max dw diff " << max_dw << ", max ds diff " << max_ds);
      CHECK(max_dw == 0.0);
      CHECK(max_ds <= 1e-5 * std::max(1.0, max_s));
    }
}

TEST_CASE("Quant-Noise: a random fraction p is fake-quantized, STE there and identity elsewhere", "[qat][lsq]") {
  LayerQuant q = scheme_layer("q4_0");
  const int64_t N = 8, K = 96, G = q.group(K);
  Tensor w = Tensor::randn({N, K}, 21, 1.0f).set_requires_grad();
  Tensor s = scales_for(w.detach(), q, "minmax");
  for (int64_t g = 0; g < s.numel(); g++) s.f32()[g] *= 0.6f;  // some weights clip
  const std::vector<float> wh = fake_quant_weight(w.detach(), s.detach(), q, false).to_vector();
  // p = 0: the identity; p = 1: exactly fake_quant_weight.
  REQUIRE(fake_quant_weight_partial(w.detach(), s.detach(), q, false, 0.0f, 7, 3).to_vector() == w.to_vector());
  REQUIRE(fake_quant_weight_partial(w.detach(), s.detach(), q, false, 1.0f, 7, 3).to_vector() == wh);
  const float p = 0.5f;
  Tensor R = Tensor::randn({N, K}, 22);
  Tensor out = fake_quant_weight_partial(w, s, q, false, p, 7, 3);
  sum(mul(out, R)).backward();
  const float* pw = w.f32();
  const float* pr = R.f32();
  std::vector<float> o = out.to_vector(), gw = w.grad().to_vector(), gs = s.grad().to_vector();
  int quantized = 0;
  for (int64_t g = 0; g < N * K / G; g++) {
    double s16 = learned_scale(s.f32()[g]), acc = 0;
    for (int64_t e = g * G; e < (g + 1) * G; e++) {
      const bool m = rng_uniform(7, 3, uint64_t(e)) < p;  // the documented mask
      quantized += m;
      INFO("element " << e << (m ? " quantized" : " f32"));
      REQUIRE(o[size_t(e)] == (m ? wh[size_t(e)] : pw[e]));
      double v = double(pw[e] / float(s16));
      bool in = v >= q.code_min() && v <= q.code_max();
      double code = std::min<double>(q.code_max(), std::max<double>(q.code_min(), std::round(v)));
      REQUIRE(gw[size_t(e)] == (m ? (in ? pr[e] : 0.0f) : pr[e]));
      if (m) acc += pr[e] * (in ? code - v : code);
    }
    CHECK(std::fabs(gs[size_t(g)] - acc / std::sqrt(double(G) * q.code_max())) <= 1e-5);
  }
  CHECK(quantized > N * K * 4 / 10);
  CHECK(quantized < N * K * 6 / 10);
  // Another stream draws another mask.
  REQUIRE(fake_quant_weight_partial(w.detach(), s.detach(), q, false, p, 7, 4).to_vector() != o);
}

TEST_CASE("LSQ scale gradient matches finite differences where the function is differentiable", "[qat][lsq]") {
  // With every weight clipped, w_hat = s16 * (lo or hi): differentiable in s, d w_hat/ds = code, which
  // is also LSQ's gradient (times its gradient scale g, which we divide out). Weights are zero there.
  LayerQuant q = scheme_layer("q4_0");
  Tensor w = Tensor::randn({2, 32}, 5, 1.0f);
  float* pw = w.f32();
  for (int64_t i = 0; i < w.numel(); i++) pw[i] = (pw[i] < 0 ? -3.0f : 3.0f) + 0.1f * pw[i];
  Tensor s = Tensor::full({2, 1}, 0.05f).set_requires_grad();  // w/s ~ +-60: far outside [-8, 7]
  w.set_requires_grad();
  Tensor R = Tensor::randn({2, 32}, 6);
  sum(mul(fake_quant_weight(w, s, q, false), R)).backward();
  const double g = 1.0 / std::sqrt(32.0 * 7.0);
  for (int64_t r = 0; r < 2; r++) {
    double fd = 0;  // d/ds sum R * s16 * code = sum R * code, exactly (f16 rounding aside)
    for (int64_t j = 0; j < 32; j++) fd += R.f32()[r * 32 + j] * (pw[r * 32 + j] < 0 ? -8.0 : 7.0);
    INFO("row " << r << ": LSQ " << s.grad().f32()[r] / g << " vs finite difference " << fd);
    CHECK(std::fabs(s.grad().f32()[r] / g - fd) < 1e-4 * std::max(1.0, std::fabs(fd)));
  }
  for (float v : w.grad().to_vector()) CHECK(v == 0.0f);  // all clipped: no gradient to the weights
}

TEST_CASE("quantized_linear: the integer forward equals f32 math on dequantized operands; STE backward", "[qat][qlinear]") {
  for (const char* scheme : {"q4_0", "q8_0", "w8a8"}) {
    LayerQuant q = scheme_layer(scheme);
    const int64_t K = 96, N = 17;
    Tensor x = Tensor::randn({3, 3, K}, 21).set_requires_grad();
    Tensor w = Tensor::randn({N, K}, 22, 0.3f).set_requires_grad();
    Tensor s = scales_for(w.detach(), q, "mse");
    Tensor y = quantized_linear(x, w, s, Tensor(), q, false);
    REQUIRE(y.shape() == Shape{3, 3, N});
    Tensor xh, wh;
    {
      NoGrad ng;
      xh = fake_quant_act(x, q.a, Tensor());
      wh = fake_quant_weight(w, s, q, false);
    }
    Tensor ref = linear(xh.detach(), wh.detach());
    INFO(scheme << ": maxdiff " << test::max_abs_diff(y, ref) << " of max " << test::max_abs(ref));
    CHECK(test::max_abs_diff(y, ref) <= kLinearTol * test::max_abs(ref));
    // Backward: dx = dy W_hat (STE through the activation rounding), dW = mask (dy^T x_hat), ds = LSQ.
    Tensor dy = Tensor::randn({3, 3, N}, 23);
    sum(mul(y, dy)).backward();
    Tensor x2 = xh.detach().set_requires_grad(), w2 = w.detach().clone().set_requires_grad();
    Tensor s2 = s.detach().clone().set_requires_grad();
    sum(mul(linear(x2, fake_quant_weight(w2, s2, q, false)), dy)).backward();
    CHECK(test::max_abs_diff(x.grad(), x2.grad()) <= 1e-5f * test::max_abs(x2.grad()));
    CHECK(test::max_abs_diff(w.grad(), w2.grad()) <= 1e-5f * test::max_abs(w2.grad()));
    CHECK(test::max_abs_diff(s.grad(), s2.grad()) <= 1e-4f * test::max_abs(s2.grad()));
  }
}

TEST_CASE("static activation scale: LSQ gradient and clipping", "[qat][lsq]") {
  Tensor x = Tensor::randn({4, 32}, 31, 2.0f).set_requires_grad();
  Tensor s = Tensor::full({1}, 0.02f).set_requires_grad();  // clips everything beyond |x| > 2.54
  Tensor R = Tensor::randn({4, 32}, 32);
  sum(mul(fake_quant_act(x, AQuant::int8_static, s), R)).backward();
  double s16 = learned_scale(0.02f), acc = 0;
  for (int64_t i = 0; i < 128; i++) {
    double v = x.f32()[i] / float(s16);
    bool in = v >= -127 && v <= 127;
    double code = std::min(127.0, std::max(-127.0, std::round(v)));
    REQUIRE(x.grad().f32()[i] == (in ? R.f32()[i] : 0.0f));
    acc += R.f32()[i] * (in ? code - v : code);
  }
  double ds = acc / std::sqrt(128.0 * 127.0);
  CHECK(std::fabs(s.grad().f32()[0] - ds) <= 1e-5 * std::max(1.0, std::fabs(ds)));
}

TEST_CASE("scale init: MSE is never worse than minmax; PTQ minmax is ggml's quantizer", "[qat][ptq]") {
  Tensor w = Tensor::randn({16, 128}, 41, 1.0f);
  for (const char* scheme : {"q4_0", "q8_0", "w8a8", "w4"}) {
    LayerQuant q = scheme_layer(scheme);
    Tensor smm = scales_for(w, q, "minmax"), smse = scales_for(w, q, "mse");
    NoGrad ng;
    Tensor a = fake_quant_weight(w, smm, q, false), b = fake_quant_weight(w, smse, q, false);
    double e_mm = 0, e_mse = 0;
    for (int64_t i = 0; i < w.numel(); i++) {
      e_mm += std::pow(double(w.f32()[i] - a.f32()[i]), 2);
      e_mse += std::pow(double(w.f32()[i] - b.f32()[i]), 2);
    }
    INFO(scheme << ": squared error minmax " << e_mm << ", mse " << e_mse);
    CHECK(e_mse <= e_mm);
  }
  std::vector<int8_t> codes(16 * 128);
  std::vector<float> d(16 * 4);
  ptq_quantize(w.f32(), 16, 128, scheme_layer("q4_0"), "minmax", codes.data(), d.data());
  std::vector<BlockQ4_0> ours(64), ggml(64);
  q4_0_from_codes(codes.data(), d.data(), 16 * 128, ours.data());
  quantize_q4_0(w.f32(), 16 * 128, ggml.data());
  REQUIRE(std::memcmp(ours.data(), ggml.data(), 64 * sizeof(BlockQ4_0)) == 0);
}

TEST_CASE("schemes and per-layer overrides", "[qat][scheme]") {
  QatConfig c = QatConfig::make("q4_0", "lm_head=q8_0,layers.1=f32,mlp=w8a8", 3, false);
  REQUIRE(c.embed.name() == "q4_0");
  REQUIRE(c.lm_head.name() == "q8_0");
  REQUIRE(c.linear(0, Proj::q).name() == "q4_0");
  REQUIRE(c.linear(0, Proj::up).name() == "w8a8");
  REQUIRE(c.linear(1, Proj::q).name() == "f32");
  REQUIRE(c.linear(1, Proj::down).name() == "w8a8");  // later items win
  QatConfig t = QatConfig::make("q4_0", "embed=q8_0", 2, true);
  REQUIRE(t.lm_head.name() == "q8_0");  // tied: one format
  REQUIRE_THROWS_WITH(QatConfig::make("q4_0", "embed,lm_head=q8_0", 2, true), Catch::Contains("tied"));
  REQUIRE_THROWS_WITH(QatConfig::make("q5_0", "", 2, true), Catch::Contains("unknown quantization scheme"));
  REQUIRE_THROWS_WITH(QatConfig::make("q4_0", "layers.9", 2, true), Catch::Contains("layer index"));
  REQUIRE_THROWS_WITH(QatConfig::make("q4_0", "attention", 2, true), Catch::Contains("unknown layer"));
  QatConfig r = QatConfig::from_json(Json::parse(c.to_json().dump()), 3, false);
  REQUIRE(r.to_json().dump() == c.to_json().dump());
}
