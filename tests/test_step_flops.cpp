// The analytic FLOP count of a training step (models/step_flops.h), which bin/bench shapes divides by
// the step time for its GFLOP/s and MFU columns, against two independent counts: the FLOPs the profiler
// adds up op by op in a real forward + backward of a model (each op states its own M*N*K), and
// ModelConfig::n_params().
#include "models/step_flops.h"
#include "models/transformer.h"
#include "src/util/profile.h"
#include "tests/helpers.h"

using namespace qat;

namespace {
// The profiler's FLOPs of one forward + backward of `cfg` on B sequences of T tokens, by row name.
struct ProfiledFlops {
  double gemm = 0, attention_fwd = 0;
};
ProfiledFlops profile_step(const ModelConfig& cfg, int64_t B, int64_t T) {
  Transformer m(cfg, nullptr);
  m.init_weights(3);
  std::vector<int32_t> ids(size_t(B * T)), targets(size_t(B * T));
  for (size_t i = 0; i < ids.size(); i++) {
    ids[i] = int32_t((i * 7) % size_t(cfg.vocab));
    targets[i] = int32_t((i * 5 + 1) % size_t(cfg.vocab));
  }
  prof::enable(true);
  Tensor loss = m.loss(Tensor::from_s32({B, T}, ids), Tensor::from_s32({B, T}, targets));
  loss.backward();
  ProfiledFlops p;
  for (const prof::Row& r : prof::rows()) {
    if (r.name == "linear" || r.name == "matmul") p.gemm += r.flops;  // forward and backward rows
    if (r.name == "attention" && r.phase == prof::Phase::forward) p.attention_fwd += r.flops;
  }
  prof::enable(false);
  return p;
}
}  // namespace

TEST_CASE("train_step_flops: GEMM FLOPs equal the profiler's linear rows of a real step; n_params agrees", "[profile]") {
  ModelConfig cfg = ModelConfig::preset_named("tiny");  // grouped-query (4 heads, 2 kv heads), tied LM head
  cfg.ffn = 96;                                         // F apart from the other sizes: a mixed-up term shows
  const int64_t B = 2, T = 24;                          // T below the context: the count follows T, not ctx
  const StepFlops f = train_step_flops(cfg, B, T);
  const ProfiledFlops p = profile_step(cfg, B, T);
  CHECK(f.gemm == p.gemm);  // integers well below 2^53: exact
  const double C = double(cfg.d_model), L = double(cfg.n_layers), tokens = double(B * T);
  CHECK(f.gemm + 6 * (2 * L * C + C) * tokens == 6 * double(cfg.n_params()) * tokens);  // n_params less the norms
  // The profiler counts the causal half of the T x T square, T (T + 1) / 2 entries; the convention the full square.
  CHECK(f.attention / 3 == Approx(p.attention_fwd * 2 * double(T) / double(T + 1)).epsilon(1e-12));
}
