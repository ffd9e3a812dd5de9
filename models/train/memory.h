// The memory budget of a training run (docs/MEMORY.md): an estimate of the peak, made before the model
// is allocated so that a shape that cannot fit is refused with the figure instead of being killed
// mid-run, and the measured peak RSS to hold the estimate to. Read next: trainer.cpp (build_model).
#pragma once
#include <cstdint>
#include <string>

#include "models/config.h"
#include "src/util/sysmem.h"
#include "src/quant/scheme.h"

namespace qat {

// Bytes per component, as doubles: a hostile shape (--batch 65536 --ctx 1048576) must give a huge
// number, not an overflowed int64.
struct MemoryEstimate {
  double params = 0;       // trained parameters, QAT scales excluded
  double weights = 0;      // f32 latent weights: 4 B a parameter
  double gradients = 0;    // the flat f32 gradient buffer: 4 B a parameter (x2 with --accum > 1: GradSum)
  double moments = 0;      // AdamW m and v: 8 B a parameter
  double qat_scales = 0;   // learned scales with their gradients and moments: 16 B a scale
  double qat_codes = 0;    // per quantized weight, what the tape keeps (codes + scales, or the f32 fake quant)
  double activations = 0;  // the tape's saved tensors and the backward's largest temporaries
  double teacher = 0;      // --distill: the teacher's weights and logits (as large as the model)
  double runtime = 0;      // the process before the model: code, libraries, corpus, tokens, tokenizer
  double total() const;
  // "weights 1.2 MiB, gradients 1.2 MiB, ...": the non-zero components.
  std::string breakdown() const;
  // "weights 4.0, gradients 4.0, AdamW 8.0, ... B/parameter" of a measured peak `peak` bytes.
  std::string per_parameter(double peak) const;
};

// The peak of a step: batch x ctx tokens through the model (and the teacher), `threads` attention
// backward scratch buffers, plus `runtime` bytes already in use. q: the QAT scheme (null: FP32).
MemoryEstimate estimate_training_memory(const ModelConfig& cfg, const QatConfig* q, int64_t batch, int64_t ctx,
                                        int threads, bool distill, double runtime);

// A UsageError of one line when the estimate, less the runtime already in use, exceeds the available
// memory: "the estimated peak 41.2 GiB (weights ..., activations ...) exceeds the 22.5 GiB available".
void check_memory_fits(const MemoryEstimate& m);

// available_memory_bytes, current_rss_bytes, peak_rss_bytes, human_bytes: src/util/sysmem.h.

}  // namespace qat
