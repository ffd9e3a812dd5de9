// A pretrained model's tokenizer as its GGUF defines it (tokenizer.ggml.*), token for token as llama.cpp
// encodes: BPE (model "gpt2": byte-level tokens, ranked merges, a pre-tokenizer from data/pre_split.h)
// and SPM (model "llama": SentencePiece-style BPE on scores, "▁" for spaces, a leading space, <0xNN>
// byte fallback). Special tokens (control, user-defined, unknown) are cut out of the text first, as
// llama.cpp's tokenizer_st_partition does. This project's own trained tokenizer stays data/tokenizer.h.
// Checked against llama.cpp's test vectors by bin/tokenizer-vectors. Read next: data/pre_split.h.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/pre_split.h"
#include "data/vocab.h"
#include "src/io/gguf.h"

namespace qat {

class ModelVocab : public Vocab {
 public:
  enum class Kind { bpe, spm };
  // GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
  enum TokenType : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
  static constexpr int64_t kMaxTokens = int64_t(1) << 20;

  // Reads and validates tokenizer.ggml.* of `f`. Every rejection is one line naming f.path and the key:
  // an unknown model or pre type, array lengths that disagree, a token type outside 0..6, a score that is
  // not finite, a special token id outside the vocabulary, a vocabulary above kMaxTokens.
  // The Hugging Face path builds the keys llama.cpp's convert_hf_to_gguf.py writes and reads them here.
  static ModelVocab from_gguf(const GgufFile& f);
  // A Hugging Face tokenizer.json (model.type BPE: the ByteLevel form of GPT-2 / Llama 3, or the
  // SentencePiece form of Llama 2 / TinyLlama), as the GGUF llama.cpp's converter would write for it;
  // BOS / EOS from tokenizer_config.json and config.json beside it. One line per rejection, naming
  // `path`. data/model_vocab_hf.cpp.
  static ModelVocab from_hf_tokenizer_json(const std::string& path);

  // llama.cpp's llama_tokenize(text, add_special, parse_special): add_special adds BOS / EOS when the
  // model asks for them; parse_special lets control tokens written in the text become their ids
  // (user-defined tokens always do, as in llama.cpp).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  using Vocab::encode;  // plain text: encode(text, false, false)
  // The text of the ids (control and unknown tokens give nothing; byte tokens their byte).
  std::string decode(const std::vector<int32_t>& ids) const override;

  // The Vocab roles (data/vocab.h), as llama.cpp runs the model: a prompt is llama_tokenize(text, true,
  // true); a sequence starts with BOS when add_bos_token; EOS and EOT end generation; a corpus document
  // is [BOS] text EOS; the tokenizer.ggml.* keys (and tokenizer.chat_template) are written back as read.
  void encode_append(std::string_view text, std::vector<int32_t>& out, EncodeCache* cache) const override;
  std::vector<int32_t> encode_prompt(std::string_view text) const override { return encode(text, true, true); }
  int64_t text_bytes(int32_t id) const override { return int64_t(decode({id}).size()); }
  int32_t start_token() const override { return add_bos_ ? bos_ : -1; }
  bool is_end(int32_t id) const override { return id >= 0 && (id == eos_ || id == eot_); }
  std::vector<int32_t> doc_begin() const override;
  std::vector<int32_t> doc_end() const override;
  bool cuts_at_lines() const override { return false; }
  uint64_t fingerprint() const override;
  void write_gguf(GgufWriter& w) const override;
  const char* file_name() const override { return "tokenizer.gguf"; }
  std::string file_bytes() const override;  // a vocabulary-only GGUF: the keys, general.name, no tensor
  std::string describe() const override;

  Kind kind() const { return kind_; }
  int vocab_size() const override { return int(text_.size()); }
  const std::string& token_text(int32_t id) const;  // as stored in the GGUF; throws outside the vocab
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t eot_id() const { return eot_; }  // -1 when the model has none
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }

 private:
  struct Fragment {
    size_t begin, end;  // raw text [begin, end) when token < 0
    int32_t token;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  int32_t find(std::string_view text) const;  // token id of `text`, -1 when none
  int32_t spm_byte_token(uint8_t b) const;
  void load_tokens(const GgufFile& f);
  void load_merges(const GgufFile& f);
  void load_specials(const GgufFile& f);

  std::vector<GgufKv> keys_;        // tokenizer.* as read, in file order (written back on export)
  std::string pre_name_;            // tokenizer.ggml.pre (BPE)
  std::string name_;                // general.name of the source (phi-3's rstrip depends on it)
  Kind kind_ = Kind::bpe;
  PreType pre_ = PreType::gpt2;
  bool ignore_merges_ = false, add_space_prefix_ = false, add_bos_ = false, add_eos_ = false;
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, unk_ = -1;
  std::vector<std::string> text_;   // (V) token strings as stored
  std::vector<int32_t> type_;       // (V) TokenType
  std::vector<float> score_;        // (V) SPM merge priority
  std::unordered_map<std::string, int32_t> id_of_;  // text -> id (a text stored twice: the last id)
  std::vector<int32_t> specials_;   // control / user-defined / unknown ids, longest text first
  std::vector<bool> rstrip_;        // (V) spaces after this special token are dropped (phi-3)
  bool rstrip_from_hf_ = false;     // rstrip_ came from tokenizer.json flags: written under kRstripKey
  static constexpr const char* kRstripKey = "qat.tokenizer.rstrip_ids";

  // BPE merges on symbol ids: a symbol is a token id, or an id >= V for a merge part or result that is
  // not a token (llama.cpp merges strings, so such symbols exist mid-word; they end as single bytes).
  struct MergeRule {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, MergeRule> merges_;  // (left symbol, right symbol) -> rule
  std::vector<std::string> extra_symbols_;          // text of symbol V + k
  int32_t byte_symbol_[256] = {};                    // symbol of each byte's byte-level character
};

}  // namespace qat
