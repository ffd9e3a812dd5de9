// KL divergence and same-top-1 against a reference model (models/train/evaluate.h, evaluate_against):
// what llama-perplexity --kl-divergence reports, and what the QAT study tables print beside the loss.
// The forwards here are hand-written logits, so every figure is computed by hand in the test.
#include <cmath>

#include "models/train/evaluate.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

constexpr int64_t kV = 3;

// A LogitsFn whose every position has the same logits (V = 3).
LogitsFn constant_logits(float a, float b, float c) {
  return [=](const Tensor& ids) {
    Tensor out = Tensor::empty({ids.dim(0), ids.dim(1), kV});
    for (int64_t i = 0; i < ids.numel(); i++) {
      out.f32()[i * kV + 0] = a;
      out.f32()[i * kV + 1] = b;
      out.f32()[i * kV + 2] = c;
    }
    return out;
  };
}

// 4 windows of ctx 4 over tokens 0..2 (each window predicts 4 tokens).
const std::vector<int32_t> kVal{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1};
const std::vector<int32_t> kBytes{1, 1, 1};

}  // namespace

TEST_CASE("evaluate_against: KL(reference || model) and same-top-1 by hand; the loss is evaluate_with's", "[eval]") {
  // Reference uniform; model p = (1/2, 1/4, 1/4) (logits log p).
  LogitsFn ref = constant_logits(0, 0, 0);
  LogitsFn model = constant_logits(std::log(0.5f), std::log(0.25f), std::log(0.25f));
  EvalResult r = evaluate_against(model, ref, kV, kVal, kBytes, 2, 4, 0);
  EvalResult plain = evaluate_with(model, kV, kVal, kBytes, 2, 4, 0);
  const double want = (std::log(1.0 / 3) - std::log(0.5) + 2 * (std::log(1.0 / 3) - std::log(0.25))) / 3;
  REQUIRE(r.tokens > 0);
  CHECK(r.tokens == plain.tokens);
  CHECK(r.loss == plain.loss);  // the same sum in the same order
  CHECK(r.kl == Approx(want).epsilon(1e-5));
  CHECK(r.kl_p99 == Approx(want).epsilon(1e-5));
  CHECK(r.same_top1 == 1.0);  // both argmaxes are token 0 (uniform: the first on ties, as llama.cpp)
  CHECK(std::isnan(plain.kl));

  // A model whose top token is 1: no position agrees; KL(uniform || (1/4, 1/2, 1/4)) is the same number.
  EvalResult other = evaluate_against(constant_logits(std::log(0.25f), std::log(0.5f), std::log(0.25f)), ref, kV, kVal,
                                      kBytes, 2, 4, 0);
  CHECK(other.same_top1 == 0.0);
  CHECK(other.kl == Approx(want).epsilon(1e-5));

  // A model against itself: exactly 0 and 1.
  EvalResult self = evaluate_against(model, model, kV, kVal, kBytes, 2, 4, 0);
  CHECK(self.kl == 0.0);
  CHECK(self.same_top1 == 1.0);
}

TEST_CASE("evaluate_against: the p99 is the tail, the mean is the mean", "[eval]") {
  // Every position but those of window 3 agrees with the reference; window 3's differ (a position-dependent
  // model): 1 of 4 windows -> mean = KL / 4, p99 = KL, same-top-1 = 3/4.
  LogitsFn ref = constant_logits(0, 0, 0);
  int64_t calls = 0;
  LogitsFn model = [&](const Tensor& ids) {
    Tensor out = Tensor::zeros({ids.dim(0), ids.dim(1), kV});
    for (int64_t b = 0; b < ids.dim(0); b++, calls++)
      if (calls == 3)
        for (int64_t t = 0; t < ids.dim(1); t++) out.f32()[(b * ids.dim(1) + t) * kV + 1] = std::log(2.0f);
    return out;
  };
  EvalResult r = evaluate_against(model, ref, kV, kVal, kBytes, 1, 4, 4);
  const double kl = std::log(1.0 / 3) - (std::log(0.25) + std::log(0.5) + std::log(0.25)) / 3;
  REQUIRE(r.tokens == 16);
  CHECK(r.same_top1 == 0.75);
  CHECK(r.kl == Approx(kl / 4).epsilon(1e-5));
  CHECK(r.kl_p99 == Approx(kl).epsilon(1e-5));
}

TEST_CASE("evaluate_all: each model's figures are evaluate_against's bit for bit, the reference forward runs once a batch",
          "[eval]") {
  int64_t ref_calls = 0;
  LogitsFn uniform = constant_logits(0, 0, 0);
  LogitsFn ref = [&](const Tensor& ids) {
    ref_calls++;
    Tensor out = uniform(ids);
    out.f32()[1] = 0.75f;  // one position differs from uniform: KL and loss are not symmetric by accident
    return out;
  };
  std::vector<LogitsFn> models{constant_logits(std::log(0.5f), std::log(0.25f), std::log(0.25f)),
                               constant_logits(std::log(0.25f), std::log(0.5f), std::log(0.25f)), uniform};
  std::vector<EvalResult> all = evaluate_all(models, ref, kV, kVal, kBytes, 2, 4, 0);
  REQUIRE(all.size() == 4);
  CHECK(ref_calls == 2);  // 4 windows, 2 a batch: once per batch for the three models together
  const EvalResult own = evaluate_with(ref, kV, kVal, kBytes, 2, 4, 0);
  CHECK(all[0].loss == own.loss);
  CHECK(all[0].tokens == own.tokens);
  CHECK(std::isnan(all[0].kl));
  for (size_t m = 0; m < models.size(); m++) {
    const EvalResult one = evaluate_against(models[m], ref, kV, kVal, kBytes, 2, 4, 0);
    CHECK(all[m + 1].loss == one.loss);
    CHECK(all[m + 1].bpb == one.bpb);
    CHECK(all[m + 1].kl == one.kl);
    CHECK(all[m + 1].kl_p99 == one.kl_p99);
    CHECK(all[m + 1].same_top1 == one.same_top1);
  }
  CHECK(all[1].kl != all[2].kl);  // the models' sums are kept apart
}
