// Train = serve (DESIGN.md, invariant 2): for a QAT model, the training forward's logits, the served
// model's full-prompt forward and its token-by-token KV-cache decode are bit-identical, for every
// scheme that is served, every kernel table this CPU can run (SIMDe builds included), and 1-4 threads.
#include "kernels/kernels.h"
#include "models/decode.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

Transformer make_qat_model(const std::string& scheme, const std::string& keep,
                           const ModelConfig& c = test::tiny_gqa_config()) {
  QatConfig q = QatConfig::make(scheme, keep, c.n_layers, c.tied);
  Transformer t(c, &q);
  t.init_weights(5);
  for (int i = 0; i < t.params.size(); i++)  // larger weights than init: more varied codes and logits
    if (t.params.info(i).shape.size() == 2) {
      float* p = t.params[i].f32();
      for (int64_t j = 0; j < t.params.info(i).numel; j++) p[j] *= 8.0f;
    }
  t.init_qat_scales();
  return t;
}

std::vector<int32_t> prompt_ids(int64_t T) {
  std::vector<int32_t> ids(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; i++) ids[size_t(i)] = int32_t((i * 37 + 11) % 96);
  return ids;
}
}  // namespace

namespace {
// The training forward's logits against the served prefill and decode of quantized_from_qat(t), on every
// table this CPU runs and 1-4 threads.
void check_train_serve(Transformer& t, const std::string& what) {
  const int64_t T = 24;
  std::vector<int32_t> ids = prompt_ids(T);
  QuantizedModel qm = quantized_from_qat(t);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    select_isa(isa);
    for (int threads : {1, 2, 3, 4}) {
      set_num_threads(threads);
      INFO(what << " isa " << isa_name(isa) << " threads " << threads);
      Tensor train_logits;
      {
        NoGrad ng;
        train_logits = t.forward(Tensor::from_s32({1, T}, ids)).reshape({T, 96});
      }
      DecodeModel dm = decode_model(qm);
      DecodeSession prefill(dm, T);
      Tensor served = prefill.forward(ids.data(), T, true);
      CHECK(test::same_bits(served, train_logits));
      if (threads == 1 || threads == 3) {  // token by token: slower, two thread counts suffice
        DecodeSession step(dm, T);
        bool all_same = true;
        for (int64_t i = 0; i < T; i++) {
          Tensor row = step.forward(&ids[size_t(i)], 1);
          all_same = all_same && test::same_bits(row.reshape({96}), train_logits.slice(0, i, i + 1).reshape({96}));
        }
        CHECK(all_same);
      }
    }
  }
  select_isa(best_isa());
  set_num_threads(0);
}
}  // namespace

TEST_CASE("ternary QAT (tq2_0, tq1_0): training forward == served prefill == KV-cache decode, bit for bit",
          "[serve][bitexact][ternary]") {
  for (const char* scheme : {"tq2_0", "tq1_0"})
    for (const char* keep : {"", "lm_head=q8_0,layers.1.down=f32"}) {
      Transformer t = make_qat_model(scheme, keep, test::tiny_ternary_config());
      check_train_serve(t, str("scheme ", scheme, " keep '", keep, "'"));
    }
}

TEST_CASE("ternary QAT refuses a weight whose K is not a whole number of 256-blocks, naming it", "[ternary]") {
  ModelConfig c = test::tiny_gqa_config();  // d_model 64
  QatConfig q = QatConfig::make("tq2_0", "", c.n_layers, c.tied);
  CHECK_THROWS_WITH(Transformer(c, &q), Catch::Contains("QAT tq2_0: ") && Catch::Contains("has K = 64, not a multiple of 256") &&
                                            Catch::Contains("--qat-keep"));
}

TEST_CASE("QAT training forward == served prefill == KV-cache decode, bit for bit", "[serve][bitexact]") {
  for (const char* scheme : {"q4_0", "q8_0", "w8a8"})
    for (const char* keep : {"", "lm_head=q8_0,layers.1.down=f32"}) {
      if (std::string(scheme) != "q4_0" && *keep) continue;
      Transformer t = make_qat_model(scheme, keep);
      check_train_serve(t, str("scheme ", scheme, " keep '", keep, "'"));
    }
}

TEST_CASE("served logits of a QAT model stay close to its f32 latent model", "[serve]") {
  // A sanity oracle beside the bit-identity: the integer path is a quantized version of the same model.
  Transformer t = make_qat_model("q8_0", "");
  std::vector<int32_t> ids = prompt_ids(16);
  DecodeModel dm = decode_model(quantized_from_qat(t));
  DecodeSession s(dm, 16);
  Tensor served = s.forward(ids.data(), 16, true);
  Transformer f(test::tiny_gqa_config());
  for (int i = 0; i < f.params.size(); i++) f.params[i].copy_from(t.params[t.params.index_of(f.params.info(i).name)]);
  NoGrad ng;
  Tensor ref = f.forward(Tensor::from_s32({1, 16}, ids)).reshape({16, 96});
  float rel = test::max_abs_diff(served, ref) / test::max_abs(ref);
  INFO("q8_0 served vs f32 latent: max diff / max |logit| = " << rel);
  CHECK(rel < 0.05f);
  CHECK(rel > 0.0f);
}
