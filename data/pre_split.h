// Pre-tokenizers of imported BPE vocabularies: GGUF's tokenizer.ggml.pre names a list of regexes that
// llama.cpp applies one after the other (llm_tokenizer_bpe's regex_exprs; each splits every piece the
// previous one left into its matches and the gaps between them). Here each regex is a hand-written
// matcher over codepoints, with the classes of data/unicode.h; the table kPreTypes lists which `pre`
// names are supported and what they imply (ignore_merges, add_bos). Read next: data/model_vocab.h.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace qat {

enum class PreType { gpt2, llama3, qwen2, deepseek_llm, deepseek_coder, starcoder, falcon, default_ };

// One row per pre-tokenizer; `names` are the tokenizer.ggml.pre values llama.cpp maps to it.
struct PreTypeInfo {
  PreType type;
  std::vector<std::string_view> names;
  bool ignore_merges;  // a word that is itself a token is emitted whole (llama.cpp: llama-bpe)
  bool add_bos;        // the default of tokenizer.ggml.add_bos_token
};
// nullptr when `name` is not supported.
const PreTypeInfo* find_pre_type(std::string_view name);
// The supported names, comma-separated (for error messages and docs).
std::string supported_pre_types();

// The words of `text` for BPE, in order. As llama.cpp, the text is read as codepoints first (an invalid
// UTF-8 byte becomes U+FFFD) and the words are rebuilt from them, so they concatenate to the text with
// each invalid byte replaced by EF BF BD.
std::vector<std::string> pre_split(std::string_view text, PreType type);

}  // namespace qat
