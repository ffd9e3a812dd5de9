// Writes the seed corpora in tests/fuzz/corpus/<target>/ (committed; rerun with `make fuzz-seeds` after
// a format change). Each seed is a small valid file that exercises a different part of its format.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "data/vocab.h"
#include "src/core/dtype.h"
#include "models/config.h"
#include "models/gguf_model.h"
#include "src/io/file.h"
#include "src/io/gguf.h"
#include "src/io/safetensors.h"

using namespace qat;

static std::string dir = "tests/fuzz/corpus/";

static void put(const std::string& name, const std::string& bytes) {
  write_file_atomic(dir + name, bytes);
  std::printf("%-45s %6zu bytes\n", name.c_str(), bytes.size());
}

static Tensor f16_tensor(const Shape& s) {
  Tensor t = Tensor::empty(s, DType::f16);
  for (int64_t i = 0; i < t.numel(); i++) t.data<uint16_t>()[i] = f32_to_f16(0.25f * float(i) - 1.0f);
  return t;
}

static Tensor bytes_tensor(const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  auto* p = static_cast<uint8_t*>(t.impl->storage->data);
  for (size_t i = 0; i < t.nbytes(); i++) p[i] = uint8_t(i * 37 + 11);
  return t;
}

// A weight of the served model in format `fmt` (f32, q8_0, q4_0, w8a8, q4_k or q6_k) with deterministic values.
static ServedWeight weight(const std::string& name, int64_t N, int64_t K, const std::string& fmt, uint64_t seed) {
  ServedWeight w;
  w.name = name;
  w.N = N;
  w.K = K;
  if (fmt == "f32") {
    w.f32 = Tensor::randn({N, K}, seed, 0.1f);
    return w;
  }
  w.q = scheme_layer(fmt);
  if (const BlockRule* rule = w.q.format().post_training) {  // K-quants: blocks of deterministic values
    Tensor x = Tensor::randn({N, K}, seed, 0.1f);
    w.owned_blocks.resize(size_t(w.storage_bytes()));
    rule->quantize(x.f32(), N * K, w.owned_blocks.data(), KRule::ggml);
    return w;
  }
  const int lo = w.q.code_min(), hi = w.q.code_max();
  w.codes.resize(size_t(N * K));
  for (size_t i = 0; i < w.codes.size(); i++) w.codes[i] = int8_t(lo + int64_t((i * 7 + seed) % uint64_t(hi - lo + 1)));
  w.scales.resize(size_t(fmt == "w8a8" ? N : N * K / 32));
  for (size_t i = 0; i < w.scales.size(); i++) w.scales[i] = 0.0078125f * float(1 + (i + seed) % 5);  // exact in f16
  return w;
}

// A one-layer model with d_model 32 and the 258-token tokenizer `tok`, every weight in `fmt`
// (the embedding in `embed_fmt`), tied or with its own lm_head.
static std::string model_gguf(const Vocab& tok, const std::string& fmt, const std::string& embed_fmt, bool tied,
                              bool nan_scale = false, const std::string& down_fmt = "") {
  QuantizedModel m;
  m.cfg.vocab = tok.vocab_size();
  m.cfg.context = 16;
  m.cfg.n_layers = 1;
  m.cfg.d_model = 32;
  m.cfg.n_heads = 2;
  m.cfg.n_kv_heads = 1;
  m.cfg.ffn = down_fmt.empty() ? 32 : 256;  // a K-quant down projection needs K = ffn a multiple of 256
  m.cfg.tied = tied;
  m.cfg.preset = "seed";
  m.scheme = fmt;
  m.activations = fmt == "w8a8" ? "int8_token" : "q8_0";
  const int64_t C = 32, V = m.cfg.vocab;
  m.embed = weight("model.embed_tokens.weight", V, C, embed_fmt, 1);
  std::vector<ServedWeight> layer;
  for (Proj p : kBlockProj)
    layer.push_back(weight(std::string("model.layers.0.") + proj_info(p).hf + ".weight", m.cfg.proj_rows(p),
                           m.cfg.proj_cols(p), p == Proj::down && !down_fmt.empty() ? down_fmt : fmt, 2 + uint64_t(p)));
  m.layers.push_back(std::move(layer));
  m.attn_norm.push_back(Tensor::full({C}, 1.0f));
  m.mlp_norm.push_back(Tensor::full({C}, 0.5f));
  m.final_norm = Tensor::full({C}, 2.0f);
  if (!tied) m.lm_head = weight("lm_head.weight", V, C, fmt, 9);
  if (nan_scale) m.layers[0][0].scales[3] = NAN;
  std::string path = "/tmp/qat-make-seeds.gguf";
  write_gguf_model(path, m, tok);
  std::string bytes = read_file(path);
  std::remove(path.c_str());
  return bytes;
}

int main() {
  // ---- safetensors ----
  put("safetensors/all_dtypes.safetensors",
      serialize_safetensors({{"model.embed_tokens.weight", Tensor::from({2, 3}, {1, -2, 3.5f, 0, 1e-3f, -1e6f})},
                             {"half", f16_tensor({4})},
                             {"codes", bytes_tensor({3}, DType::s8)},
                             {"bytes", bytes_tensor({2}, DType::u8)},
                             {"ints", Tensor::from_s32({2, 1}, {-7, 1 << 20})},
                             {"scalar", Tensor::from({}, {2.0f})},
                             {"empty", Tensor::empty({0, 3})}},
                            {{"step", "12"}, {"note", "a \"quoted\" \\ value\n"}}));
  put("safetensors/no_tensors.safetensors", serialize_safetensors({}));
  put("safetensors/one_f32.safetensors", serialize_safetensors({{"x", Tensor::from({2, 2}, {1, 2, 3, 4})}}));
  // Bytes written by the reference implementation (huggingface/safetensors tensor.rs unit tests).
  std::string ref = std::string("\x40\0\0\0\0\0\0\0", 8) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  for (float f : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) ref.append(reinterpret_cast<const char*>(&f), 4);
  put("safetensors/reference_serialization.safetensors", ref);
  put("safetensors/reference_metadata.safetensors",
      std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  // ---- gguf ----
  {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.context_length", 256);
    w.set_u32("llama.embedding_length", 64);
    w.set_u32("llama.block_count", 1);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_arr_string("tokenizer.ggml.tokens", {"a", "b", "\xc4\xa0the"});
    w.set_arr_i32("tokenizer.ggml.token_type", {1, 1, 1});
    w.set_arr_string("tokenizer.ggml.merges", {"a b"});
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    w.add_tensor("token_embd.weight", GgmlType::Q8_0, {32, 3}, std::string(3 * 34, '\x05'));
    w.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_0, {64, 2}, std::string(2 * 2 * 18, '\x88'));
    w.add_tensor("output_norm.weight", Tensor::from({5}, {1, 1, 1, 0.5f, 2}));
    put("gguf/llama_like.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_u8("u8", 1); w.set_i8("i8", -1); w.set_u16("u16", 2); w.set_i16("i16", -2); w.set_u32("u32", 3);
    w.set_i32("i32", -3); w.set_u64("u64", 4); w.set_i64("i64", -4); w.set_f32("f32", 0.5f); w.set_f64("f64", 0.25);
    w.set_bool("bool", true); w.set_string("string", "s");
    w.set_arr_u8("au8", {1, 2}); w.set_arr_i8("ai8", {-1}); w.set_arr_u16("au16", {3}); w.set_arr_i16("ai16", {-3});
    w.set_arr_u32("au32", {4}); w.set_arr_i32("ai32", {-4}); w.set_arr_u64("au64", {5}); w.set_arr_i64("ai64", {-5});
    w.set_arr_f32("af32", {1.5f}); w.set_arr_f64("af64", {2.5}); w.set_arr_bool("abool", {true, false});
    w.set_arr_string("astring", {"x", ""});
    w.add_tensor("f16", f16_tensor({2, 2}));
    w.add_tensor("i8", bytes_tensor({3}, DType::s8));
    w.add_tensor("i32", Tensor::from_s32({1}, {9}));
    put("gguf/all_types.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_u32("general.alignment", 64);
    w.add_tensor("a", Tensor::from({3}, {1, 2, 3}));
    w.add_tensor("b", GgmlType::Q4_0, {32}, std::string(18, '\x01'));
    put("gguf/align64.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_string("general.name", "no tensors");
    put("gguf/no_tensors.gguf", w.serialize());
    GgufWriter v2;
    v2.add_tensor("k", GgmlType::Q6_K, {256}, std::string(210, '\x02'));
    std::string s = v2.serialize();
    s[4] = 2;  // version 2: same layout
    put("gguf/version2_q6k.gguf", s);
  }

  // ---- json ----
  put("json/safetensors_header.json",
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})");
  put("json/config.json", R"({
  "preset": "small", "vocab": 1024, "context": 256, "layers": 4, "d_model": 128, "heads": 4,
  "kv_heads": 2, "ffn": 384, "rms_eps": 1e-05, "rope_base": 10000.0, "tied": true,
  "rope_layout": "adjacent_pairs", "lr": 0.0003, "notes": null, "list": [1, -2, 3.5, [], {}]
})");
  put("json/strings.json", R"(["plain", "esc \" \\ \/ \b \f \n \r \t", "\u00e9\u4e2d\ud83d\ude00", "raw é"])");
  put("json/numbers.json", "[0, -0, 1e308, -1.5e-308, 18446744073709551615, -9223372036854775808, 123456789012345678901234]");
  put("json/nested.json", "[[[[[[[[[[{\"a\":[{\"b\":[]}]}]]]]]]]]]]");

  // ---- tokenizer: text (round trip) and tokenizer.json (loader) ----
  put("tokenizer/english.txt", "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it?\n");
  put("tokenizer/utf8.txt", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\r\n\t  spaces   ");
  static const char invalid[] = "\xff\xfe\x80 \xc0\xaf \xed\xa0\x80 \0 nul";
  put("tokenizer/invalid_utf8.txt", std::string(invalid, sizeof invalid - 1));
  put("tokenizer/eot_text.txt", "<|endoftext|>the end<|endoftext|>");
  const std::vector<std::string> docs = {"the cat sat on the mat", "the dog sat on the log", "a \xe4\xb8\xad cat"};
  const Tokenizer small = Tokenizer::train(docs, 280);
  put("tokenizer_json/trained_280.json", small.to_json());
  put("tokenizer_json/bytes_only.json", Tokenizer::train({"x"}, 257).to_json());
  // The same tokenizer with merges as ["A", "B"] pairs, the form newer `tokenizers` versions write.
  {
    Json j = Json::parse(Tokenizer::train({"ab ab ab abc"}, 260).to_json());
    Json pairs = Json::array();
    for (const Json& m : j.at("model").at("merges").items()) {
      std::string s = m.as_string();
      Json pair = Json::array();
      pair.push(s.substr(0, s.find(' ')));
      pair.push(s.substr(s.find(' ') + 1));
      pairs.push(pair);
    }
    Json model = j.at("model");
    model.set("merges", pairs);
    j.set("model", model);
    put("tokenizer_json/pair_merges.json", j.dump());
  }

  // ---- token_cache: a cache file for the harness's corpus, the last byte its field-patching flags ----
  {
    Corpus c;
    c.train = {"the cat sat on the mat", "a dog's life \xe4\xb8\xad", "it rained all day"};
    c.val = {"the end"};
    Tokenizer t = Tokenizer::train(c.train, 300);
    std::string cache_dir = "/tmp/qat-make-seeds-cache";
    TokenizedData d = load_or_tokenize(c, t, cache_dir);
    std::string file = read_file(d.cache_path);
    remove_tree(cache_dir);
    put("token_cache/valid_patch_all", file + '\x07');
    put("token_cache/valid_patch_none", file + '\x00');
    put("token_cache/header_only", file.substr(0, 8 + 12 * 8) + '\x07');
  }

  // ---- config: config.json of each preset, tied and not ----
  for (const char* p : {"tiny", "small", "base"}) {
    ModelConfig c = ModelConfig::preset_named(p);
    c.tied = std::string(p) != "small";
    put(std::string("config/") + p + ".json", c.to_json().dump(2));
  }
  put("config/minimal.json", R"({"vocab_size":300,"max_position_embeddings":8,"num_hidden_layers":1,"hidden_size":4,)"
                             R"("num_attention_heads":2,"intermediate_size":3,"rms_norm_eps":1e-6,"rope_layout":"adjacent_pairs"})");

  // ---- gguf_model: one-layer models in each served format ----
  const Tokenizer tok = Tokenizer::train({"ab ab ab"}, 258);
  put("gguf_model/q8_0_tied.gguf", model_gguf(tok, "q8_0", "q8_0", true));
  put("gguf_model/q4_0_untied.gguf", model_gguf(tok, "q4_0", "q4_0", false));
  put("gguf_model/w8a8_f32_embed.gguf", model_gguf(tok, "w8a8", "f32", true));
  put("gguf_model/q8_0_q4_k_down.gguf", model_gguf(tok, "q8_0", "q8_0", true, false, "q4_k"));
  put("gguf_model/q8_0_q6_k_down.gguf", model_gguf(tok, "q8_0", "q8_0", true, false, "q6_k"));
  // Regression seed (found by fuzz_gguf_model): a NaN block scale, accepted before the loader checked.
  put("gguf_model/regress_nan_block_scale.gguf", model_gguf(tok, "q8_0", "q8_0", true, true));

  // An imported model (issue 20): a llama.cpp-style SPM vocabulary, no qat.* keys, F16 block weights
  // and a BF16 output, as a file qat did not write.
  {
    GgufWriter v;
    v.set_string("tokenizer.ggml.model", "llama");
    v.set_arr_string("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "\xe2\x96\x81", "a", "b", "ab"});
    v.set_arr_f32("tokenizer.ggml.scores", {0, 0, 0, 0, 0, -5, -5, -5, -1});
    v.set_arr_i32("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1});
    v.set_bool("tokenizer.ggml.add_bos_token", true);
    const GgufFile ours = parse_gguf(model_gguf(*vocab_from_gguf(parse_gguf(v.serialize(), "v")), "f32", "f32", false), "m");
    GgufWriter w;
    for (const GgufKv& kv : ours.kv)
      if (kv.key.rfind("qat.", 0) != 0) w.set_value(kv.key, kv.value);
    for (const GgufTensorInfo& t : ours.tensors) {
      const bool half = t.ne.size() == 2;
      const GgmlType type = !half ? t.type : t.name == "output.weight" ? GgmlType::BF16 : GgmlType::F16;
      std::string bytes(half ? size_t(t.numel()) * 2 : t.nbytes, '\0');
      for (int64_t i = 0; half && i < t.numel(); i++) {
        float f;
        std::memcpy(&f, t.data + 4 * i, 4);
        uint32_t b;
        std::memcpy(&b, &f, 4);
        const uint16_t h = type == GgmlType::F16 ? f32_to_f16(f) : uint16_t(b >> 16);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
      if (!half) std::memcpy(bytes.data(), t.data, t.nbytes);
      w.add_tensor(t.name, type, t.ne, std::move(bytes));
    }
    put("gguf_model/foreign_spm_f16_bf16.gguf", w.serialize());
  }

  // ---- model_vocab: imported tokenizers (SPM with scores and byte tokens; BPE with merges per pre type) ----
  {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_arr_string("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "\xe2\x96\x81", "a", "b", "ab",
                                               "\xe2\x96\x81" "ab", "<|user|>", "<|end|>"});
    w.set_arr_f32("tokenizer.ggml.scores", {0, 0, 0, 0, 0, -5, -5, -5, -1, -2, 0, 0});
    w.set_arr_i32("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 4, 4});
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_string("general.name", "phi3");
    put("model_vocab/spm.gguf", w.serialize());
  }
  for (const char* pre : {"llama-bpe", "deepseek-llm", "falcon"}) {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", pre);
    w.set_arr_string("tokenizer.ggml.tokens", {"<|endoftext|>", "a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "ab", "1", "cab"});
    w.set_arr_i32("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1, 1, 1, 1});
    w.set_arr_string("tokenizer.ggml.merges", {"c a", "a b", "\xc4\xa0 ab", "ca b"});
    w.set_u32("tokenizer.ggml.bos_token_id", 0);
    w.set_u32("tokenizer.ggml.eos_token_id", 0);
    put(std::string("model_vocab/bpe-") + pre + ".gguf", w.serialize());
  }
  return 0;
}
