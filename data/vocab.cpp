// The one place that decides which tokenizer a model has (see vocab.h): a GGUF's vocabulary is this
// project's own BPE or a pretrained model's ModelVocab; a checkpoint's file is tokenizer.json or
// tokenizer.gguf. Read next: data/model_vocab.cpp.
#include "data/vocab.h"

#include "data/model_vocab.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "src/io/gguf.h"
#include "src/util/error.h"

namespace qat {

std::vector<int32_t> Vocab::encode(std::string_view text) const {
  std::vector<int32_t> out;
  EncodeCache cache;
  encode_append(text, out, &cache);
  return out;
}

namespace {

// The shape of the vocabulary models/gguf_model.cpp writes for our BPE (Tokenizer::write_gguf): the
// tokenizer it names is ours when every one of these holds; Tokenizer::from_gguf then checks the rest.
bool is_own_bpe(const GgufFile& f) {
  auto str_is = [&](const char* key, const char* want) {
    const GgufValue* v = f.find(key);
    return v && v->type == GgufType::string && v->strings.size() == 1 && v->strings[0] == want;
  };
  auto u32_is = [&](const char* key, uint64_t want) {
    const GgufValue* v = f.find(key);
    return v && v->type == GgufType::u32 && f.get_u32(key) == want;
  };
  const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
  if (!str_is("tokenizer.ggml.model", "gpt2") || !str_is("tokenizer.ggml.pre", "gpt-2") || !tokens ||
      tokens->elem_type != GgufType::string || tokens->strings.empty() || f.has("tokenizer.ggml.scores"))
    return false;
  const uint64_t eot = tokens->strings.size() - 1;
  return tokens->strings.back() == "<|endoftext|>" && u32_is("tokenizer.ggml.eos_token_id", eot) &&
         u32_is("tokenizer.ggml.bos_token_id", eot);
}

}  // namespace

std::shared_ptr<const Vocab> vocab_from_gguf(const GgufFile& f) {
  if (is_own_bpe(f))
    return std::make_shared<Tokenizer>(Tokenizer::from_gguf(f.get_arr_string("tokenizer.ggml.tokens"),
                                                            f.get_arr_string("tokenizer.ggml.merges"),
                                                            f.path + " (tokenizer.ggml.*)"));
  return std::make_shared<ModelVocab>(ModelVocab::from_gguf(f));
}

std::shared_ptr<const Vocab> load_vocab_file(const std::string& path) {
  QAT_CHECK(file_exists(path), path, " does not exist (the model's tokenizer)");
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) {
    const GgufFile f = read_gguf(path);
    QAT_CHECK(f.tensors.empty(), path, ": a tokenizer file holds no tensors (it holds ", f.tensors.size(), ")");
    return std::make_shared<ModelVocab>(ModelVocab::from_gguf(f));
  }
  return std::make_shared<Tokenizer>(Tokenizer::load(path));
}

}  // namespace qat
