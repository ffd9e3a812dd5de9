// The timed training step of the bench subcommands (see train_step.h).
#include "tools/bench/train_step.h"

#include <optional>

#include "src/core/rng.h"
#include "tools/bench/bench.h"

namespace qat::bench {

StepContender make_contender(const std::string& scheme, const ModelConfig& cfg) {
  StepContender c;
  c.scheme = scheme;
  std::optional<QatConfig> q;
  if (scheme != "fp32") q = QatConfig::make(scheme, "", cfg.n_layers, cfg.tied);
  c.model = std::make_unique<Transformer>(cfg, q ? &*q : nullptr);
  c.model->init_weights(1337);
  if (q) c.model->init_qat_scales();
  c.adam = std::make_unique<AdamW>(c.model->params, AdamWConfig{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f});
  return c;
}

Batches random_batches(const ModelConfig& cfg, int64_t B, int n) {
  Batches b;
  Rng rng(7);
  for (int i = 0; i < n; i++) {
    std::vector<int32_t> seq(size_t(B * (cfg.context + 1)));
    for (int32_t& id : seq) id = int32_t(rng.below(uint64_t(cfg.vocab)));
    std::vector<int32_t> x, y;
    for (int64_t r = 0; r < B; r++)
      for (int64_t t = 0; t < cfg.context; t++) {
        x.push_back(seq[size_t(r * (cfg.context + 1) + t)]);
        y.push_back(seq[size_t(r * (cfg.context + 1) + t + 1)]);
      }
    b.ids.push_back(Tensor::from_s32({B, cfg.context}, x));
    b.targets.push_back(Tensor::from_s32({B, cfg.context}, y));
  }
  return b;
}

void train_step(StepContender& c, Batches& b) {
  Transformer& m = *c.model;
  m.params.zero_grad();
  const size_t i = b.next++ % b.ids.size();
  Tensor loss = m.loss(b.ids[i], b.targets[i]);
  loss.backward();
  loss = Tensor();
  clip_grad_norm(m.params, 1.0f);
  c.adam->step(1e-4f);
  if (m.qat) m.clamp_qat_scales();
}

double time_steps(StepContender& c, Batches& b, int64_t steps) {
  std::vector<double> t;
  for (int64_t s = 0; s < steps; s++) {
    auto t0 = Clock::now();
    train_step(c, b);
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

void step_rounds(std::vector<StepContender>& cs, Batches& batches, int64_t rounds, int64_t steps) {
  for (StepContender& c : cs) {
    c.t.clear();
    train_step(c, batches);  // warm-up: first-touch allocations, packing
  }
  for (int64_t r = 0; r < rounds; r++)
    for (StepContender& c : cs) c.t.push_back(time_steps(c, batches, steps));
}

}  // namespace qat::bench
