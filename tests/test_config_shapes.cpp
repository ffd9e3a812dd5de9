// Any model shape (issue 17): bin/train --config FILE.json (Hugging Face keys) and the flags that override
// one field each, the 15m / 110m presets (llama2.c's shapes), the rule for a config.json without
// rope_layout, the one-line refusals of shapes that cannot train (head dim, GQA, sizes, memory), the
// conflict check with --init / --resume, and the memory figures bin/train prints.
// Code under test: models/config.cpp, models/train/shape.cpp, models/train/memory.cpp, tools/train.cpp.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "models/config.h"
#include "models/train/memory.h"
#include "models/train/shape.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

std::string bin(const std::string& name) {
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  return std::string(cwd) + "/bin/" + name;
}

// The shape fields as one comparable tuple (preset name left out).
struct Fields {
  int64_t vocab, context, layers, dim, heads, kv, ffn;
  float rope, eps;
  bool tied;
  bool operator==(const Fields&) const = default;
};
Fields fields(const ModelConfig& c) {
  return {c.vocab, c.context, c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.ffn, c.rope_base, c.rms_eps, c.tied};
}

void no_note(const std::string&) {}

// A tiny corpus and a cache shared by the process tests of this file.
struct Files {
  ScratchDir dir{"shapes"};
  std::string corpus = dir.put("corpus.txt", synthetic_corpus(150)), cache = dir.path + "/cache";
  // bin/train on the corpus, `steps` steps, with `extra` arguments.
  ProcResult train(const std::vector<std::string>& extra, int steps = 2) const {
    std::vector<std::string> a{bin("train"), "--data", corpus, "--ctx", "16", "--batch", "2", "--steps",
                               std::to_string(steps), "--threads", "1", "--cache-dir", cache, "--no-plot"};
    a.insert(a.end(), extra.begin(), extra.end());
    // A small BPE unless the run names its vocabulary (--vocab, or a --config file's vocab_size).
    if (std::find(a.begin(), a.end(), "--vocab") == a.end() && std::find(a.begin(), a.end(), "--config") == a.end())
      a.insert(a.end(), {"--vocab", "280"});
    return run_proc(a, dir.path + "/log", {}, 120);
  }
};
const Files& files() {
  static Files f;
  return f;
}

// A refusal: exit status 2 (usage) or 1, one line on stderr holding every part.
void expect_refusal(const ProcResult& r, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  CHECK((r.code == 1 || r.code == 2));
  const std::vector<std::string> lines = lines_of(r.err);
  REQUIRE(!lines.empty());
  const std::string& last = lines.back();
  CHECK_THAT(last, Catch::StartsWith("train: "));
  for (const std::string& p : parts) CHECK_THAT(last, Catch::Contains(p));
}

// A config file in HF form with tiny sizes (no rope_layout, like every Hugging Face config).
const char* kTinyHf = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 48,
  "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96,
  "vocab_size": 300, "max_position_embeddings": 24, "rope_theta": 50000.0, "rms_norm_eps": 1e-6,
  "tie_word_embeddings": false, "torch_dtype": "float32"})";

}  // namespace

TEST_CASE("presets 15m and 110m have llama2.c's shapes and parameter counts", "[shapes]") {
  ModelConfig s = ModelConfig::preset_named("15m");
  CHECK(fields(s) == Fields{1024, 256, 6, 288, 6, 6, 768, 10000.0f, 1e-5f, true});
  ModelConfig b = ModelConfig::preset_named("110m");
  CHECK(fields(b) == Fields{1024, 1024, 12, 768, 12, 12, 2048, 10000.0f, 1e-5f, true});
  // At llama2.c's vocabulary of 32000: its stories15M and stories110M (15.2M and 109.5M).
  s.vocab = b.vocab = 32000;
  CHECK(s.n_params() == 15191712);
  CHECK(b.n_params() == 109529856);
  // At our default BPE vocabulary (1024) the embedding is smaller.
  s.vocab = b.vocab = 1024;
  CHECK(s.n_params() == 6270624);
  CHECK(b.n_params() == 85740288);
  std::printf("presets at vocab 1024: 15m %lld, 110m %lld parameters\n", (long long)s.n_params(),
              (long long)b.n_params());
  CHECK_THROWS_WITH(ModelConfig::preset_named("7b"), Catch::Contains("15m") && Catch::Contains("110m"));
}

TEST_CASE("each shape flag changes exactly its own field", "[shapes]") {
  const ModelConfig base = new_run_shape("small", 1024, 0, ShapeFlags{}, no_note);
  CHECK(fields(base) == fields(ModelConfig::preset_named("small")));
  CHECK(base.preset == "small");
  auto with = [&](const std::function<void(ShapeFlags&)>& set, int64_t vocab = 1024, int64_t ctx = 0) {
    ShapeFlags f;
    set(f);
    return new_run_shape("small", vocab, ctx, f, no_note);
  };
  auto expect = [&](const ModelConfig& got, const std::function<void(ModelConfig&)>& change) {
    ModelConfig want = base;
    change(want);
    CHECK(fields(got) == fields(want));
  };
  expect(with([](ShapeFlags& f) { f.layers = 7; }), [](ModelConfig& c) { c.n_layers = 7; });
  expect(with([](ShapeFlags& f) { f.dim = 240; }), [](ModelConfig& c) { c.d_model = 240; });
  expect(with([](ShapeFlags& f) { f.heads = 3; }), [](ModelConfig& c) { c.n_heads = 3; });
  expect(with([](ShapeFlags& f) { f.kv_heads = 6; }), [](ModelConfig& c) { c.n_kv_heads = 6; });
  expect(with([](ShapeFlags& f) { f.ffn = 100; }), [](ModelConfig& c) { c.ffn = 100; });
  expect(with([](ShapeFlags& f) { f.rope_theta = 500000; }), [](ModelConfig& c) { c.rope_base = 500000; });
  expect(with([](ShapeFlags& f) { f.vocab_given = true; }, 512), [](ModelConfig& c) { c.vocab = 512; });
  expect(with([](ShapeFlags&) {}, 1024, 64), [](ModelConfig& c) { c.context = 64; });
  CHECK(with([](ShapeFlags& f) { f.layers = 7; }).preset.empty());  // a custom shape is no preset's
}

TEST_CASE("--config: HF keys over the preset, flags over the file, rope_layout defaulted with a note", "[shapes]") {
  ScratchDir d("shapes-config");
  ShapeFlags f;
  f.config = d.put("config.json", kTinyHf);
  std::vector<std::string> notes;
  auto note = [&](const std::string& s) { notes.push_back(s); };
  ModelConfig c = new_run_shape("small", 1024, 0, f, note);
  CHECK(fields(c) == Fields{300, 24, 3, 48, 4, 2, 96, 50000.0f, 1e-6f, false});
  REQUIRE(notes.size() == 1);
  CHECK_THAT(notes[0], Catch::Contains("no rope_layout") && Catch::Contains("adjacent_pairs"));
  f.layers = 5;  // a flag over the file; --vocab and --ctx over it too
  f.vocab_given = true;
  c = new_run_shape("small", 400, 20, f, note);
  CHECK(fields(c) == Fields{400, 20, 5, 48, 4, 2, 96, 50000.0f, 1e-6f, false});
  // Keys the file lacks keep the preset's values.
  ShapeFlags partial;
  partial.config = d.put("partial.json", R"({"num_hidden_layers": 2, "rope_layout": "adjacent_pairs"})");
  notes.clear();
  c = new_run_shape("tiny", 300, 0, partial, note);
  ModelConfig want = ModelConfig::preset_named("tiny");
  want.vocab = 300;
  want.n_layers = 2;
  CHECK(fields(c) == fields(want));
  CHECK(notes.empty());  // an explicit adjacent_pairs needs no note
  // num_attention_heads without num_key_value_heads: one KV head per head, as Hugging Face reads it.
  ShapeFlags mha;
  mha.config = d.put("mha.json", R"({"num_attention_heads": 4, "rope_layout": "adjacent_pairs"})");
  c = new_run_shape("tiny", 300, 0, mha, note);  // tiny has 4 heads and 2 KV heads
  CHECK((c.n_heads == 4 && c.n_kv_heads == 4));
  // Another layout cannot be trained; a bad file or value is one line naming the file.
  ShapeFlags rot;
  rot.config = d.put("rot.json", R"({"hidden_size": 64, "rope_layout": "rotate_half"})");
  CHECK_THROWS_WITH(new_run_shape("tiny", 300, 0, rot, note), Catch::Contains("rot.json") && Catch::Contains("rope_layout"));
  rot.config = d.put("bad.json", R"({"hidden_size": "wide"})");
  CHECK_THROWS_WITH(new_run_shape("tiny", 300, 0, rot, note), Catch::Contains("bad.json") && Catch::Contains("hidden_size"));
  rot.config = d.path + "/missing.json";
  CHECK_THROWS_AS(new_run_shape("tiny", 300, 0, rot, note), UsageError);
}

TEST_CASE("a checkpoint's config.json without rope_layout is a Hugging Face one: refused", "[shapes]") {
  Json j = ModelConfig::preset_named("tiny").to_json();
  CHECK(j.at("rope_layout").as_string() == "adjacent_pairs");
  CHECK(fields(ModelConfig::from_json(j)) == fields(ModelConfig::preset_named("tiny")));
  Json hf = Json::object();
  for (const auto& key : {"vocab_size", "max_position_embeddings", "num_hidden_layers", "hidden_size",
                          "num_attention_heads", "num_key_value_heads", "intermediate_size", "rms_norm_eps",
                          "rope_theta", "tie_word_embeddings"})
    hf.set(key, j.at(key));
  CHECK_THROWS_WITH(ModelConfig::from_json(hf), Catch::Contains("no rope_layout") && Catch::Contains("rotate-half"));
}

TEST_CASE("shapes that cannot train are refused with one line", "[shapes]") {
  auto refused = [](const std::function<void(ShapeFlags&)>& set, const std::string& want, int64_t ctx = 0) {
    ShapeFlags f;
    set(f);
    CHECK_THROWS_WITH(new_run_shape("small", 1024, ctx, f, no_note), Catch::Contains(want));
  };
  refused([](ShapeFlags& f) { f.dim = 100; f.heads = 8; }, "not a multiple of num_attention_heads");
  refused([](ShapeFlags& f) { f.dim = 36; f.heads = 4; f.kv_heads = 2; }, "must be even for RoPE");  // head dim 9
  refused([](ShapeFlags& f) { f.heads = 6; f.kv_heads = 4; }, "not a multiple of num_key_value_heads");
  refused([](ShapeFlags& f) { f.heads = 2; f.kv_heads = 3; f.dim = 192; }, "num_key_value_heads");
  refused([](ShapeFlags&) {}, "max_position_embeddings", int64_t(1) << 21);
  ScratchDir d("shapes-refuse");
  refused([&](ShapeFlags& f) { f.config = d.put("zero.json", R"({"num_hidden_layers": 0})"); }, "num_hidden_layers = 0");
  refused([&](ShapeFlags& f) { f.config = d.put("neg.json", R"({"intermediate_size": -5})"); }, "intermediate_size = -5");
  refused([&](ShapeFlags& f) { f.config = d.put("huge.json", R"({"hidden_size": 1099511627776})"); }, "hidden_size");
  refused([&](ShapeFlags& f) { f.config = d.put("wide.json", R"({"vocab_size": 9223372036854775807})"); }, "vocab_size");
}

TEST_CASE("the memory estimate: components, no overflow on hostile sizes, a refusal that names it", "[shapes]") {
  ModelConfig c = ModelConfig::preset_named("small");
  MemoryEstimate m = estimate_training_memory(c, nullptr, 16, 128, 2, false, 1e6);
  CHECK(m.weights == 4.0 * double(c.n_params()));
  CHECK(m.gradients == m.weights);
  CHECK(m.moments == 2 * m.weights);
  CHECK(m.qat_scales == 0);
  CHECK(m.activations > 16.0 * 128 * double(c.vocab) * 4);  // at least the logits
  QatConfig q = QatConfig::make("q4_0", "", c.n_layers, c.tied);
  MemoryEstimate mq = estimate_training_memory(c, &q, 16, 128, 2, false, 1e6);
  CHECK(mq.qat_scales > 0);
  CHECK(mq.total() > m.total());
  // The largest shape the ranges allow, at the largest batch and context: finite, and refused.
  ModelConfig huge = c;
  huge.vocab = 1 << 20; huge.context = 1 << 20; huge.n_layers = 1024; huge.d_model = 1 << 16;
  huge.n_heads = 1024; huge.n_kv_heads = 1024; huge.ffn = 1 << 20;
  huge.validate();
  MemoryEstimate mh = estimate_training_memory(huge, nullptr, 65536, 1 << 20, 4096, true, 1e6);
  CHECK(std::isfinite(mh.total()));
  CHECK(mh.total() > 1e20);
  std::string source;
  if (available_memory_bytes(&source) > 0)
    CHECK_THROWS_WITH(check_memory_fits(mh), Catch::Contains("estimated peak memory") && Catch::Contains(source));
  CHECK_NOTHROW(check_memory_fits(m));
  CHECK(human_bytes(3.5 * (1 << 30)) == "3.5 GiB");
}

TEST_CASE("bin/train --config trains a few steps; config.json round-trips; memory figures printed", "[shapes]") {
  const Files& fs = files();
  const std::string cfg = fs.dir.put("hf.json", kTinyHf), out = fs.dir.path + "/custom";
  ProcResult r = fs.train({"--config", cfg, "--out", out});  // vocab_size 300 from the file
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("has no rope_layout"));
  CHECK_THAT(r.err, Catch::Contains("memory: estimated peak"));
  CHECK_THAT(r.err, Catch::Contains("memory: peak RSS") && Catch::Contains("B/parameter"));
  CHECK_THAT(r.err, Catch::Contains("model: custom"));
  const Json saved = Json::parse(read_file(out + "/config.json"));
  CHECK(saved.at("rope_layout").as_string() == "adjacent_pairs");  // the defaulted layout, written
  CHECK_FALSE(saved.contains("qat_preset"));
  ModelConfig back = ModelConfig::from_json(saved);
  CHECK(fields(back) == Fields{300, 16, 3, 48, 4, 2, 96, 50000.0f, 1e-6f, false});  // --ctx 16 over the file's 24
  // A run with the same shape from flags over the tiny preset gives the same config.json.
  const std::string out2 = fs.dir.path + "/flags";
  r = fs.train({"--preset", "tiny", "--layers", "3", "--dim", "48", "--heads", "4", "--kv-heads", "2", "--ffn", "96",
                "--rope-theta", "50000", "--vocab", "300", "--config", fs.dir.put("rest.json",
                R"({"rms_norm_eps": 1e-6, "tie_word_embeddings": false, "rope_layout": "adjacent_pairs"})"),
                "--out", out2});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(read_file(out2 + "/config.json") == read_file(out + "/config.json"));
}

TEST_CASE("bin/train refuses an untrainable shape at start, in one line", "[shapes]") {
  const Files& fs = files();
  expect_refusal(fs.train({"--preset", "tiny", "--dim", "30"}), {"hidden_size 30", "num_attention_heads 4"});
  expect_refusal(fs.train({"--preset", "tiny", "--dim", "36", "--heads", "4"}), {"head dim 9", "even"});
  expect_refusal(fs.train({"--preset", "tiny", "--kv-heads", "3"}), {"num_key_value_heads 3"});
  expect_refusal(fs.train({"--preset", "tiny", "--layers", "0"}), {"--layers"});
  expect_refusal(fs.train({"--preset", "tiny", "--ffn", "-1"}), {"--ffn"});
  expect_refusal(fs.train({"--preset", "tiny", "--dim", "99999999999999999999"}), {"--dim"});
  expect_refusal(fs.train({"--preset", "tiny", "--config", fs.dir.path + "/absent.json"}), {"--config", "absent.json"});
  // Sizes within every range whose product is far beyond this machine: the estimate, before allocating.
  expect_refusal(fs.train({"--preset", "tiny", "--dim", "65536", "--heads", "1024", "--kv-heads", "1024", "--layers",
                           "1024", "--ffn", "1048576", "--batch", "65536"}),
                 {"estimated peak memory", "exceeds", "this run can have", "--batch"});
  // ... before the corpus is read: an absent one is not what the refusal names.
  expect_refusal(fs.train({"--preset", "tiny", "--dim", "65536", "--heads", "1024", "--kv-heads", "1024", "--layers",
                           "1024", "--ffn", "1048576", "--batch", "65536", "--data", fs.dir.path + "/absent-corpus"}),
                 {"estimated peak memory", "exceeds"});
}

TEST_CASE("--init / --resume: shape flags must agree with the checkpoint", "[shapes]") {
  const Files& fs = files();
  const std::string ck = fs.dir.path + "/ck";
  ProcResult r = fs.train({"--preset", "tiny", "--out", ck});
  INFO(r.what());
  REQUIRE(r.code == 0);
  expect_refusal(fs.train({"--init", ck, "--layers", "3", "--out", fs.dir.path + "/ft1"}),
                 {"--layers 3 conflicts with", "num_hidden_layers 2"});
  expect_refusal(fs.train({"--init", ck, "--config", fs.dir.put("c.json", R"({"hidden_size": 64})"), "--out",
                           fs.dir.path + "/ft2"}),
                 {"c.json's hidden_size 64 conflicts with", "hidden_size 32"});
  expect_refusal(run_proc({bin("train"), "--resume", "--out", ck, "--steps", "4", "--heads", "2", "--threads", "1",
                           "--cache-dir", fs.cache, "--no-plot"},
                          fs.dir.path + "/log-resume"),
                 {"--heads 2 conflicts with", "num_attention_heads 4"});
  // Flags that say what the checkpoint already is are accepted.
  r = run_proc({bin("train"), "--resume", "--out", ck, "--steps", "3", "--heads", "4", "--layers", "2", "--threads",
                "1", "--cache-dir", fs.cache, "--no-plot"},
               fs.dir.path + "/log-resume2");
  INFO(r.what());
  CHECK(r.code == 0);
}
