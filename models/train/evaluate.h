// Validation loss and bits-per-byte. bpb = total nats / (ln 2 * total bytes of the predicted tokens),
// counting each token's own bytes and none for the end-of-text token (as data/dataset.h counts
// document bytes), so it compares models with different tokenizers. Read next: trainer.h.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "models/decode.h"
#include "models/transformer.h"

namespace qat {

struct EvalResult {
  double loss = 0;      // mean nats per token
  double bpb = 0;       // bits per byte
  double ppl = 0;       // exp(loss)
  int64_t tokens = 0;   // predicted tokens
  int64_t bytes = 0;    // their bytes
  // Against a reference model (evaluate_against; NaN otherwise), over the same predicted tokens:
  double kl = NAN;         // mean KL(reference || model) in nats per token, as llama-perplexity --kl-divergence
  double kl_p99 = NAN;     // its 99th percentile over tokens (the tail PTQ damage hides in)
  double same_top1 = NAN;  // fraction of tokens whose most likely next token is the reference's
};

// token_bytes[id] = bytes of token id (EOT: 0). Evaluates the first `max_windows` windows of `ctx`
// tokens of `val` (0: all), `batch` windows at a time, without gradients.
EvalResult evaluate(Transformer& model, std::span<const int32_t> val, const std::vector<int32_t>& token_bytes,
                    int64_t batch, int64_t ctx, int64_t max_windows);

// The same over a caller-supplied forward: logits (B, T, V) for ids (B, T). bin/eval uses it for
// quantized models.
using LogitsFn = std::function<Tensor(const Tensor& ids)>;
EvalResult evaluate_with(const LogitsFn& logits_of, int64_t vocab, std::span<const int32_t> val,
                         const std::vector<int32_t>& token_bytes, int64_t batch, int64_t ctx, int64_t max_windows);

// evaluate_with, and how far the model's next-token distributions are from `reference`'s on the same
// windows (both forwards run per batch; nothing of the reference is cached, so memory stays one batch).
EvalResult evaluate_against(const LogitsFn& logits_of, const LogitsFn& reference, int64_t vocab,
                            std::span<const int32_t> val, const std::vector<int32_t>& token_bytes, int64_t batch,
                            int64_t ctx, int64_t max_windows);

// Several models against one reference in one pass over the same windows: the reference's forward runs
// once per batch, not once per model (qat-study evaluates six served models of one FP32 reference).
// Result 0 is the reference's own figures (as evaluate_with; kl NaN), result i + 1 models[i]'s, bit for
// bit what evaluate_against(models[i], reference, ...) returns. Memory: one batch per model, plus each
// model's per-token KL (4 bytes a token) for the p99.
std::vector<EvalResult> evaluate_all(const std::vector<LogitsFn>& models, const LogitsFn& reference, int64_t vocab,
                                     std::span<const int32_t> val, const std::vector<int32_t>& token_bytes,
                                     int64_t batch, int64_t ctx, int64_t max_windows);

// The served model's forward as a LogitsFn: each window of ids (B, T) one full-prompt forward of a fresh
// KV-cache session.
LogitsFn served_logits_fn(const DecodeModel& model);

// The served model (integer kernels): each window is one full-prompt forward of a fresh KV-cache
// session, the computation bin/generate runs.
EvalResult evaluate_served(const DecodeModel& model, std::span<const int32_t> val,
                           const std::vector<int32_t>& token_bytes, int64_t ctx, int64_t max_windows);

}  // namespace qat
