// Batched = alone (DESIGN.md, invariant 8): sequences that advance together through BatchDecoder
// (models/batch_decode.h), prefilling in chunks while others decode, get the logits that DecodeSession
// gives each of them alone, bit for bit: for q4_0, q8_0 and f32 models, on this CPU's best kernel table
// and the scalar one, at 1 and 2 threads. The end-to-end check through bin/serve: tests/test_serve.cpp.
#include <sys/resource.h>

#include "kernels/kernels.h"
#include "models/batch_decode.h"
#include "models/from_checkpoint.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

DecodeModel make_model(const std::string& scheme) {
  ModelConfig c = test::tiny_gqa_config();
  QatConfig q = QatConfig::make(scheme == "f32" ? "q8_0" : scheme, "", c.n_layers, c.tied);
  Transformer t(c, scheme == "f32" ? nullptr : &q);
  t.init_weights(7);
  for (int i = 0; i < t.params.size(); i++)  // larger weights than init: more varied codes and logits
    if (t.params.info(i).shape.size() == 2) {
      float* p = t.params[i].f32();
      for (int64_t j = 0; j < t.params.info(i).numel; j++) p[j] *= 8.0f;
    }
  if (scheme == "f32") return decode_model(quantized_from_f32(t), Backend::native);  // the fixed-order gemm_f32
  t.init_qat_scales();
  return decode_model(quantized_from_qat(t));
}

// Sequence s's tokens (its prompt and what it "generates"), length len.
std::vector<int32_t> seq_tokens(int s, int64_t len) {
  std::vector<int32_t> ids(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; i++) ids[size_t(i)] = int32_t((i * (31 + 6 * s) + 5 * s + 1) % 96);
  return ids;
}

// A schedule: at each step, how many tokens each sequence runs (0: not in this step). Sequence 1
// joins while 0 decodes, 2 joins later, 0 leaves early; prompts are prefilled in chunks.
const std::vector<std::vector<int64_t>> kSchedule = {
    {4, 0, 0}, {1, 7, 0}, {1, 2, 0}, {1, 1, 3}, {1, 1, 1}, {0, 1, 1}, {0, 1, 5}, {0, 1, 1}, {0, 0, 1}};
}  // namespace

TEST_CASE("batched decode: each sequence's logits equal its logits alone, bit for bit", "[serve][bitexact]") {
  const int S = 3;
  // Two threads take the threaded attention whatever the step's size (a real model's steps pass the
  // threshold; this tiny one's would not).
  BatchDecoder::parallel_attention_work = 0;
  for (const char* scheme : {"q4_0", "q8_0", "f32"}) {
    DecodeModel dm = make_model(scheme);
    for (Isa isa : {best_isa(), Isa::scalar}) {
      select_isa(isa);
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        INFO("scheme " << scheme << " isa " << isa_name(isa) << " threads " << threads);
        std::vector<int64_t> len(S, 0);
        for (const auto& st : kSchedule)
          for (int s = 0; s < S; s++) len[size_t(s)] += st[size_t(s)];
        std::vector<std::vector<int32_t>> toks;
        std::vector<Tensor> alone;  // (len, V): DecodeSession over the whole sequence
        std::vector<SeqCache> caches;
        for (int s = 0; s < S; s++) {
          toks.push_back(seq_tokens(s, len[size_t(s)]));
          DecodeSession one(dm, len[size_t(s)]);
          alone.push_back(one.forward(toks.back().data(), len[size_t(s)], true));
          caches.emplace_back(dm.cfg, len[size_t(s)]);
        }
        BatchDecoder batch(dm);
        bool all_same = true;
        int64_t compared = 0;
        for (const auto& st : kSchedule) {
          std::vector<BatchItem> items;
          std::vector<int> who;
          for (int s = 0; s < S; s++)
            if (st[size_t(s)] > 0) {
              items.push_back({&caches[size_t(s)], toks[size_t(s)].data() + caches[size_t(s)].pos, st[size_t(s)]});
              who.push_back(s);
            }
          Tensor logits = batch.step(items);
          for (size_t j = 0; j < who.size(); j++) {
            const int64_t p = caches[size_t(who[j])].pos - 1;  // the position of the item's last token
            Tensor want = alone[size_t(who[j])].slice(0, p, p + 1);
            all_same = all_same && test::same_bits(logits.slice(0, int64_t(j), int64_t(j) + 1), want);
            compared++;
          }
        }
        CHECK(all_same);
        CHECK(compared == 18);
      }
    }
  }
  select_isa(best_isa());
  set_num_threads(0);
  BatchDecoder::parallel_attention_work = 32768;
}

TEST_CASE("batched decode: a step that overflows a sequence's cache is refused before it runs", "[serve]") {
  DecodeModel dm = make_model("q8_0");
  SeqCache c(dm.cfg, 4);
  BatchDecoder batch(dm);
  std::vector<int32_t> ids = seq_tokens(0, 5);
  CHECK_THROWS_WITH(batch.step({{&c, ids.data(), 5}}), Catch::Contains("do not fit a sequence's cache of 4"));
  CHECK(c.pos == 0);
  CHECK_THROWS(SeqCache(dm.cfg, dm.cfg.context + 1));
}

TEST_CASE("batched decode: a prefaulted cache takes no page faults in the steps that fill it", "[serve]") {
  // The cause of a server's stalled steps (serve_engine.cpp, submit): the first writes to a fresh cache
  // fault its pages in, on the step's thread. A larger model than the tiny one: 1 KiB per position per
  // layer, so the cache spans hundreds of 4 KiB pages (or a few 2 MiB ones).
  ModelConfig c = test::tiny_gqa_config();
  c.d_model = 256, c.n_heads = 4, c.n_kv_heads = 4, c.ffn = 256, c.context = 256, c.n_layers = 2;
  QatConfig q = QatConfig::make("q8_0", "", c.n_layers, c.tied);
  Transformer t(c, &q);
  t.init_weights(3);
  t.init_qat_scales();
  DecodeModel dm = decode_model(quantized_from_qat(t));
  BatchDecoder batch(dm);
  std::vector<int32_t> ids = seq_tokens(1, c.context);
  {
    SeqCache warm(c, c.context);  // sizes the decoder's own buffers
    batch.step({{&warm, ids.data(), c.context}});
  }
  auto faults_of_filling = [&](bool prefault) {
    SeqCache cache(c, c.context);
    if (prefault) cache.prefault();
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    batch.step({{&cache, ids.data(), c.context}});
    getrusage(RUSAGE_SELF, &after);
    return after.ru_minflt - before.ru_minflt;
  };
  const long fresh = faults_of_filling(false), prefaulted = faults_of_filling(true);
  INFO("minor faults filling a fresh cache: " << fresh << ", a prefaulted one: " << prefaulted);
  CHECK(fresh >= 1);
  CHECK(prefaulted < fresh);
  CHECK(prefaulted <= fresh / 4);
}
