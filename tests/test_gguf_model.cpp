// The served model file: a QAT model exported to GGUF reads back to the same codes, scales and
// tokenizer, serves bit-identical logits, and the loader rejects truncated and corrupted files.
#include <unistd.h>
#include <set>

#include "data/tokenizer.h"
#include "models/decode.h"
#include "models/gguf_model.h"
#include "models/quantized.h"
#include "src/io/file.h"
#include "tests/helpers.h"

using namespace qat;

namespace {
Tokenizer small_tokenizer(int vocab) {
  std::vector<std::string> docs;
  for (int i = 0; i < 200; i++) docs.push_back("the quick brown fox " + std::to_string(i) + " jumps over the lazy dog.");
  return Tokenizer::train(docs, vocab);
}

Transformer qat_model(const std::string& scheme, int64_t vocab) {
  ModelConfig c = ModelConfig::preset_named("tiny");
  if (scheme.rfind("tq", 0) == 0) c.d_model = c.ffn = 256;  // ternary rows are whole 256-blocks
  c.vocab = vocab;
  c.tied = scheme != "w8a8";  // cover an untied lm_head too
  QatConfig q = QatConfig::make(scheme, scheme == "q4_0" ? "layers.1.up=f32" : "", c.n_layers, c.tied);
  Transformer t(c, &q);
  t.init_weights(9);
  t.init_qat_scales();
  return t;
}
}  // namespace

TEST_CASE("GGUF round trip: codes, scales, tokenizer and served logits", "[gguf_model]") {
  Tokenizer tok = small_tokenizer(300);
  std::string path = "/tmp/qat-test-model-" + std::to_string(::getpid()) + ".gguf";
  for (const char* scheme : {"q4_0", "q8_0", "w8a8", "tq2_0", "tq1_0"}) {
    INFO("scheme " << scheme);
    Transformer t = qat_model(scheme, tok.vocab_size());
    QuantizedModel qm = quantized_from_qat(t);
    qm.scheme = scheme;
    write_gguf_model(path, qm, tok);
    GgufModel g = read_gguf_model(path);
    REQUIRE(g.model.cfg.to_json().dump() == [&] { ModelConfig c = t.cfg; c.preset.clear(); return c.to_json().dump(); }());
    const auto& back = dynamic_cast<const Tokenizer&>(*g.tokenizer);  // our own BPE is read as ours
    REQUIRE(back.gguf_tokens() == tok.gguf_tokens());
    REQUIRE(back.gguf_merges() == tok.gguf_merges());
    auto same = [](const ServedWeight& a, const ServedWeight& b) {
      return a.q == b.q && a.codes == b.codes && a.scales == b.scales && (a.q.quantized() || test::same_bits(a.f32, b.f32));
    };
    REQUIRE(same(g.model.embed, qm.embed));
    for (size_t l = 0; l < qm.layers.size(); l++)
      for (size_t k = 0; k < 7; k++) REQUIRE(same(g.model.layers[l][k], qm.layers[l][k]));
    if (!t.cfg.tied) REQUIRE(same(g.model.lm_head, qm.lm_head));
    std::vector<int32_t> ids = tok.encode("the lazy dog jumps over the quick brown fox");
    DecodeModel a = decode_model(qm), b = decode_model(g.model);
    DecodeSession sa(a, 32), sb(b, 32);
    REQUIRE(test::same_bits(sa.forward(ids.data(), int64_t(ids.size()), true), sb.forward(ids.data(), int64_t(ids.size()), true)));
    if (std::string(scheme).rfind("tq", 0) == 0) {  // llama.cpp's type ids and file type
      GgufFile f = read_gguf(path);
      const bool tq2 = std::string(scheme) == "tq2_0";
      CHECK(f.get_u32("general.file_type") == (tq2 ? 37u : 36u));  // LLAMA_FTYPE_MOSTLY_TQ2_0 / TQ1_0
      CHECK(uint32_t(f.tensor("blk.0.ffn_down.weight").type) == (tq2 ? 35u : 34u));  // GGML_TYPE_TQ2_0 / TQ1_0
      CHECK(f.tensor("blk.0.ffn_down.weight").nbytes == uint64_t(256 * 256 / 256 * (tq2 ? 66 : 54)));
    }
  }
  remove_tree(path);
}

// Serving memory (docs/MEMORY.md, "Serving"): a lazily read model holds no codes or scales, only views
// of the file's blocks; the served model holds the packed panels and the embedding's codes, never an f32
// copy of the embedding; and it serves the eager model's logits bit for bit. Re-exported, it writes the
// eager model's file.
TEST_CASE("GGUF lazy load: no codes held, packed panels only, same logits and same file", "[gguf_model][memory]") {
  Tokenizer tok = small_tokenizer(300);
  const std::string path = "/tmp/qat-test-lazy-" + std::to_string(::getpid()) + ".gguf", again = path + ".again";
  for (const char* scheme : {"q4_0", "q8_0", "w8a8"}) {
    INFO("scheme " << scheme);
    QuantizedModel qm = quantized_from_qat(qat_model(scheme, tok.vocab_size()));
    qm.scheme = scheme;
    write_gguf_model(path, qm, tok);
    GgufModel eager = read_gguf_model(path), lazy = read_gguf_model(path, GgufLoad::lazy);
    int64_t lazy_weights = 0;
    auto check = [&](const ServedWeight& w) {
      if (!w.q.quantized()) return;
      REQUIRE(w.lazy());
      REQUIRE(w.held_bytes() == 0);
      lazy_weights++;
    };
    check(lazy.model.embed);
    for (const auto& layer : lazy.model.layers)
      for (const ServedWeight& w : layer) check(w);
    if (!qm.cfg.tied) check(lazy.model.lm_head);
    REQUIRE(lazy_weights > 0);
    DecodeModel a = decode_model(eager.model), b = decode_model(lazy.model);
    REQUIRE(a.weight_bytes() == b.weight_bytes());
    const ModelConfig& c = qm.cfg;
    const bool embed_q = qm.embed.q.quantized();
    REQUIRE(b.tok_embd.f32.defined() == !embed_q);  // a quantized embedding is held as codes, never as f32
    if (embed_q) REQUIRE(b.tok_embd.bytes() == c.vocab * c.d_model + int64_t(qm.embed.scales.size()) * 4);
    std::vector<int32_t> ids = tok.encode("the lazy dog jumps over the quick brown fox");
    DecodeSession sa(a, 32), sb(b, 32);
    REQUIRE(test::same_bits(sa.forward(ids.data(), int64_t(ids.size()), true), sb.forward(ids.data(), int64_t(ids.size()), true)));
    write_gguf_model(path, eager.model, tok);  // from the codes
    write_gguf_model(again, lazy.model, tok);  // from the blocks, after their pages were given back
    REQUIRE(read_file(again) == read_file(path));
  }
  remove_tree(path);
  remove_tree(again);
}

TEST_CASE("GGUF model loader rejects truncated and corrupted files with one clear line", "[gguf_model]") {
  Tokenizer tok = small_tokenizer(300);
  std::string path = "/tmp/qat-test-bad-" + std::to_string(::getpid()) + ".gguf";
  Transformer t = qat_model("q4_0", tok.vocab_size());
  QuantizedModel qm = quantized_from_qat(t);
  write_gguf_model(path, qm, tok);
  const std::string good = read_file(path);
  // Every truncation (stepping through the header densely and the data coarsely) is an error.
  for (size_t n = 0; n < good.size(); n += n < 4096 ? 1 : 997) {
    write_file_atomic(path, std::string_view(good).substr(0, n));
    REQUIRE_THROWS_AS(read_gguf_model(path), Error);
  }
  auto corrupt = [&](const std::string& what, std::string bytes, const char* expect) {
    INFO(what);
    write_file_atomic(path, bytes);
    REQUIRE_THROWS_WITH(read_gguf_model(path), Catch::Contains(path) && Catch::Contains(expect));
  };
  std::string b = good;
  b[0] = 'X';
  corrupt("bad magic", b, "magic");
  b = good;
  b[4] = 9;
  corrupt("bad version", b, "version");
  // Change a hyperparameter so it no longer matches the tensors.
  GgufWriter w;
  {
    GgufFile f = parse_gguf(good, path);
    for (const GgufKv& kv : f.kv) {
      if (kv.key == "llama.feed_forward_length") { w.set_u32(kv.key, 96); continue; }
      if (kv.value.type == GgufType::u32) w.set_u32(kv.key, f.get_u32(kv.key));
      else if (kv.value.type == GgufType::f32) w.set_f32(kv.key, f.get_f32(kv.key));
      else if (kv.value.type == GgufType::string) w.set_string(kv.key, f.get_string(kv.key));
      else if (kv.value.type == GgufType::boolean) w.set_bool(kv.key, f.get_bool(kv.key));
      else if (kv.value.elem_type == GgufType::string) w.set_arr_string(kv.key, f.get_arr_string(kv.key));
      else if (kv.value.elem_type == GgufType::i32) w.set_arr_i32(kv.key, f.get_arr_i32(kv.key));
    }
    for (const GgufTensorInfo& ti : f.tensors)
      w.add_tensor(ti.name, ti.type, ti.ne, std::string(reinterpret_cast<const char*>(ti.data), ti.nbytes));
  }
  corrupt("config does not match the tensors", w.serialize(), "shape");
  // A u64 where llama.cpp requires a u32.
  size_t at = good.find("llama.context_length");
  REQUIRE(at != std::string::npos);
  b = good;
  b[at + std::string("llama.context_length").size()] = 10;  // value type u32 (4) -> u64 (10)
  REQUIRE_THROWS_AS(read_gguf_model((write_file_atomic(path, b), path)), Error);
  remove_tree(path);
}

// The keys llama.cpp reads, with the types it requires, checked by loading our files in llama.cpp b4747
// (docs/LLAMACPP.md). BOS: training puts an EOT before every document and bin/generate starts every prompt
// with one, so the file declares BOS = EOT with add_bos_token = true; with false, llama-cli and
// llama-simple continued a prompt without it and generated other text than bin/generate.
TEST_CASE("GGUF metadata is what llama.cpp reads: types, tokenizer arrays, BOS = EOT added", "[gguf_model]") {
  Tokenizer tok = small_tokenizer(300);
  std::string path = "/tmp/qat-test-meta-" + std::to_string(::getpid()) + ".gguf";
  Transformer t = qat_model("q4_0", tok.vocab_size());
  QuantizedModel qm = quantized_from_qat(t);
  qm.scheme = "q4_0";
  write_gguf_model(path, qm, tok);
  GgufFile f = read_gguf(path);
  REQUIRE(f.get_string("general.architecture") == "llama");
  REQUIRE(f.get_u32("general.file_type") == 2);  // LLAMA_FTYPE_MOSTLY_Q4_0
  for (const char* k : {"llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count"})
    REQUIRE_NOTHROW(f.get_u32(k));  // u32: llama.cpp rejects a u64 count
  REQUIRE(f.get_f32("llama.attention.layer_norm_rms_epsilon") == t.cfg.rms_eps);
  REQUIRE(f.get_string("tokenizer.ggml.model") == "gpt2");
  REQUIRE(f.get_string("tokenizer.ggml.pre") == "gpt-2");
  const uint32_t eot = uint32_t(tok.eot_id());
  REQUIRE(f.get_u32("tokenizer.ggml.bos_token_id") == eot);
  REQUIRE(f.get_u32("tokenizer.ggml.eos_token_id") == eot);
  REQUIRE(f.get_bool("tokenizer.ggml.add_bos_token"));
  REQUIRE_FALSE(f.get_bool("tokenizer.ggml.add_eos_token"));  // llama-perplexity asserts it is off
  const std::vector<std::string>& tokens = f.get_arr_string("tokenizer.ggml.tokens");
  REQUIRE(tokens.size() == size_t(tok.vocab_size()));
  REQUIRE(tokens[size_t(eot)] == Tokenizer::kEotText);
  // GPT-2's byte-to-unicode strings: llama.cpp looks merges and pieces up by these strings.
  REQUIRE(tokens[' '] == "\xC4\xA0");   // U+0120
  REQUIRE(tokens['\n'] == "\xC4\x8A");  // U+010A
  REQUIRE(tokens['a'] == "a");
  std::vector<int32_t> types = f.get_arr_i32("tokenizer.ggml.token_type");
  REQUIRE(types.size() == tokens.size());
  for (size_t i = 0; i < types.size(); i++) REQUIRE(types[i] == (i == eot ? 3 : 1));  // control : normal
  // Token strings are unique (llama.cpp maps string -> id) and every merge is "LEFT RIGHT" of two of them.
  std::set<std::string> unique(tokens.begin(), tokens.end());
  REQUIRE(unique.size() == tokens.size());
  for (const std::string& m : f.get_arr_string("tokenizer.ggml.merges")) {
    size_t sp = m.find(' ');
    REQUIRE(sp != std::string::npos);
    REQUIRE(m.find(' ', sp + 1) == std::string::npos);
    REQUIRE(unique.count(m.substr(0, sp)) == 1);
    REQUIRE(unique.count(m.substr(sp + 1)) == 1);
    REQUIRE(unique.count(m.substr(0, sp) + m.substr(sp + 1)) == 1);
  }
  remove_tree(path);
}
