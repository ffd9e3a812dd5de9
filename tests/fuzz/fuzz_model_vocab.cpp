// libFuzzer target: imported tokenizers (data/model_vocab.h, data/pre_split.h). Each input is used twice:
//  1. as a GGUF file: ModelVocab::from_gguf returns or throws qat::Error with one line naming the file;
//     an accepted vocabulary encodes a fixed set of texts (special tokens written out included) under
//     every add_special / parse_special setting to ids in [0, V), and decodes them;
//  2. as text, for two fixed vocabularies that hold every byte (an SPM one with <0x00>..<0xFF>, a BPE one
//     with the 256 byte-level characters and a few merges): under a pre-tokenizer chosen by the input's
//     last byte the BPE ids decode to the text with each invalid UTF-8 byte read as U+FFFD, and the SPM
//     ids decode to " " + the text
//     (when it is valid UTF-8 without "▁", which SPM reads as a space; the empty text gives no ids).
// No crash, no UB, no leak (ASan/UBSan). Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <string>
#include <vector>

#include "data/byte_level.h"
#include "data/model_vocab.h"
#include "data/unicode.h"
#include "src/io/gguf.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

namespace {

ModelVocab spm_all_bytes() {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; b++) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    types.push_back(6);
  }
  for (const char* t : {"\xe2\x96\x81", "\xe2\x96\x81t", "he", "\xe2\x96\x81the", "th", "e", "t", "h"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 259; i < tokens.size(); i++) scores[i] = -float(i);
  w.set_arr_string("tokenizer.ggml.tokens", tokens);
  w.set_arr_i32("tokenizer.ggml.token_type", types);
  w.set_arr_f32("tokenizer.ggml.scores", scores);
  return ModelVocab::from_gguf(parse_gguf(w.serialize(), "spm.gguf"));
}

ModelVocab bpe_all_bytes(const std::string& pre) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  std::vector<std::string> tokens = {"<|endoftext|>"};
  for (int b = 0; b < 256; b++) tokens.push_back(byte_to_unicode(uint8_t(b)));
  for (const char* t : {"th", "the", "\xc4\xa0the", "in", "ca"}) tokens.push_back(t);
  w.set_arr_string("tokenizer.ggml.tokens", tokens);
  // "ca t" makes "cat", no token: it ends as the tokens of its single bytes (ASCII here, so nothing is
  // lost; a non-ASCII non-token result loses its bytes in llama.cpp, and here too).
  w.set_arr_string("tokenizer.ggml.merges", {"t h", "th e", "\xc4\xa0 the", "i n", "c a", "ca t"});
  w.set_u32("tokenizer.ggml.bos_token_id", 0);
  w.set_u32("tokenizer.ggml.eos_token_id", 0);
  return ModelVocab::from_gguf(parse_gguf(w.serialize(), "bpe.gguf"));
}

void check_ids(const ModelVocab& v, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < v.vocab_size(), "id range");
  (void)v.decode(ids);
}

// The text as llama.cpp's BPE sees it: each invalid UTF-8 byte replaced by U+FFFD.
std::string sanitized(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    Utf8Unit u = next_utf8_unit(s, pos);
    append_utf8(u.cp, out);
    pos += u.len;
  }
  return out;
}

void as_gguf(std::string_view bytes) {
  ModelVocab v;
  try {
    v = ModelVocab::from_gguf(parse_gguf(bytes, "fuzz.gguf"));
  } catch (const Error& e) {
    std::string m = e.what();
    FUZZ_CHECK(m.find("fuzz.gguf") != std::string::npos, "the message names the file");
    FUZZ_CHECK(m.find('\n') == std::string::npos, "the message is one line");
    return;
  }
  std::vector<std::string> texts = {"", " ", "Hello world", " \n\t 123 it's \xe2\x96\x81 caf\xc3\xa9 \xff"};
  for (int32_t id = 0; id < v.vocab_size() && id < 64; id++) texts.push_back("a" + v.token_text(id) + " b");
  for (const std::string& t : texts)
    for (bool add : {false, true})
      for (bool parse : {false, true}) check_ids(v, v.encode(t, add, parse));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  as_gguf(input);
  if (size > 2048) return 0;
  static const ModelVocab spm = spm_all_bytes();
  static const std::vector<ModelVocab> bpes = [] {
    std::vector<ModelVocab> v;
    for (const char* pre : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "starcoder", "falcon", "default"})
      v.push_back(bpe_all_bytes(pre));
    return v;
  }();
  // One pre-tokenizer per input (chosen by its last byte), so that each execution stays cheap.
  const ModelVocab& b = bpes[size == 0 ? 0 : uint8_t(input.back()) % bpes.size()];
  std::vector<int32_t> bpe_ids = b.encode(input, false, false);
  check_ids(b, bpe_ids);
  FUZZ_CHECK(b.decode(bpe_ids) == sanitized(input), "BPE: decode(encode(x)) == x with U+FFFD for invalid bytes");
  std::vector<int32_t> ids = spm.encode(input, false, false);
  check_ids(spm, ids);
  // Valid UTF-8 only: SPM cuts characters by their lead byte, so an invalid lead byte before a space
  // swallows bytes of its "▁" (which then decode as themselves), in llama.cpp as here.
  if (input.find("\xe2\x96\x81") == std::string_view::npos && is_valid_utf8(input))
    FUZZ_CHECK(spm.decode(ids) == (input.empty() ? "" : " " + std::string(input)), "SPM: decode(encode(x)) == \" \" + x");
  return 0;
}
