// Limits on what an input file can make us do (issue 15): memory is sized from what is used, not from
// what a file claims (a context length); loading is linear in the vocabulary; unwanted tensors are
// refused from the header, before any data is read; FIFOs and other non-regular files are refused
// before they are opened; a JSON key given twice is refused; non-finite logits stop serving and eval
// with one line. The binaries run as child processes (tests/proc.h), under a time limit where the old
// behaviour was to hang or to take minutes.
// Code under test: models/decode.cpp, src/io/json.cpp, src/io/safetensors.cpp, src/io/file.cpp,
// src/io/mapped_file.cpp, data/corpus.cpp, models/gguf_model.cpp, models/train/evaluate.cpp.
#include <sys/stat.h>

#include "data/byte_level.h"
#include "data/tokenizer.h"
#include "models/decode.h"
#include "models/gguf_model.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "models/checkpoint.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

Tokenizer small_tokenizer() {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; i++) docs.push_back("the quick brown fox " + std::to_string(i) + " jumps over the lazy dog.");
  return Tokenizer::train(docs, 300);
}

// A tokenizer.json with V tokens: the 256 bytes, V - 257 distinct "q<letters>" tokens, EOT; no merges.
std::string big_tokenizer_json(int V) {
  std::string vocab = "{";
  int id = 0;
  for (int b = 0; b < 256; b++) vocab += Json(byte_to_unicode(uint8_t(b))).dump() + ":" + std::to_string(id++) + ",";
  for (int i = 0; id < V - 1; i++) {
    std::string s = "q";
    for (int x = i; s.size() == 1 || x; x /= 26) s += char('a' + x % 26);
    vocab += "\"" + s + "\":" + std::to_string(id++) + ",";
  }
  vocab += "\"<|endoftext|>\":" + std::to_string(id) + "}";
  return "{\"added_tokens\":[{\"id\":" + std::to_string(id) + ",\"content\":\"<|endoftext|>\",\"special\":true}],"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":" + vocab + ",\"merges\":[]}}";
}

// A small f32 model of `c`'s shape with initialised weights.
Transformer f32_model(const ModelConfig& c) {
  Transformer t(c);
  t.init_weights(5);
  return t;
}

// Writes `t` (f32) and `tok` as a GGUF file; `context` overrides llama.context_length.
void write_f32_gguf(const std::string& path, const Transformer& t, const Tokenizer& tok, int64_t context) {
  QuantizedModel qm = quantized_from_f32(t);
  qm.scheme = "f32";
  qm.cfg.context = context;
  write_gguf_model(path, qm, tok);
}

// A training checkpoint directory of `t` with `tok`.
void write_checkpoint(const std::string& dir, const Transformer& t, const Tokenizer& tok) {
  save_checkpoint(dir, {&t.cfg, Json(), &t.params, nullptr, tok.to_json(), Json()});
}

// The process exited with `code` and wrote exactly one line to stderr, holding every one of `parts`.
void expect_one_line(const ProcResult& r, int code, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.code == code);
  REQUIRE(!r.err.empty());
  CHECK(r.err.find('\n') == r.err.size() - 1);
  for (const std::string& p : parts) CHECK_THAT(r.err, Catch::Contains(p));
}

}  // namespace

// ---- item 7: loading is linear in the vocabulary ----

TEST_CASE("JSON objects with 100000 keys: set, find, replace and dump keep insertion order", "[limits]") {
  Json o = Json::object();
  const int n = 100000;
  for (int i = 0; i < n; i++) o.set("k" + std::to_string(i * 7919 % n), Json(int64_t(i)));
  REQUIRE(o.size() == size_t(n));
  for (int i = 0; i < n; i++) REQUIRE(o.at("k" + std::to_string(i * 7919 % n)).as_int() == i);
  CHECK(o.find("k" + std::to_string(n)) == nullptr);
  o.set("k0", Json("replaced"));  // replaces in place: same size, same position
  CHECK(o.size() == size_t(n));
  CHECK(o.members()[0].first == "k0");
  CHECK(o.at("k0").as_string() == "replaced");
  std::string text = o.dump();
  Json back = Json::parse(text);
  CHECK(back.dump() == text);
  CHECK(back.at("k" + std::to_string(n - 1)).as_int() == o.at("k" + std::to_string(n - 1)).as_int());
  Json copy = back;  // a copy keeps a working index
  copy.set("extra", Json(1));
  CHECK(copy.at("extra").as_int() == 1);
  CHECK(back.find("extra") == nullptr);
}

// A one-layer model of width 8 for a vocabulary of V tokens: the vocabulary is what these tests grow.
static ModelConfig one_layer_config(int64_t V) {
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = V;
  c.n_layers = 1;
  c.d_model = 8;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.ffn = 8;
  return c;
}

TEST_CASE("a 65536-token vocabulary round-trips through tokenizer.json and GGUF", "[limits]") {
  Tokenizer tok = Tokenizer::from_json(big_tokenizer_json(65536));
  REQUIRE(tok.vocab_size() == 65536);
  Tokenizer again = Tokenizer::from_json(tok.to_json());
  CHECK(again.fingerprint() == tok.fingerprint());
  ScratchDir dir("limits-vocab");
  ModelConfig c = one_layer_config(tok.vocab_size());
  write_f32_gguf(dir.path + "/m.gguf", f32_model(c), tok, 32);
  GgufModel g = read_gguf_model(dir.path + "/m.gguf");
  CHECK(dynamic_cast<const Tokenizer&>(*g.tokenizer).gguf_tokens() == tok.gguf_tokens());
  CHECK(g.tokenizer->fingerprint() == tok.fingerprint());
}

TEST_CASE("bin/generate loads a GGUF with a 262144-token vocabulary within a minute (was quadratic)", "[limits]") {
  // Before the fix, rebuilding the tokenizer through a JSON object whose insert scanned every key took
  // about 150 s at 131072 tokens on this machine, four times that here; now a second or two.
  ScratchDir dir("limits-bigvocab");
  Tokenizer tok = Tokenizer::from_json(big_tokenizer_json(1 << 18));
  ModelConfig c = one_layer_config(tok.vocab_size());
  std::string gguf = dir.path + "/big.gguf";
  write_f32_gguf(gguf, f32_model(c), tok, 32);
  ProcResult r = run_proc({"bin/generate", "--model", gguf, "-n", "1", "--threads", "1"}, dir.path + "/gen", {}, 60);
  INFO(r.what());
  CHECK_FALSE(r.timed_out);
  CHECK(r.code == 0);
}

// ---- item 11: duplicate JSON keys ----

TEST_CASE("JSON refuses a key given twice, naming the key, in small and large objects", "[limits]") {
  REQUIRE_THROWS_WITH(Json::parse(R"({"a":1,"b":{"c":2,"c":3}})"), Catch::Contains("json: duplicate key 'c' at byte 18"));
  std::string big = "{";
  for (int i = 0; i < 1000; i++) big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  REQUIRE_NOTHROW(Json::parse(big + "\"last\":0}"));
  REQUIRE_THROWS_WITH(Json::parse(big + "\"k500\":0}"), Catch::Contains("duplicate key 'k500'"));
  // Equal after unescaping is the same key.
  REQUIRE_THROWS_WITH(Json::parse(R"({"ab":1,"a\u0062":2})"), Catch::Contains("duplicate key 'ab'"));
}

TEST_CASE("config.json with a duplicate key: bin/generate exits 1 with one line naming the key", "[limits]") {
  ScratchDir dir("limits-dupkey");
  Tokenizer tok = small_tokenizer();
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = tok.vocab_size();
  std::string ckpt = dir.path + "/ckpt";
  write_checkpoint(ckpt, f32_model(c), tok);
  std::string config = read_file(ckpt + "/config.json");
  const std::string key = "\"hidden_size\": 32,";
  REQUIRE(config.find(key) != std::string::npos);
  // Python's json (and so Hugging Face) would take the last value, 64; the first one used to win here.
  config.replace(config.find(key), key.size(), key + "\n  \"hidden_size\": 64,");
  write_file_atomic(ckpt + "/config.json", config);
  ProcResult r = run_proc({"bin/generate", "--model", ckpt, "-n", "1", "--threads", "1"}, dir.path + "/gen");
  expect_one_line(r, 1, {"generate: error:", "config.json", "duplicate key 'hidden_size'"});
}

// ---- item 6: a decode session's memory follows the tokens it holds ----

namespace {
// Peak RSS (MiB) of bin/generate, as it reports it on stderr (getrusage of itself). It runs under
// coreutils' timeout, which forks it from a small process: Linux carries a process's high-water RSS
// across exec, and a child spawned straight from this test would inherit the test's own peak.
double generate_peak_rss_mib(const std::vector<std::string>& args, const std::string& log_prefix) {
  std::vector<std::string> argv{"/usr/bin/timeout", "-s", "KILL", "60", "bin/generate"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcResult r = run_proc(argv, log_prefix, {}, 90);
  INFO(r.what());
  REQUIRE(r.code == 0);
  size_t at = r.err.find("peak RSS ");
  REQUIRE(at != std::string::npos);
  return std::atof(r.err.c_str() + at + 9);
}

// The tiny preset as a QAT q8_0 model: served by the integer kernels, where a prefill in one piece and
// in chunks give the same bits.
QuantizedModel tiny_qat_model(int64_t vocab) {
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = vocab;
  QatConfig q = QatConfig::make("q8_0", "", c.n_layers, c.tied);
  Transformer t(c, &q);
  t.init_weights(9);
  t.init_qat_scales();
  QuantizedModel qm = quantized_from_qat(t);
  qm.scheme = "q8_0";
  return qm;
}
}  // namespace

TEST_CASE("bin/generate -n 4 on a GGUF claiming a 2^20-token context: peak RSS within 2x of context 32", "[limits]") {
  // Before the fix the session sized its KV cache and activations for the claimed context up front:
  // 1.6 GB and seconds for this 24 KB-scale model (43 GB at d_model 1024).
  ScratchDir dir("limits-ctx");
  Tokenizer tok = small_tokenizer();
  QuantizedModel qm = tiny_qat_model(tok.vocab_size());
  std::string small = dir.path + "/ctx32.gguf", huge = dir.path + "/ctx1m.gguf";
  write_gguf_model(small, qm, tok);
  qm.cfg.context = 1 << 20;
  write_gguf_model(huge, qm, tok);
  auto gen = [&](const std::string& m) {
    return generate_peak_rss_mib({"--model", m, "-n", "4", "--threads", "1", "--prompt", "the quick"}, m);
  };
  double rss_small = gen(small), rss_huge = gen(huge);
  INFO("peak RSS at context 32: " << rss_small << " MiB, at context 2^20: " << rss_huge << " MiB");
  REQUIRE(rss_small > 0);
  CHECK(rss_huge < 2 * rss_small);
}

TEST_CASE("a session that grows its KV cache gives the bits of one that did not", "[limits][decode]") {
  // 1100 positions: past the constructor's reservation, so the cache is re-laid out twice (512 -> 1024
  // -> 2048) in the chunked run and once (512 -> 1100) in the single prefill.
  Tokenizer tok = small_tokenizer();
  DecodeModel dm = decode_model(tiny_qat_model(tok.vocab_size()));
  const int64_t T = 1100;
  std::vector<int32_t> ids(T);
  for (int64_t i = 0; i < T; i++) ids[size_t(i)] = int32_t((i * 37 + 11) % tok.vocab_size());
  DecodeSession one(dm, 1 << 20), chunked(dm, 1 << 20);
  Tensor all = one.forward(ids.data(), T, true);
  Tensor first = chunked.forward(ids.data(), 600, true);
  CHECK(test::same_bits(first, all.slice(0, 0, 600)));
  Tensor mid = chunked.forward(ids.data() + 600, 450, true);
  CHECK(test::same_bits(mid, all.slice(0, 600, 1050)));
  for (int64_t t = 1050; t < T; t++) {  // then token by token
    Tensor row = chunked.forward(&ids[size_t(t)], 1);
    REQUIRE(test::same_bits(row, all.slice(0, t, t + 1)));
  }
}

// ---- item 8: FIFOs and unwanted tensors ----

TEST_CASE("a FIFO as --model, --data, --text or a checkpoint file: one line, exit 1, no hang", "[limits]") {
  ScratchDir dir("limits-fifo");
  std::string fifo = dir.path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  Tokenizer tok = small_tokenizer();
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = tok.vocab_size();
  std::string ckpt = dir.path + "/ckpt";
  write_checkpoint(ckpt, f32_model(c), tok);
  int k = 0;
  auto run = [&](const std::vector<std::string>& argv) { return run_proc(argv, dir.path + "/r" + std::to_string(k++), {}, 20); };
  expect_one_line(run({"bin/generate", "--model", fifo}), 1, {"generate: error:", fifo, "not a regular file"});
  expect_one_line(run({"bin/train", "--data", fifo, "--preset", "tiny", "--steps", "2", "--out", dir.path + "/o",
                       "--cache-dir", dir.path + "/cache", "--quiet", "--no-plot"}),
                  1, {"train: error:", fifo, "not a regular file"});
  expect_one_line(run({"bin/eval", "--model", ckpt, "--text", fifo}), 1, {"eval: error:", fifo, "not a regular file"});
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"}) {
    std::string d = dir.path + "/ckpt-" + file;
    write_checkpoint(d, f32_model(c), tok);
    std::string p = d + "/" + file;
    ::unlink(p.c_str());
    REQUIRE(::mkfifo(p.c_str(), 0644) == 0);
    expect_one_line(run({"bin/generate", "--model", d}), 1, {"generate: error:", p, "not a regular file"});
  }
}

TEST_CASE("model.safetensors with an extra 8 GB tensor: refused from the header, nothing read", "[limits]") {
  ScratchDir dir("limits-extra");
  Tokenizer tok = small_tokenizer();
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = tok.vocab_size();
  std::string ckpt = dir.path + "/ckpt", st = ckpt + "/model.safetensors";
  write_checkpoint(ckpt, f32_model(c), tok);
  // The same file with "extra" (F32, 2^31 elements) appended as a hole: 8 GB that take no disk.
  std::string bytes = read_file(st);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | uint8_t(bytes[size_t(i)]);
  Json header = Json::parse(std::string_view(bytes).substr(8, n));
  const uint64_t data = bytes.size() - 8 - n, extra = uint64_t(1) << 33;
  Json e = Json::object(), shape = Json::array(), off = Json::array();
  e.set("dtype", "F32");
  shape.push(int64_t(1) << 31);
  e.set("shape", shape);
  off.push(data);
  off.push(data + extra);
  e.set("data_offsets", off);
  header.set("extra", e);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; i++) len[size_t(i)] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  write_file_atomic(st, len + text + bytes.substr(8 + n));
  REQUIRE(::truncate(st.c_str(), off_t(8 + text.size() + data + extra)) == 0);
  // Under a 1 GiB data limit: a loader that allocated the tensor before looking at its name would fail
  // with an allocation error (or, without the limit, read 8 GB) instead of naming the tensor.
  ProcResult r = run_proc({"/usr/bin/prlimit", "--data=1073741824", "bin/generate", "--model", ckpt, "--threads", "1"},
                          dir.path + "/gen", {}, 60);
  expect_one_line(r, 1, {"generate: error:", st, "unexpected tensor 'extra' (not part of this model's config)"});
}

TEST_CASE("safetensors expect: other names and shapes are refused from the header", "[limits]") {
  std::string file = serialize_safetensors({{"a", Tensor::zeros({2, 3})}, {"b", Tensor::zeros({4})}});
  std::vector<std::pair<std::string, Shape>> want{{"a", {2, 3}}, {"b", {4}}};
  REQUIRE(parse_safetensors(file, "m", {.expect = &want}).tensors.size() == 2);
  want = {{"a", {2, 3}}};
  REQUIRE_THROWS_WITH(parse_safetensors(file, "m", {.expect = &want}), Catch::Contains("m: unexpected tensor 'b'"));
  want = {{"a", {3, 2}}, {"b", {4}}};
  REQUIRE_THROWS_WITH(parse_safetensors(file, "m", {.expect = &want}),
                      Catch::Contains("m: tensor 'a' has shape (2, 3), the config expects (3, 2)"));
}

// ---- item 12: finite weights, non-finite logits ----

TEST_CASE("an output norm of 3e38: generate and eval stop with one line instead of printing nan", "[limits]") {
  ScratchDir dir("limits-overflow");
  Tokenizer tok = small_tokenizer();
  ModelConfig c = ModelConfig::preset_named("tiny");
  c.vocab = tok.vocab_size();
  Transformer t = f32_model(c);
  Tensor& norm = t.params[t.final_norm];
  for (int64_t i = 0; i < norm.numel(); i++) norm.f32()[i] = 3e38f;  // finite: every loader accepts it
  std::string ckpt = dir.path + "/ckpt", gguf = dir.path + "/m.gguf";
  write_checkpoint(ckpt, t, tok);
  write_f32_gguf(gguf, t, tok, c.context);
  std::string corpus = dir.put("corpus.txt", synthetic_corpus(60));
  int k = 0;
  auto run = [&](const std::vector<std::string>& argv) { return run_proc(argv, dir.path + "/r" + std::to_string(k++)); };
  for (const std::string& m : {ckpt, gguf}) {
    INFO("model " << m);
    expect_one_line(run({"bin/generate", "--model", m, "-n", "4", "--threads", "1", "--prompt", "the quick"}), 1,
                    {"generate: error:", "logits at position", "not finite", "overflow f32"});
    expect_one_line(run({"bin/eval", "--model", m, "--data", corpus, "--cache-dir", dir.path + "/cache", "--windows",
                         "1", "--threads", "1"}),
                    1, {"eval: error:", "overflow f32"});
  }
}
