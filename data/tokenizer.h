// Byte-level BPE tokenizer (GPT-2 style): 256 byte tokens, learned merges, and one end-of-text token
// "<|endoftext|>" with the last id. Text is split by the GPT-2 pre-tokenizer (data/pretokenize.h) and
// merges apply by rank inside each piece, exactly as llama.cpp's llm_tokenizer_bpe does for a GGUF with
// tokenizer.ggml.model = "gpt2", pre = "gpt-2". Any byte string round-trips encode -> decode.
// Files: data/bpe_train.cpp (training), data/tokenizer_json.cpp (tokenizer.json), docs/TOKENIZER.md.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/vocab.h"

namespace qat {

// The recommended vocab size (bin/train --vocab): measured in docs/TOKENIZER.md, "Choosing the vocab size".
inline constexpr int kDefaultVocabSize = 1024;

// Immutable after construction: const methods may be called from several threads at once.
class Tokenizer : public Vocab {
 public:
  static constexpr std::string_view kEotText = "<|endoftext|>";
  // GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
  static constexpr int32_t kTypeNormal = 1, kTypeControl = 3;

  // Learns merges on `docs` until the vocabulary (256 bytes + merged tokens + EOT) has vocab_size
  // tokens, or no adjacent pair is left. Deterministic: the most frequent pair wins, ties go to the
  // smallest (left id, right id). Merges never cross pre-token boundaries.
  static Tokenizer train(const std::vector<std::string>& docs, int vocab_size);

  // tokenizer.json (Hugging Face format: BPE model, ByteLevel pre-tokenizer). Loading treats the file
  // as untrusted: every id, string and merge is checked; errors name the file and the field.
  static Tokenizer load(const std::string& path);
  static Tokenizer from_json(std::string_view text, const std::string& name = "tokenizer.json");
  // GGUF's tokenizer.ggml.tokens (token i has id i) and .merges, with from_json's checks; errors name
  // `name` and the array index. Linear in the vocabulary: no JSON is built.
  static Tokenizer from_gguf(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                             const std::string& name);
  void save(const std::string& path) const;  // atomic write
  std::string to_json() const;

  // Token ids of `text` (no EOT added; the text "<|endoftext|>" is encoded as plain text).
  std::vector<int32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<int32_t>& out, EncodeCache* cache = nullptr) const override;
  // Concatenated token_bytes; throws on an id outside [0, vocab_size).
  std::string decode(const std::vector<int32_t>& ids) const override;
  // The bytes of token `id`; for the EOT token its text "<|endoftext|>".
  const std::string& token_bytes(int32_t id) const;

  int32_t eot_id() const { return eot_; }
  int vocab_size() const override { return int(tokens_.size()); }
  int n_merges() const { return int(merges_.size()); }
  // FNV-1a 64 of the tokens and merges: equal fingerprints encode identically (used as a cache key).
  uint64_t fingerprint() const override;

  // The Vocab roles (data/vocab.h): a document ends with EOT and a sequence starts after one, so a
  // prompt is EOT + its text; EOT ends generation; the text "<|endoftext|>" is never parsed as EOT.
  std::vector<int32_t> encode_prompt(std::string_view text) const override;
  int64_t text_bytes(int32_t id) const override { return id == eot_ ? 0 : int64_t(token_bytes(id).size()); }
  int32_t start_token() const override { return eot_; }
  bool is_end(int32_t id) const override { return id == eot_; }
  std::vector<int32_t> doc_begin() const override { return {}; }
  std::vector<int32_t> doc_end() const override { return {eot_}; }
  bool cuts_at_lines() const override { return true; }
  // tokenizer.ggml.*: model gpt2, pre gpt-2, BOS = EOS = padding = EOT, add_bos_token (llama.cpp then
  // prepends what training and bin/generate do; docs/LLAMACPP.md).
  void write_gguf(GgufWriter& w) const override;
  const char* file_name() const override { return "tokenizer.json"; }
  std::string file_bytes() const override { return to_json(); }
  std::string describe() const override;

  // For GGUF export (tokenizer.ggml.tokens / .merges / .token_type): token strings in the byte-to-unicode
  // form (EOT as "<|endoftext|>"), merges as "A B" in rank order, types normal / control (EOT).
  std::vector<std::string> gguf_tokens() const;
  std::vector<std::string> gguf_merges() const;
  std::vector<int32_t> gguf_token_types() const;

 private:
  struct Merge {
    int32_t left, right, result;
  };
  // Builds the lookup tables; `tokens` holds each id's bytes (EOT last, as its text); every merge's
  // parts and result must be ids of `tokens` (checked by the callers).
  Tokenizer(std::vector<std::string> tokens, std::vector<Merge> merges);
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  static uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

  std::vector<std::string> tokens_;                     // (V) bytes of each token
  std::vector<Merge> merges_;                           // rank order
  std::unordered_map<uint64_t, int32_t> merge_rank_;    // pair_key(left, right) -> rank
  int32_t byte_id_[256] = {};                           // token id of each single byte
  int32_t eot_ = -1;
};

}  // namespace qat
