// Hugging Face Llama import (models/hf_import.h) against PyTorch: tests/fixtures/hf_tiny/ is a random
// HF-layout Llama (GQA, rotate-half RoPE, two shards: BF16 and F32, with the index json) written by
// tests/reference/hf_llama_golden.py, which also wrote its logits (hf_tiny_golden.safetensors) from
// Hugging Face's forward in float64. The import must give those logits through our Transformer within
// 1e-5 of the largest logit; and every malformed directory is refused in one line naming the file.
#include <cmath>

#include "data/model_vocab.h"
#include "models/from_checkpoint.h"
#include "models/hf_import.h"
#include "models/model_source.h"
#include "models/transformer.h"
#include "src/io/file.h"
#include "src/io/gguf.h"
#include "src/io/safetensors.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {
const std::string kFixture = "tests/fixtures/hf_tiny";
const char* kShard1 = "model-00001-of-00002.safetensors";
const char* kShard2 = "model-00002-of-00002.safetensors";

// logits (T, V) of the imported fixture through the training forward.
Tensor imported_logits(const LoadedCheckpoint& ck, const Tensor& tokens) {
  Transformer t(ck.config);
  load_params(t.params, ck.weights, ck.dir);
  return t.forward(tokens.reshape({1, tokens.numel()})).reshape({tokens.numel(), ck.config.vocab});
}

float rel_diff(const Tensor& a, const Tensor& b) { return test::max_abs_diff(a, b) / std::max(1e-12f, test::max_abs(b)); }

// A copy of the fixture in a scratch directory, with `file` replaced by `text` (when given).
struct FixtureCopy {
  test::ScratchDir dir;
  explicit FixtureCopy(const std::string& name) : dir("hf-" + name) {
    for (const char* f : {"config.json", "model.safetensors.index.json", kShard1, kShard2})
      dir.put(f, read_file(kFixture + "/" + f));
  }
  std::string edit(const std::string& file, const std::string& from, const std::string& to) {
    std::string text = read_file(dir.path + "/" + file);
    size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    dir.put(file, text.replace(at, from.size(), to));
    return dir.path;
  }
};

std::string import_error(const std::string& dir, const HfImportOptions& opt = {}) {
  try {
    read_hf_checkpoint(dir, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A tied single-file model of the tiny GQA shape written by our own writer (F16 weights).
std::string write_tied_model(const test::ScratchDir& d, bool lm_head_equal) {
  ModelConfig c = test::tiny_gqa_config();
  c.tied = true;
  Json cfg = c.to_json();
  Json hf = Json::object();
  for (const auto& [k, v] : cfg.members())
    if (k != "rope_layout") hf.set(k, v);
  d.put("config.json", hf.dump());
  Transformer t(c);
  t.init_weights(7);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (int i = 0; i < t.params.size(); i++) {
    Tensor h = Tensor::empty(t.params[i].shape(), DType::f16);
    const float* src = t.params[i].f32();
    for (int64_t j = 0; j < h.numel(); j++) h.data<uint16_t>()[j] = f32_to_f16(src[j]);
    tensors.emplace_back(t.params.info(i).name, h);
  }
  Tensor head = tensors[0].second.clone();
  if (!lm_head_equal) head.data<uint16_t>()[3] ^= 1;
  tensors.emplace_back("lm_head.weight", head);
  save_safetensors(d.path + "/model.safetensors", tensors);
  return d.path;
}
}  // namespace

TEST_CASE("Hugging Face Llama import matches PyTorch's logits (two shards, BF16 + F32, GQA, rotate-half)", "[hf_import]") {
  SafeTensors golden = load_safetensors("tests/fixtures/hf_tiny_golden.safetensors");
  LoadedCheckpoint ck = read_hf_checkpoint(kFixture);
  CHECK(ck.config.n_heads == 4);
  CHECK(ck.config.n_kv_heads == 2);
  CHECK(ck.config.rope_base == 100000.0f);
  CHECK(!ck.config.tied);
  CHECK(ck.quantization.is_null());
  CHECK(ck.weights.find("model.layers.1.self_attn.rotary_emb.inv_freq") == nullptr);  // dropped
  Tensor logits = imported_logits(ck, golden.at("tokens"));
  float d = rel_diff(logits, golden.at("logits"));
  INFO("logits maxdiff (relative to max |logit|) " << d << "; first: ours " << logits.f32()[0] << ", PyTorch "
                                                   << golden.at("logits").f32()[0]);
  CHECK(d < 1e-5f);
  // The KV-cache decode of the same import (decode.h), token by token, gives PyTorch's logits too.
  DecodeModel m = decode_model_from_checkpoint(ck);
  DecodeSession s(m, ck.config.context);
  const Tensor& tokens = golden.at("tokens");
  std::vector<float> steps;
  for (int64_t i = 0; i < tokens.numel(); i++) {
    Tensor row = s.forward(tokens.data<int32_t>() + i, 1);
    steps.insert(steps.end(), row.f32(), row.f32() + row.numel());
  }
  float dd = rel_diff(Tensor::from(golden.at("logits").shape(), steps), golden.at("logits"));
  INFO("decode logits maxdiff " << dd);
  CHECK(dd < 1e-5f);
}

TEST_CASE("rotate-half -> adjacent-pair row permutation, and back", "[hf_import]") {
  // 2 heads of D = 4, C = 1: HF rows (h, j + s D/2) -> our rows (h, 2j + s).
  Tensor w = Tensor::from({8, 1}, {0, 1, 2, 3, 4, 5, 6, 7});
  permute_rotate_half_rows(w, 2);
  CHECK(w.to_vector() == std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7});
  permute_rotate_half_rows(w, 2, /*inverse=*/true);
  CHECK(w.to_vector() == std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("Hugging Face import: a tied model in one F16 file; a stored lm_head must equal the embedding", "[hf_import]") {
  test::ScratchDir d("hf-tied");
  LoadedCheckpoint ck = read_hf_checkpoint(write_tied_model(d, true));
  CHECK(ck.config.tied);
  CHECK(ck.weights.find("lm_head.weight") == nullptr);
  CHECK(ck.weights.at("model.embed_tokens.weight").dtype() == DType::f32);
  CHECK(ck.tokenizer_path.empty());
  test::ScratchDir d2("hf-tied-bad");
  CHECK_THAT(import_error(write_tied_model(d2, false)),
             Catch::Contains("tie_word_embeddings is true but lm_head.weight differs"));
}

TEST_CASE("Hugging Face import refuses what it cannot read, in one line naming the file", "[hf_import]") {
  struct Case {
    const char *file, *from, *to, *expect;
  };
  const Case cases[] = {
      {"config.json", "\"LlamaForCausalLM\"", "\"MistralForCausalLM\"", "config.json: architectures is [\"MistralForCausalLM\"]"},
      {"config.json", "\"silu\"", "\"gelu\"", "config.json: hidden_act is \"gelu\": only silu"},
      {"config.json", "\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}",
       "config.json: rope_scaling is {\"type\":\"linear\""},
      {"config.json", "\"attention_bias\": false", "\"attention_bias\": true", "attention biases are not supported"},
      {"config.json", "\"use_cache\": true", "\"rope_layout\": \"adjacent_pairs\"", "config.json: has rope_layout"},
      {"config.json", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "config.json: config: num_attention_heads 4"},
      {"config.json", "\"vocab_size\": 64", "\"vocab_size\": 65", "has shape (64, 32), the config expects (65, 32)"},
      {"config.json", "\"vocab_size\": 64", "\"vocab_size\": \"64\"", "config.json: config: vocab_size:"},
      {"model.safetensors.index.json", "\"lm_head.weight\": \"model-00002", "\"lm_head.weight\": \"../model-00002",
       "model.safetensors.index.json: weight_map['lm_head.weight'] is '../model-00002-of-00002.safetensors', expected a file name"},
      {"model.safetensors.index.json", "\"lm_head.weight\"", "\"lm_head.bias\"",
       "weight_map names tensor 'lm_head.bias', which is not part of this Llama config"},
      {"model.safetensors.index.json", "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"",
       "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"", "model-00003-of-00003.safetensors: missing"},
      {"model.safetensors.index.json", "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"",
       "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"",
       "model-00001-of-00002.safetensors: no tensor 'model.norm.weight' (model.safetensors.index.json puts it"},
  };
  for (const Case& c : cases) {
    FixtureCopy f(std::string("case") + std::to_string(&c - cases));
    std::string err = import_error(f.edit(c.file, c.from, c.to));
    INFO(err);
    CHECK_THAT(err, Catch::Contains(c.expect));
    CHECK(err.find('\n') == std::string::npos);
  }
}

TEST_CASE("Hugging Face import: missing pieces and a model larger than memory are refused before reading", "[hf_import]") {
  FixtureCopy f("missing");
  ::unlink((f.dir.path + "/model.safetensors.index.json").c_str());
  CHECK_THAT(import_error(f.dir.path), Catch::Contains("no model.safetensors or model.safetensors.index.json"));
  CHECK_THAT(import_error(f.dir.path + "/nothing"), Catch::Contains("not a directory"));
  // The fixture's f32 weights are 19,620 values (76.6 KiB, inv_freq included): 32 KiB refuses it with its size.
  CHECK_THAT(import_error(kFixture, {.memory_budget_bytes = 32768}),
             Catch::Contains("the model's f32 weights take 76.6 KiB (19620 values), more than the 32.0 KiB"));
  FixtureCopy g("lacks");
  g.edit("model.safetensors.index.json", ",\n    \"model.norm.weight\": \"model-00002-of-00002.safetensors\"", "");
  CHECK_THAT(import_error(g.dir.path), Catch::Contains("weight_map lacks 'model.norm.weight'"));
}

TEST_CASE("safetensors to_f32: F16 and BF16 widen exactly; BF16 is refused without it", "[hf_import][safetensors]") {
  // One BF16 tensor (1.0, -2.5, 3.140625) and one F16 (0.5, 65504) by hand.
  std::string header = "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int i = 0; i < 8; i++) file[i] = char((header.size() >> (8 * i)) & 0xff);
  file += header;
  for (uint16_t h : {uint16_t(0x3f80), uint16_t(0xc020), uint16_t(0x4049), uint16_t(0x3800), uint16_t(0x7bff)})
    file += std::string{char(h & 0xff), char(h >> 8)};
  SafeTensors st = parse_safetensors(file, "x.safetensors", {.to_f32 = true});
  CHECK(st.at("a").to_vector() == std::vector<float>{1.0f, -2.5f, 3.140625f});
  CHECK(st.at("b").to_vector() == std::vector<float>{0.5f, 65504.0f});
  CHECK(st.at("b").dtype() == DType::f32);
  CHECK_THROWS_WITH(parse_safetensors(file, "x.safetensors"),
                    Catch::Contains("x.safetensors: tensor 'a': dtype 'BF16' is not supported"));
}

// ---- tokenizer.json (ModelVocab::from_hf_tokenizer_json), on two hand-written files ----

namespace {
std::string vocab_error(const std::string& json) {
  test::ScratchDir d("hf-tok-bad");
  try {
    ModelVocab::from_hf_tokenizer_json(d.put("tokenizer.json", json));
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("tokenizer.json, SentencePiece form: merges as scores, byte fallback, specials from tokenizer_config", "[hf_import][tokenizer]") {
  // tests/fixtures/hf_tiny/tokenizer.json: 21 tokens (<unk> <s> </s> <0x0A> <0x21> ▁ h e l o w r d ...), 8 merges
  // (ll, ▁h, ▁w, ell, ▁hell, or, ▁wor, ▁hello in rank order), a user-defined <sep> (id 21, rstrip).
  ModelVocab v = ModelVocab::from_hf_tokenizer_json(kFixture + "/tokenizer.json");
  CHECK(v.kind() == ModelVocab::Kind::spm);
  CHECK(v.vocab_size() == 64);  // padded to config.json's vocab_size, as the converter does
  CHECK(v.bos_id() == 1);
  CHECK(v.eos_id() == 2);
  CHECK(v.add_bos());
  // "▁hello▁world!\n": ▁hello, ▁wor (no "ld" merge), l, d, then '!' and '\n' as byte tokens.
  CHECK(v.encode("hello world!\n", true, false) == std::vector<int32_t>{1, 20, 19, 8, 12, 4, 3});
  // 'i' is no token and has no byte token: <unk>; <sep> drops the spaces after it; "hello" after a
  // special token gets the leading "▁" again.
  CHECK(v.encode("hi<sep>  hello", false, false) == std::vector<int32_t>{14, 0, 21, 20});
  CHECK(v.encode("<s>hello", false, true) == std::vector<int32_t>{1, 20});
  CHECK(v.decode({20, 19, 8, 12, 4}) == " hello world!");
}

TEST_CASE("tokenizer.json, ByteLevel form with Llama 3's Split: encodes as the GGUF of the same vocabulary", "[hf_import][tokenizer]") {
  const std::string path = "tests/fixtures/hf_tok_bpe/tokenizer.json";
  ModelVocab v = ModelVocab::from_hf_tokenizer_json(path);
  CHECK(v.kind() == ModelVocab::Kind::bpe);
  CHECK(v.bos_id() == 18);
  CHECK(v.eos_id() == 19);
  CHECK(v.add_bos());  // llama-bpe's default
  CHECK(v.encode("hello world!", true, false) == std::vector<int32_t>{18, 12, 17, 8});
  // The oracle: the GGUF llama.cpp would hold for this vocabulary (tokens, merges, pre "llama-bpe").
  Json j = Json::parse(read_file(path));
  std::vector<std::string> tokens(20);
  for (const auto& [text, id] : j.at("model").at("vocab").members()) tokens[size_t(id.as_int())] = text;
  tokens[18] = "<|begin_of_text|>", tokens[19] = "<|eot_id|>";
  std::vector<std::string> merges;
  for (const Json& m : j.at("model").at("merges").items()) merges.push_back(m.as_string());
  std::vector<int32_t> types(20, ModelVocab::kNormal);
  types[18] = types[19] = ModelVocab::kControl;
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_arr_string("tokenizer.ggml.tokens", tokens);
  w.set_arr_i32("tokenizer.ggml.token_type", types);
  w.set_arr_string("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.bos_token_id", 18);
  w.set_u32("tokenizer.ggml.eos_token_id", 19);
  ModelVocab g = ModelVocab::from_gguf(parse_gguf(w.serialize()));
  for (const char* text : {"hello world!", "hello  world!!\n\nhe", "<|eot_id|>hello", "world's hell", "h e l l o"})
    for (bool special : {false, true}) {
      INFO(text << " parse_special " << special);
      CHECK(v.encode(text, true, special) == g.encode(text, true, special));
    }
}

TEST_CASE("tokenizer.json: what is not a supported tokenizer is refused in one line naming the file", "[hf_import][tokenizer]") {
  const std::string bpe = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]},";
  CHECK_THAT(vocab_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}"), Catch::Contains("tokenizer.json: model.type must be \"BPE\""));
  CHECK_THAT(vocab_error(bpe + "\"pre_tokenizer\":{\"type\":\"Whitespace\"}}"), Catch::Contains("pre_tokenizer {\"type\":\"Whitespace\"} is not a supported form"));
  CHECK_THAT(vocab_error(bpe + "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
                               "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}}"),
             Catch::Contains("the Split regex \"\\\\s+\" is not one of the supported ones"));
  CHECK_THAT(vocab_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}"),
             Catch::Contains("model.vocab: id 0 is given to 'a' and 'b'"));
  CHECK_THAT(vocab_error(bpe + "\"added_tokens\":[{\"id\":1,\"content\":\"<x>\"}],\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}"),
             Catch::Contains("added_tokens[0]: id 1 is 'b' in model.vocab, '<x>' here"));
  CHECK_THAT(vocab_error(bpe + "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"normalizer\":{\"type\":\"NFKC\"}}"),
             Catch::Contains("normalizer {\"type\":\"NFKC\"} is not supported"));
  CHECK_THAT(vocab_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}"), Catch::Contains("model.vocab['a'] is -1, expected a token id"));
  CHECK_THAT(vocab_error("{\"model\":"), Catch::Contains("tokenizer.json: json:"));
}

TEST_CASE("a Hugging Face directory as --model and --init: eval, generate and training read it with its tokenizer.json",
          "[hf_import][cli]") {
  ScratchDir dir("hf-cli");
  // In-process: open_model reads the directory as an import, its vocabulary from tokenizer.json.
  ModelSource m = open_model(kFixture);
  REQUIRE(m.checkpoint.has_value());
  CHECK(m.config().vocab == 64);
  CHECK(m.tokenizer->fingerprint() == ModelVocab::from_hf_tokenizer_json(kFixture + "/tokenizer.json").fingerprint());
  CHECK(m.transformer()->cfg.n_layers == 2);
  CHECK_FALSE(m.transformer()->params.flat_grad().defined());  // frozen: no gradient buffer to evaluate it

  const std::string text = dir.put("text.txt", "the cat sat on a mat. the dog sat on the cat. a cat and a dog.\n");
  ProcResult r = run_proc({"bin/eval", "--model", kFixture, "--text", text, "--ctx", "8", "--json"}, dir.path + "/eval");
  INFO(r.what());
  CHECK(r.code == 0);
  CHECK(r.out.find("\"tokens\"") != std::string::npos);
  r = run_proc({"bin/generate", "--model", kFixture, "-p", "the cat", "-n", "4", "--temp", "0", "--threads", "1"},
               dir.path + "/generate");
  INFO(r.what());
  CHECK(r.code == 0);
  CHECK(r.out.rfind("the cat", 0) == 0);

  // Fine-tuning from it (FP32: the fixture's intermediate size 48 is no multiple of a q4_0 block) keeps
  // the model's vocabulary in the checkpoint.
  const std::string ck = dir.path + "/ft";
  r = run_proc({"bin/train", "--init", kFixture, "--data", dir.put("corpus.txt", synthetic_corpus(200)), "--steps", "2",
                "--batch", "2", "--ctx", "16", "--threads", "1", "--out", ck, "--cache-dir", dir.path + "/cache",
                "--no-plot"},
               dir.path + "/train");
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(file_exists(ck + "/tokenizer.gguf"));
  CHECK(open_model(ck).tokenizer->fingerprint() == m.tokenizer->fingerprint());
}
