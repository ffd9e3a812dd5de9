// Importing pretrained models (issue 20): a `llama` GGUF not written by us (F32 / F16 / BF16 / Q8_0 /
// Q4_0 tensors, untied output, GQA, its own SPM tokenizer, no qat.* keys) is read for serving and as f32
// latent weights for training; its tokenizer is used everywhere (data/vocab.h) and copied into the
// exported GGUF. The foreign files are made here: a tiny random model written by write_gguf_model with
// an SPM vocabulary, then rewritten without our keys and with its weights in the type under test.
#include <catch2/catch.hpp>

#include <cstring>

#include "data/dataset.h"
#include "data/model_vocab.h"
#include "data/tokenizer.h"
#include "models/gguf_model.h"
#include "models/import.h"
#include "models/model_source.h"
#include "src/core/dtype.h"
#include "src/io/file.h"
#include "src/io/gguf.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// A llama-style SPM vocabulary: <unk> <s> </s>, the 256 byte tokens, then word pieces with scores
// (BOS 1 added, EOS 2: llama's defaults).
std::shared_ptr<const Vocab> spm_vocab() {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; b++) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    types.push_back(6);
  }
  for (const char* t : {"▁", "▁the", "▁cat", "▁sat", "▁on",
                        "▁a", "▁mat", "▁dog", "at", "he", "th", "the", "t", "h", "e",
                        "a", "c", "s", "o", "n", "m", "d", "g", "r", ".", "\n"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 259; i < tokens.size(); i++) scores[i] = -float(i);
  w.set_arr_string("tokenizer.ggml.tokens", tokens);
  w.set_arr_f32("tokenizer.ggml.scores", scores);
  w.set_arr_i32("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  return vocab_from_gguf(parse_gguf(w.serialize(), "spm.gguf"));
}

// GQA, an untied output and a rope theta of Llama 3's: the shape of a pretrained model, tiny.
ModelConfig foreign_config(int64_t vocab) {
  ModelConfig c = tiny_gqa_config();
  c.vocab = vocab;
  c.tied = false;
  c.rope_base = 500000.0f;
  c.context = 64;
  return c;
}

uint16_t bf16_of(float f) {  // round to nearest even, as PyTorch's .to(bfloat16)
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return uint16_t((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

// `src`, a GGUF we wrote, rewritten as a foreign file: no qat.* key, 2-D F32 tensors as `type` (F16 or BF16).
void write_foreign(const std::string& src, const std::string& dst, GgmlType type) {
  const GgufFile f = read_gguf(src);
  GgufWriter w;
  for (const GgufKv& kv : f.kv)
    if (kv.key.rfind("qat.", 0) != 0) w.set_value(kv.key, kv.value);
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.ne.size() != 2 || t.type != GgmlType::F32 || type == GgmlType::F32) {
      w.add_tensor(t.name, t.type, t.ne, std::string(reinterpret_cast<const char*>(t.data), t.nbytes));
      continue;
    }
    std::string bytes(size_t(t.numel()) * 2, '\0');
    for (int64_t i = 0; i < t.numel(); i++) {
      float v;
      std::memcpy(&v, t.data + 4 * i, 4);
      const uint16_t h = type == GgmlType::F16 ? f32_to_f16(v) : bf16_of(v);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    w.add_tensor(t.name, type, t.ne, std::move(bytes));
  }
  w.write(dst);
}

// The tiny random model in `type` (F32 / F16 / BF16 as is; Q8_0 / Q4_0 by PTQ, embedding and output too).
std::string foreign_gguf(const ScratchDir& dir, const Transformer& t, const Vocab& vocab, GgmlType type) {
  const std::string name = ggml_type_info(uint32_t(type))->name, ours = dir.path + "/ours-" + name + ".gguf";
  const bool blocks = type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
  const std::string scheme = type == GgmlType::Q8_0 ? "q8_0" : "q4_0";
  QuantizedModel qm = blocks ? quantized_from_ptq(t, QatConfig::make(scheme, "", t.cfg.n_layers, t.cfg.tied), "minmax")
                             : quantized_from_f32(t);
  write_gguf_model(ours, qm, vocab);
  const std::string out = dir.path + "/foreign-" + name + ".gguf";
  write_foreign(ours, out, type);
  return out;
}

// What import_gguf must give for weight w of the model written as `type`.
float expected(float w, GgmlType type) {
  if (type == GgmlType::F16) return f16_to_f32(f32_to_f16(w));
  if (type == GgmlType::BF16) {
    const uint32_t b = uint32_t(bf16_of(w)) << 16;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  return w;
}

}  // namespace

TEST_CASE("a foreign llama GGUF is read with its own tokenizer and F16/BF16/Q8_0/Q4_0 weights", "[import]") {
  ScratchDir dir("import-types");
  const auto vocab = spm_vocab();
  const ModelConfig c = foreign_config(vocab->vocab_size());
  Transformer t(c);
  t.init_weights(7);
  const int q0 = t.params.index_of("model.layers.0.self_attn.q_proj.weight");
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
    INFO(ggml_type_info(uint32_t(type))->name);
    const std::string path = foreign_gguf(dir, t, *vocab, type);
    REQUIRE_FALSE(read_gguf(path).has("qat.scheme"));
    GgufModel g = read_gguf_model(path);
    REQUIRE(dynamic_cast<const ModelVocab*>(g.tokenizer.get()) != nullptr);  // the model's, not ours
    CHECK(g.tokenizer->fingerprint() == vocab->fingerprint());
    CHECK((g.model.cfg.n_kv_heads == 2 && !g.model.cfg.tied && g.model.cfg.rope_base == 500000.0f));
    const LoadedCheckpoint ck = import_gguf(path);
    REQUIRE(ck.vocab);
    CHECK(ck.config.to_json().dump() == g.model.cfg.to_json().dump());
    const Tensor& got = ck.weights.at("model.layers.0.self_attn.q_proj.weight");
    const float* w = t.params[q0].f32();
    if (type == GgmlType::Q8_0 || type == GgmlType::Q4_0) {
      // The codes x scales of the blocks: the PTQ model's own dequantized weight.
      const std::string scheme = type == GgmlType::Q8_0 ? "q8_0" : "q4_0";
      QuantizedModel qm = quantized_from_ptq(t, QatConfig::make(scheme, "", c.n_layers, c.tied), "minmax");
      CHECK(same_bits(got, qm.layers[0][size_t(Proj::q)].dequantized()));
    } else {
      int64_t differ = 0;
      for (int64_t i = 0; i < got.numel(); i++) differ += got.f32()[i] != expected(w[i], type);
      CHECK(differ == 0);
    }
    CHECK(ck.weights.tensors.size() == size_t(t.params.size()));  // every parameter, nothing else
  }
}

TEST_CASE("a pretrained model's vocabulary plays the Vocab roles as llama.cpp runs it", "[import]") {
  const auto spm = spm_vocab();
  CHECK(spm->start_token() == 1);
  CHECK(spm->is_end(2));
  CHECK_FALSE(spm->is_end(1));
  const std::vector<int32_t> prompt = spm->encode_prompt("the cat");
  REQUIRE(prompt.size() >= 2);
  CHECK(prompt[0] == 1);
  CHECK(std::vector<int32_t>(prompt.begin() + 1, prompt.end()) == spm->encode("the cat"));
  // A corpus document is [BOS] text EOS; ours: text EOT.
  const std::vector<int32_t> a = spm->encode("the cat"), b = spm->encode("a dog");
  std::vector<int32_t> want{1};
  want.insert(want.end(), a.begin(), a.end());
  want.push_back(2);
  want.push_back(1);
  want.insert(want.end(), b.begin(), b.end());
  want.push_back(2);
  CHECK(tokenize_split({"the cat", "a dog"}, *spm, true).tokens.to_vector() == want);
  CHECK(spm->text_bytes(1) == 0);
  CHECK(spm->text_bytes(spm->encode("the")[0]) == 4);  // "▁the" stands for " the"
  // Its checkpoint file (a vocabulary-only GGUF) reads back to the same vocabulary.
  ScratchDir dir("import-vocab");
  const std::string path = dir.put(spm->file_name(), spm->file_bytes());
  REQUIRE(std::string(spm->file_name()) == "tokenizer.gguf");
  const auto back = load_vocab_file(path);
  CHECK(back->fingerprint() == spm->fingerprint());
  CHECK(back->encode("the cat sat on a mat.") == spm->encode("the cat sat on a mat."));
  // Our own BPE in a GGUF is read as ours.
  Tokenizer ours = Tokenizer::train({"the cat sat on the mat", "a dog ran far away"}, 270);
  GgufWriter w;
  ours.write_gguf(w);
  const auto ours_back = vocab_from_gguf(parse_gguf(w.serialize(), "ours.gguf"));
  REQUIRE(dynamic_cast<const Tokenizer*>(ours_back.get()) != nullptr);
  CHECK(ours_back->fingerprint() == ours.fingerprint());
}

TEST_CASE("train --init X.gguf, QAT with distillation from it, export, eval and generate keep its tokenizer",
          "[import][cli]") {
  ScratchDir dir("import-cli");
  const auto vocab = spm_vocab();
  Transformer t(foreign_config(vocab->vocab_size()));
  t.init_weights(11);
  const std::string src = foreign_gguf(dir, t, *vocab, GgmlType::F16);
  const std::string corpus = dir.put("corpus.txt", synthetic_corpus(200)), ck = dir.path + "/qat";
  auto train = [&](const std::vector<std::string>& extra, const std::string& out) {
    std::vector<std::string> argv{"bin/train", "--init", src, "--data", corpus, "--steps", "2", "--batch", "2",
                                  "--ctx", "32", "--threads", "1", "--out", out, "--cache-dir", dir.path + "/cache",
                                  "--no-plot"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_proc(argv, out);
  };
  ProcResult r = train({"--qat", "q4_0", "--qat-keep", "embed=q8_0,lm_head=q8_0", "--distill", src}, ck);
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(r.err.find("distilling from imported GGUF " + src) != std::string::npos);
  CHECK(file_exists(ck + "/tokenizer.gguf"));
  CHECK_FALSE(file_exists(ck + "/tokenizer.json"));
  CHECK(open_model(ck).tokenizer->fingerprint() == vocab->fingerprint());

  const std::string out = dir.path + "/out.gguf";
  r = run_proc({"bin/quantize", "--model", ck, "--to-gguf", out, "--threads", "1"}, dir.path + "/quantize");
  INFO(r.what());
  REQUIRE(r.code == 0);
  // Every tokenizer key of the source, copied as it was (llama.cpp tokenizes the export as the original).
  const GgufFile in = read_gguf(src), exported = read_gguf(out);
  int64_t keys = 0;
  for (const GgufKv& kv : in.kv) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    keys++;
    INFO(kv.key);
    const GgufValue* v = exported.find(kv.key);
    REQUIRE(v != nullptr);
    CHECK((v->type == kv.value.type && v->elem_type == kv.value.elem_type && v->count == kv.value.count &&
           v->raw == kv.value.raw && v->strings == kv.value.strings));
  }
  CHECK(keys == 9);
  CHECK(exported.tensor("token_embd.weight").type == GgmlType::Q8_0);
  CHECK(exported.tensor("output.weight").type == GgmlType::Q8_0);
  CHECK(exported.tensor("blk.0.attn_q.weight").type == GgmlType::Q4_0);

  const std::string text = dir.put("text.txt", "the cat sat on a mat. the dog sat on the cat. a cat and a dog.\n");
  r = run_proc({"bin/eval", "--model", out, "--text", text, "--score-second-half", "--ctx", "8", "--json"}, dir.path + "/eval");
  INFO(r.what());
  CHECK(r.code == 0);
  CHECK(r.out.find("\"tokens\"") != std::string::npos);
  r = run_proc({"bin/generate", "--model", out, "-p", "the cat", "-n", "4", "--temp", "0", "--threads", "1"},
               dir.path + "/generate");
  INFO(r.what());
  CHECK(r.code == 0);
  CHECK(r.out.rfind("the cat", 0) == 0);
}

TEST_CASE("imports that cannot be used are refused in one line", "[import][cli]") {
  ScratchDir dir("import-refuse");
  const std::string text = dir.put("notes.txt", "not a model\n"), corpus = dir.put("corpus.txt", synthetic_corpus(50));
  ProcResult r = run_proc({"bin/train", "--init", text, "--data", corpus, "--steps", "1", "--out", dir.path + "/o"},
                          dir.path + "/train");
  CHECK(r.code != 0);
  CHECK(lines_of(r.err).size() == 1);
  CHECK(r.err.find(text) != std::string::npos);
  // A weight type qat does not serve (Q4_1) is named with the tensor and the types it reads.
  const auto vocab = spm_vocab();
  Transformer t(foreign_config(vocab->vocab_size()));
  t.init_weights(3);
  const GgufFile f = read_gguf(foreign_gguf(dir, t, *vocab, GgmlType::Q4_0));
  GgufWriter w;
  for (const GgufKv& kv : f.kv) w.set_value(kv.key, kv.value);
  for (const GgufTensorInfo& ti : f.tensors) {
    const bool odd = ti.name == "blk.1.ffn_up.weight";  // Q4_1 blocks are 20 bytes for 32 values
    std::string bytes = odd ? std::string(size_t(ti.numel() / 32 * 20), '\0')
                            : std::string(reinterpret_cast<const char*>(ti.data), ti.nbytes);
    w.add_tensor(ti.name, odd ? GgmlType::Q4_1 : ti.type, ti.ne, std::move(bytes));
  }
  const std::string bad = dir.path + "/q4_1.gguf";
  w.write(bad);
  r = run_proc({"bin/eval", "--model", bad, "--text", text}, dir.path + "/eval");
  CHECK(r.code != 0);
  CHECK(lines_of(r.err).size() == 1);
  CHECK(r.err.find("'blk.1.ffn_up.weight' is Q4_1; qat serves ") != std::string::npos);
  for (const char* type : {"F16", "BF16", "F32", "Q4_0", "Q8_0", "TQ2_0", "TQ1_0"})  // the format table's list
    CHECK(r.err.find(type) != std::string::npos);
}
