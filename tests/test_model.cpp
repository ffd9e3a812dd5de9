// The model: config.json, parameter layout, the KV-cache decode against the training forward, and a
// training smoke test (the model can memorise a short sequence).
#include <cstring>
#include "models/decode.h"
#include "models/from_checkpoint.h"
#include "models/sampler.h"
#include "models/transformer.h"
#include "src/optim/adamw.h"
#include "tests/helpers.h"

using namespace qat;

static ModelConfig tiny_config() {
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = 61;
  return c;
}

TEST_CASE("config.json round trip and validation", "[model]") {
  ModelConfig c = ModelConfig::preset_named("small");
  c.vocab = 1000;
  ModelConfig d = ModelConfig::from_json(Json::parse(c.to_json().dump()));
  REQUIRE(d.to_json().dump() == c.to_json().dump());
  Json bad = c.to_json();
  bad.set("num_attention_heads", 5);
  REQUIRE_THROWS_WITH(ModelConfig::from_json(bad), Catch::Contains("hidden_size") && Catch::Contains("num_attention_heads"));
  bad = c.to_json();
  bad.set("rope_layout", "rotate_half");
  REQUIRE_THROWS_WITH(ModelConfig::from_json(bad), Catch::Contains("rope_layout"));
  bad = c.to_json();
  bad.set("vocab_size", -3);
  REQUIRE_THROWS_WITH(ModelConfig::from_json(bad), Catch::Contains("vocab_size"));
  REQUIRE_THROWS_AS(ModelConfig::preset_named("huge"), UsageError);
  ModelConfig base = ModelConfig::preset_named("base");
  base.vocab = 1024;
  REQUIRE(base.n_params() > 9'000'000);
  REQUIRE(base.n_params() < 11'000'000);
}

TEST_CASE("parameters live in one flat buffer, gradients in another", "[model]") {
  Transformer m(tiny_config());
  REQUIRE(m.params.count() == m.cfg.n_params());
  const float* base = m.params.flat().f32();
  const float* gbase = m.params.flat_grad().f32();
  for (int i = 0; i < m.params.size(); i++) {
    REQUIRE(m.params[i].f32() == base + m.params.info(i).offset);
    REQUIRE(m.params[i].grad().f32() == gbase + m.params.info(i).offset);
    REQUIRE(reinterpret_cast<uintptr_t>(m.params[i].f32()) % 64 == 0);
  }
  REQUIRE(m.params.info(m.tok_embd).name == "model.embed_tokens.weight");
  REQUIRE(m.params.index_of("model.layers.1.mlp.down_proj.weight") >= 0);

  // Frozen (what ModelSource::transformer() builds for eval, PTQ, export): the same layout and forward,
  // no gradient buffer, nothing requires a gradient, so a forward builds no graph.
  m.init_weights(5);
  Transformer f(tiny_config(), nullptr, Transformer::Frozen{});
  f.params.flat().copy_from(m.params.flat());
  CHECK_FALSE(f.params.flat_grad().defined());
  for (int i = 0; i < f.params.size(); i++) CHECK_FALSE(f.params[i].requires_grad());
  Tensor ids = Tensor::empty({1, 4}, DType::s32);
  for (int t = 0; t < 4; t++) ids.data<int32_t>()[t] = 3 * t + 1;
  Tensor a = m.forward(ids), b = f.forward(ids);
  CHECK(test::same_bits(a, b));
  CHECK(a.requires_grad());
  CHECK_FALSE(b.requires_grad());
  CHECK_THROWS_WITH(f.params.zero_grad(), Catch::Contains("finalized without gradients"));
}

TEST_CASE("AdamW: a parameter's lr_mult scales its step, in linear and in log space", "[model][optim]") {
  // Three identical runs of two parameters (one plain, one log-space) with lr_mult 1, 3 and 0: the
  // first step of Adam moves each by lr * lr_mult * sign(g) (up to eps), so the moves compare exactly.
  auto run = [](float mult) {
    ParamStore ps;
    int a = ps.add("a", {4}, false), s = ps.add("s_scale", {4}, false, true);
    ps.finalize();
    for (int i : {a, s}) {
      ps.set_lr_mult(i, mult);
      for (int j = 0; j < 4; j++) {
        ps[i].f32()[j] = 0.5f + 0.25f * float(j);
        ps[i].grad().f32()[j] = j % 2 ? 0.3f : -0.7f;
      }
    }
    AdamW opt(ps, {1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f});
    opt.step(1e-2f);
    std::vector<float> moved;
    for (int i : {a, s})
      for (int j = 0; j < 4; j++)
        moved.push_back(i == a ? ps[i].f32()[j] - (0.5f + 0.25f * float(j)) : std::log(ps[i].f32()[j] / (0.5f + 0.25f * float(j))));
    return moved;
  };
  std::vector<float> one = run(1.0f), three = run(3.0f), zero = run(0.0f);
  for (size_t k = 0; k < one.size(); k++) {
    INFO("element " << k);
    CHECK(std::fabs(one[k]) == Approx(1e-2).epsilon(1e-4));
    CHECK(three[k] == Approx(3.0f * one[k]).epsilon(1e-4));
    CHECK(zero[k] == 0.0f);
  }
}

TEST_CASE("KV-cache decode agrees with the training forward", "[model][decode]") {
  Transformer m(tiny_config());
  m.init_weights(3);
  for (int i = 0; i < m.params.size(); i++)  // larger weights than init, so the check has teeth
    if (m.params.info(i).shape.size() == 2) {
      float* p = m.params[i].f32();
      for (int64_t j = 0; j < m.params.info(i).numel; j++) p[j] *= 10.0f;
    }
  const int64_t T = 20;
  std::vector<int32_t> ids(T);
  for (int64_t i = 0; i < T; i++) ids[size_t(i)] = int32_t((i * 17 + 5) % 61);
  Tensor ref;
  {
    NoGrad ng;
    ref = m.forward(Tensor::from_s32({1, T}, ids)).reshape({T, 61});
  }
  DecodeModel dm = decode_model_from_transformer(m);
  DecodeSession prefill(dm, 32);
  Tensor all = prefill.forward(ids.data(), T, true);
  INFO("prefill vs training forward maxdiff " << test::max_abs_diff(all, ref) << ", max |logit| " << test::max_abs(ref));
  CHECK(test::max_abs_diff(all, ref) < 1e-4f * std::max(1.0f, test::max_abs(ref)));
  DecodeSession step(dm, 32);
  for (int64_t t = 0; t < T; t++) {
    Tensor row = step.forward(&ids[size_t(t)], 1);
    CHECK(test::max_abs_diff(row.reshape({61}), ref.slice(0, t, t + 1).reshape({61})) < 1e-4f * std::max(1.0f, test::max_abs(ref)));
  }
  // Chunked prefill (7 + 13 tokens) lands in the same place.
  DecodeSession chunks(dm, 32);
  chunks.forward(ids.data(), 7);
  Tensor last = chunks.forward(ids.data() + 7, 13);
  CHECK(test::max_abs_diff(last.reshape({61}), ref.slice(0, T - 1, T).reshape({61})) < 1e-4f * std::max(1.0f, test::max_abs(ref)));
  REQUIRE_THROWS_WITH(chunks.forward(ids.data(), 13), Catch::Contains("context full"));
}

TEST_CASE("the tiny model memorises a sequence", "[model][train]") {
  ModelConfig c = tiny_config();
  Transformer m(c);
  m.init_weights(1);
  AdamW opt(m.params, {3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f});
  std::vector<int32_t> seq(33);
  for (size_t i = 0; i < seq.size(); i++) seq[i] = int32_t((i * i * 7 + 3) % 61);
  Tensor ids = Tensor::from_s32({1, 32}, std::vector<int32_t>(seq.begin(), seq.end() - 1));
  Tensor tg = Tensor::from_s32({1, 32}, std::vector<int32_t>(seq.begin() + 1, seq.end()));
  float first = 0, last = 0;
  for (int s = 0; s < 150; s++) {
    m.params.zero_grad();
    Tensor loss = m.loss(ids, tg);
    loss.backward();
    clip_grad_norm(m.params, 1.0f);
    opt.step(3e-3f);
    if (s == 0) first = loss.item();
    last = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  REQUIRE(first > 3.5f);
  REQUIRE(last < 0.2f);
}

TEST_CASE("sampler: greedy, temperature, top-k, top-p", "[model][sampler]") {
  std::vector<float> logits{1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  REQUIRE(Sampler({0.0f, 0, 1.0f, 1}).sample(logits.data(), 5) == 1);  // ties: lowest id
  Sampler top1({1.0f, 1, 1.0f, 7});
  for (int i = 0; i < 20; i++) REQUIRE(top1.sample(logits.data(), 5) == 1);
  Sampler nucleus({1.0f, 0, 0.5f, 7});  // tokens 1 and 3 hold ~0.42 each: top-p 0.5 keeps both
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 400; i++) counts[size_t(nucleus.sample(logits.data(), 5))]++;
  REQUIRE(counts[0] + counts[2] + counts[4] == 0);
  REQUIRE(counts[1] > 100);
  REQUIRE(counts[3] > 100);
  Sampler a({0.8f, 0, 1.0f, 9}), b({0.8f, 0, 1.0f, 9});
  for (int i = 0; i < 50; i++) REQUIRE(a.sample(logits.data(), 5) == b.sample(logits.data(), 5));
}

TEST_CASE("KV-cache decode: activations reserved for the prompt give the same bits", "[model][decode]") {
  // bin/generate reserves activation rows for its prompt only (a 300M model's 512 default rows are
  // 25 MiB of peak RSS); a longer forward grows them, and the logits cannot depend on the capacity.
  Transformer m(tiny_config());
  m.init_weights(5);
  DecodeModel dm = decode_model_from_transformer(m);
  std::vector<int32_t> ids(12);
  for (size_t i = 0; i < ids.size(); i++) ids[i] = int32_t((i * 13 + 3) % 61);
  DecodeSession wide(dm, 32), narrow(dm, 32, 3);
  CHECK(wide.reserved_rows() == 32);  // min(max_ctx, kReserveTokens)
  CHECK(narrow.reserved_rows() == 3);
  const Tensor a = wide.forward(ids.data(), 12, true), b = narrow.forward(ids.data(), 12, true);
  CHECK(narrow.reserved_rows() == 12);
  REQUIRE(a.numel() == b.numel());
  CHECK(std::memcmp(a.f32(), b.f32(), size_t(a.numel()) * 4) == 0);
  const Tensor c = wide.forward(&ids[0], 1), d = narrow.forward(&ids[0], 1);
  CHECK(std::memcmp(c.f32(), d.f32(), size_t(c.numel()) * 4) == 0);
}
