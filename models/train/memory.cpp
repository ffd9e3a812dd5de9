// The memory budget of a training run (see memory.h and docs/MEMORY.md for the derivation).
#include "models/train/memory.h"

#include <algorithm>
#include <cstdio>

#include "src/util/error.h"

namespace qat {

double MemoryEstimate::total() const {
  return weights + gradients + moments + qat_scales + qat_codes + activations + teacher + runtime;
}

namespace {

// The tensors counted below are what the tape must hold; the measured peaks of tiny, small and 15m
// (docs/MEMORY.md) are up to 10% above that count: other gradients a reshape copies, freed blocks the
// allocator has not returned. The estimate adds that 10% to the activations.
constexpr double kActivationSlack = 1.1;

struct Part { const char* name; double bytes; };

std::vector<Part> parts(const MemoryEstimate& m) {
  return {{"weights", m.weights},         {"gradients", m.gradients}, {"AdamW moments", m.moments},
          {"QAT scales", m.qat_scales},   {"QAT codes", m.qat_codes}, {"activations", m.activations},
          {"teacher", m.teacher},         {"runtime and data", m.runtime}};
}

// Floats the tape keeps per token: every op output of the forward stays until backward returns (the
// engine's `order` owns them). Per layer: the input x, rmsnorm h, q, rope(q), the attention output, o,
// x + o, rmsnorm h2, down, x + down (9 x C, counting the next layer's input once); k, rope(k), v
// (3 x Hkv D); gate, up, swiglu (3 x F); the attention's log-sum-exp (H) and two rmsnorm rstd. The top:
// the final rmsnorm (C) and the logits (V).
double saved_floats_per_token(const ModelConfig& c) {
  const double C = double(c.d_model), KV = double(c.n_kv_heads * c.head_dim()), F = double(c.ffn);
  const double per_layer = 9 * C + 3 * KV + 3 * F + double(c.n_heads) + 2;
  return double(c.n_layers) * per_layer + 2 * C + double(c.vocab);
}

// What the tape keeps of quantized weights (served: int8 codes + f32 group scales; weight-only
// schemes: the f32 fake-quant weight) and the count of learned scales, over every quantized weight.
void qat_weights(const ModelConfig& c, const QatConfig& q, double* kept, double* scales, double* largest) {
  auto one = [&](const LayerQuant& f, double N, double K) {
    if (!f.quantized()) return;
    const double G = double(f.group(int64_t(K)));
    *scales += N * K / G;
    *kept += f.served() ? N * K + 4 * N * K / G : 4 * N * K;
    *largest = std::max(*largest, N * K);
  };
  for (int64_t l = 0; l < c.n_layers; l++)
    for (Proj p : kBlockProj) one(q.linear(int(l), p), double(c.proj_rows(p)), double(c.proj_cols(p)));
  one(q.embed, double(c.vocab), double(c.d_model));
  if (!c.tied) one(q.lm_head, double(c.vocab), double(c.d_model));
}

}  // namespace

MemoryEstimate estimate_training_memory(const ModelConfig& c, const QatConfig* q, int64_t batch, int64_t ctx,
                                        int threads, bool distill, double runtime) {
  MemoryEstimate m;
  const double P = double(c.n_params()), BT = double(batch) * double(ctx), T = double(ctx);
  m.params = P;
  m.weights = 4 * P;
  m.gradients = 4 * P;
  m.moments = 8 * P;
  double largest = 0;
  if (q) {
    double scales = 0;
    qat_weights(c, *q, &m.qat_codes, &scales, &largest);
    m.qat_scales = 16 * scales;
  }
  // Backward's largest moment on top of the tape: dlogits twice (B T V: the loss's reshape gets its own
  // gradient buffer) with a few (B T, C or F) gradients, each thread's attention scratch P and dS (2 T^2),
  // a quantized layer's dequantized W and dW (2 N K). Then kActivationSlack for what the count leaves out.
  const double transient = BT * (2 * double(c.vocab) + 4 * double(std::max(c.d_model, c.ffn))) +
                           double(std::max(threads, 1)) * 2 * T * T + 2 * largest;
  m.activations = kActivationSlack * 4 * (BT * saved_floats_per_token(c) + transient);
  if (distill) m.teacher = 4 * P + 4 * 2 * BT * double(c.vocab);  // its weights, its logits and p_teacher
  m.runtime = runtime;
  return m;
}

std::string MemoryEstimate::breakdown() const {
  std::string s;
  for (const Part& p : parts(*this))
    if (p.bytes > 0) s += std::string(s.empty() ? "" : ", ") + p.name + " " + human_bytes(p.bytes);
  return s;
}

std::string MemoryEstimate::per_parameter(double peak) const {
  std::string s;
  char buf[64];
  for (const Part& p : parts(*this))
    if (p.bytes > 0) {
      std::snprintf(buf, sizeof buf, "%s%s %.1f", s.empty() ? "" : ", ", p.name, p.bytes / params);
      s += buf;
    }
  std::snprintf(buf, sizeof buf, " (estimate); measured peak %.1f B/parameter", peak / params);
  return s + buf;
}

void check_memory_fits(const MemoryEstimate& m) {
  std::string source;
  const double avail = available_memory_bytes(&source);
  if (avail <= 0) return;  // no /proc: nothing to hold the estimate to
  if (m.total() - m.runtime > avail)
    throw UsageError(str("the estimated peak memory ", human_bytes(m.total()), " (", m.breakdown(), ") exceeds the ",
                         human_bytes(avail + m.runtime), " this run can have (", human_bytes(avail), " ", source,
                         " + ", human_bytes(m.runtime), " in use); use a smaller --batch, --ctx or model"));
}

}  // namespace qat
