// Validation loss / bpb (see evaluate.h). Per-token losses are summed in order in double.
#include "models/train/evaluate.h"

#include <cmath>
#include <cstring>

#include "data/loader.h"

namespace qat {

EvalResult evaluate_with(const LogitsFn& logits_of, int64_t vocab, std::span<const int32_t> val,
                         const std::vector<int32_t>& token_bytes, int64_t batch, int64_t ctx, int64_t max_windows) {
  NoGrad ng;
  double nats = 0;
  EvalResult r;
  for (const Batch& b : eval_batches(val, batch, ctx, max_windows)) {
    Tensor logits = logits_of(b.ids);
    int64_t N = b.ids.numel();
    Tensor lp = log_softmax(logits.reshape({N, vocab}));
    const float* p = lp.f32();
    const int32_t* tg = b.targets.data<int32_t>();
    for (int64_t i = 0; i < N; i++) {
      QAT_CHECK(tg[i] >= 0 && tg[i] < int32_t(token_bytes.size()), "eval: token id ", tg[i], " out of range");
      // Finite weights can still overflow f32 in the logits: say so instead of reporting ppl nan.
      QAT_CHECK(std::isfinite(p[i * vocab + tg[i]]), "eval: the log-probability of token ", r.tokens + i,
                " is ", p[i * vocab + tg[i]], ": the model's logits overflow f32");
      nats -= p[i * vocab + tg[i]];
      r.bytes += token_bytes[size_t(tg[i])];
    }
    r.tokens += N;
  }
  r.loss = r.tokens ? nats / double(r.tokens) : 0;
  r.bpb = r.bytes ? nats / (std::log(2.0) * double(r.bytes)) : 0;
  r.ppl = std::exp(r.loss);
  return r;
}

EvalResult evaluate(Transformer& model, std::span<const int32_t> val, const std::vector<int32_t>& token_bytes,
                    int64_t batch, int64_t ctx, int64_t max_windows) {
  return evaluate_with([&](const Tensor& ids) { return model.forward(ids); }, model.cfg.vocab, val, token_bytes,
                       batch, ctx, max_windows);
}

EvalResult evaluate_served(const DecodeModel& model, std::span<const int32_t> val,
                           const std::vector<int32_t>& token_bytes, int64_t ctx, int64_t max_windows) {
  const int64_t V = model.cfg.vocab;
  return evaluate_with([&](const Tensor& ids) {
    int64_t B = ids.dim(0), T = ids.dim(1);
    Tensor out = Tensor::empty({B, T, V});
    for (int64_t b = 0; b < B; b++) {
      DecodeSession s(model, T);
      Tensor logits = s.forward(ids.data<int32_t>() + b * T, T, true);
      std::memcpy(out.f32() + b * T * V, logits.f32(), size_t(T * V) * 4);
    }
    return out;
  }, V, val, token_bytes, 8, ctx, max_windows);
}

}  // namespace qat
