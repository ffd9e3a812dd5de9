// Validation loss / bpb, and KL / same-top-1 against a reference (see evaluate.h). Per-token losses
// are summed in order in double.
#include "models/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/loader.h"

namespace qat {

namespace {

// Sums over the predicted tokens of one evaluation; the reference's figures only when it has one.
struct EvalSums {
  double nats = 0, kl_sum = 0;  // summed in token order, in double
  std::vector<float> kl;         // per token: the p99 sorts them
  int64_t same_top1 = 0;
  EvalResult r;
};

// Index of the largest of x[0..n) (the first on ties, as std::max_element).
int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

// KL(p || q) of one position from log-probabilities: sum_v p_v (log p_v - log q_v), in double.
double kl_row(const float* lp, const float* lq, int64_t V) {
  double s = 0;
  for (int64_t v = 0; v < V; v++) {
    double p = std::exp(double(lp[v]));
    if (p > 0) s += p * (double(lp[v]) - double(lq[v]));
  }
  return s;
}

// Adds one batch: lp (N, V) the model's log-probabilities, lr the reference's (nullptr: none).
void add_batch(EvalSums& s, const float* lp, const float* lr, const int32_t* tg, int64_t N, int64_t V,
               const std::vector<int32_t>& token_bytes) {
  for (int64_t i = 0; i < N; i++) {
    QAT_CHECK(tg[i] >= 0 && tg[i] < int32_t(token_bytes.size()), "eval: token id ", tg[i], " out of range");
    // Finite weights can still overflow f32 in the logits: say so instead of reporting ppl nan.
    QAT_CHECK(std::isfinite(lp[i * V + tg[i]]), "eval: the log-probability of token ", s.r.tokens + i,
              " is ", lp[i * V + tg[i]], ": the model's logits overflow f32");
    s.nats -= lp[i * V + tg[i]];
    s.r.bytes += token_bytes[size_t(tg[i])];
    if (!lr) continue;
    const double kl = kl_row(lr + i * V, lp + i * V, V);
    s.kl_sum += kl;
    s.kl.push_back(float(kl));
    s.same_top1 += argmax(lp + i * V, V) == argmax(lr + i * V, V);
  }
  s.r.tokens += N;
}

// The figures of one model's sums.
EvalResult finish(EvalSums& s, bool against) {
  EvalResult r = s.r;
  r.loss = r.tokens ? s.nats / double(r.tokens) : 0;
  r.bpb = r.bytes ? s.nats / (std::log(2.0) * double(r.bytes)) : 0;
  r.ppl = std::exp(r.loss);
  if (against && r.tokens) {
    r.kl = s.kl_sum / double(r.tokens);
    std::vector<float>& sorted = s.kl;
    size_t at = std::min(sorted.size() - 1, size_t(std::ceil(0.99 * double(sorted.size()))) - 1);
    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(at), sorted.end());
    r.kl_p99 = sorted[at];
    r.same_top1 = double(s.same_top1) / double(r.tokens);
  }
  return r;
}

// The shared loop: every model over the same batches, the reference's forward once per batch (reference
// may be null). Result 0 is the reference's own figures (none without one), then one per model.
std::vector<EvalResult> run_eval(const std::vector<const LogitsFn*>& models, const LogitsFn* reference, int64_t vocab,
                                 std::span<const int32_t> val, const std::vector<int32_t>& token_bytes, int64_t batch,
                                 int64_t ctx, int64_t max_windows) {
  NoGrad ng;
  EvalSums ref_sums;
  std::vector<EvalSums> sums(models.size());
  for (const Batch& b : eval_batches(val, batch, ctx, max_windows)) {
    const int64_t N = b.ids.numel();
    const int32_t* tg = b.targets.data<int32_t>();
    Tensor lr = reference ? log_softmax((*reference)(b.ids).reshape({N, vocab})) : Tensor();
    if (reference) add_batch(ref_sums, lr.f32(), nullptr, tg, N, vocab, token_bytes);
    for (size_t m = 0; m < models.size(); m++) {
      Tensor lp = log_softmax((*models[m])(b.ids).reshape({N, vocab}));
      add_batch(sums[m], lp.f32(), reference ? lr.f32() : nullptr, tg, N, vocab, token_bytes);
    }
  }
  std::vector<EvalResult> out{finish(ref_sums, false)};
  for (EvalSums& s : sums) out.push_back(finish(s, reference != nullptr));
  return out;
}

}  // namespace

EvalResult evaluate_with(const LogitsFn& logits_of, int64_t vocab, std::span<const int32_t> val,
                         const std::vector<int32_t>& token_bytes, int64_t batch, int64_t ctx, int64_t max_windows) {
  return run_eval({&logits_of}, nullptr, vocab, val, token_bytes, batch, ctx, max_windows)[1];
}

EvalResult evaluate_against(const LogitsFn& logits_of, const LogitsFn& reference, int64_t vocab,
                            std::span<const int32_t> val, const std::vector<int32_t>& token_bytes, int64_t batch,
                            int64_t ctx, int64_t max_windows) {
  return run_eval({&logits_of}, &reference, vocab, val, token_bytes, batch, ctx, max_windows)[1];
}

std::vector<EvalResult> evaluate_all(const std::vector<LogitsFn>& models, const LogitsFn& reference, int64_t vocab,
                                     std::span<const int32_t> val, const std::vector<int32_t>& token_bytes,
                                     int64_t batch, int64_t ctx, int64_t max_windows) {
  std::vector<const LogitsFn*> ptrs;
  for (const LogitsFn& m : models) ptrs.push_back(&m);
  return run_eval(ptrs, &reference, vocab, val, token_bytes, batch, ctx, max_windows);
}

EvalResult evaluate(Transformer& model, std::span<const int32_t> val, const std::vector<int32_t>& token_bytes,
                    int64_t batch, int64_t ctx, int64_t max_windows) {
  return evaluate_with([&](const Tensor& ids) { return model.forward(ids); }, model.cfg.vocab, val, token_bytes,
                       batch, ctx, max_windows);
}

LogitsFn served_logits_fn(const DecodeModel& model) {
  return [&model](const Tensor& ids) {
    const int64_t B = ids.dim(0), T = ids.dim(1), V = model.cfg.vocab;
    Tensor out = Tensor::empty({B, T, V});
    for (int64_t b = 0; b < B; b++) {
      DecodeSession s(model, T);
      Tensor logits = s.forward(ids.data<int32_t>() + b * T, T, true);  // (T, V)
      std::memcpy(out.f32() + b * T * V, logits.f32(), size_t(T * V) * 4);
    }
    return out;
  };
}

EvalResult evaluate_served(const DecodeModel& model, std::span<const int32_t> val,
                           const std::vector<int32_t>& token_bytes, int64_t ctx, int64_t max_windows) {
  return evaluate_with(served_logits_fn(model), model.cfg.vocab, val, token_bytes, 8, ctx, max_windows);
}

}  // namespace qat
