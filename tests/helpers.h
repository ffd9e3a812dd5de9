// Test helpers: random tensors, bitwise comparison, and the finite-difference gradient oracle.
#pragma once
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "src/core/parallel.h"
#include "models/config.h"
#include "src/ops/ops.h"

namespace qat::test {

// The tiny preset reshaped for the serving tests: grouped-query attention (4 heads, 2 KV heads),
// d_model 64, ffn 96, vocab 96.
inline ModelConfig tiny_gqa_config() {
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = 96;
  c.d_model = 64;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn = 96;
  return c;
}

// The smallest shape whose every quantized K is a whole number of ternary blocks (256): d_model 256,
// ffn 256, GQA 4 heads / 2 KV heads, vocab 96 (the tq2_0 / tq1_0 train = serve and GGUF tests).
inline ModelConfig tiny_ternary_config() {
  ModelConfig c = tiny_gqa_config();
  c.d_model = 256;
  c.ffn = 256;
  return c;
}

inline Tensor randn(const Shape& s, uint64_t seed, float stddev = 1.0f, bool grad = true) {
  Tensor t = Tensor::randn(s, seed, stddev);
  if (grad) t.set_requires_grad();
  return t;
}

inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.clone(), cb = b.clone();
  return std::memcmp(ca.impl->storage->data, cb.impl->storage->data, ca.nbytes()) == 0;
}

// max |a - b| over elements (f32, same shape).
inline float max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  float m = 0;
  for (size_t i = 0; i < va.size(); i++) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

inline float max_abs(const Tensor& a) {
  float m = 0;
  for (float v : a.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}

// Named tolerances of the finite-difference oracle (f32 central differences).
struct FdTol {
  float eps = 1e-2f;   // step
  float tol = 1e-2f;   // max |analytic - numeric| <= tol * max(1, max |numeric|)
  int max_checks = 64;  // elements probed per input (spread evenly), to keep the suite fast
};

// Checks d(sum(f(inputs) * R))/d(input) from backward() against central differences, for every input
// that requires grad. R is a fixed random tensor, so every output element matters.
inline void check_gradients(const std::string& name, std::vector<Tensor> inputs,
                            const std::function<Tensor(const std::vector<Tensor>&)>& f, FdTol tol = {}) {
  INFO("gradient check: " << name);
  Tensor out = f(inputs);
  Tensor R = Tensor::randn(out.shape(), 12345);
  auto loss_value = [&]() {
    NoGrad ng;
    std::vector<float> o = f(inputs).to_vector(), r = R.to_vector();
    double s = 0;
    for (size_t i = 0; i < o.size(); i++) s += double(o[i]) * r[i];
    return s;
  };
  for (Tensor& t : inputs) if (t.requires_grad()) t.zero_grad();
  sum(mul(out, R)).backward();
  for (size_t k = 0; k < inputs.size(); k++) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    REQUIRE(x.grad().defined());
    std::vector<float> analytic = x.grad().to_vector();
    float* px = x.f32();
    REQUIRE(x.is_contiguous());
    int64_t n = x.numel();
    int64_t step = std::max<int64_t>(1, n / tol.max_checks);
    float maxdiff = 0, maxnum = 0;
    int64_t worst = -1;
    std::vector<std::pair<float, float>> first;
    for (int64_t i = 0; i < n; i += step) {
      float orig = px[i];
      px[i] = orig + tol.eps;
      double lp = loss_value();
      px[i] = orig - tol.eps;
      double lm = loss_value();
      px[i] = orig;
      float numeric = float((lp - lm) / (2.0 * tol.eps));
      float d = std::fabs(numeric - analytic[size_t(i)]);
      if (d > maxdiff) { maxdiff = d; worst = i; }
      maxnum = std::max(maxnum, std::fabs(numeric));
      if (first.size() < 4) first.push_back({analytic[size_t(i)], numeric});
    }
    INFO("input " << k << " shape " << x.shape_string() << ": maxdiff " << maxdiff << " at " << worst
                  << ", max |numeric| " << maxnum << "; first (analytic, numeric): "
                  << (first.size() > 0 ? std::to_string(first[0].first) + "," + std::to_string(first[0].second) : "")
                  << (first.size() > 1 ? " " + std::to_string(first[1].first) + "," + std::to_string(first[1].second) : ""));
    CHECK(maxdiff <= tol.tol * std::max(1.0f, maxnum));
  }
}

}  // namespace qat::test
