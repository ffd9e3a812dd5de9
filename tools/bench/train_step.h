// The training step that `bench train`, `bench torch` and `bench shapes` time: a model FP32 or under a
// QAT scheme with its AdamW state, random token batches, the step of models/train/trainer.cpp without
// data loading, schedule or metrics, and interleaved rounds of it. Read next: train_step.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "src/optim/adamw.h"

namespace qat::bench {

// One model being timed: FP32 (scheme "fp32") or QAT under `scheme`, with its optimizer state.
struct StepContender {
  std::string scheme;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<AdamW> adam;
  std::vector<double> t;  // seconds per step, one sample per round
};
StepContender make_contender(const std::string& scheme, const ModelConfig& cfg);

// Random batches: ids (B, T) and targets (B, T) s32, T = cfg.context; a few of them, used in turn
// (a step's time does not depend on the data, so no corpus or tokenizer is needed).
struct Batches {
  std::vector<Tensor> ids, targets;
  size_t next = 0;
};
Batches random_batches(const ModelConfig& cfg, int64_t B, int n);

// zero grads, forward, loss, backward, clip, AdamW (and the QAT scale clamp).
void train_step(StepContender& c, Batches& b);
// Seconds per step: the median of `steps` steps run back to back.
double time_steps(StepContender& c, Batches& b, int64_t steps);
// One warm-up step of each contender, then `rounds` interleaved rounds of `steps` steps each: c.t gets
// one sample per round.
void step_rounds(std::vector<StepContender>& cs, Batches& batches, int64_t rounds, int64_t steps);

}  // namespace qat::bench
