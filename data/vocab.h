// A model's tokenizer, as every binary uses it: the one interface that this project's own BPE
// (data/tokenizer.h, trained on the corpus) and a pretrained model's vocabulary (data/model_vocab.h, from
// a GGUF's tokenizer.ggml.* or a Hugging Face tokenizer.json) both implement. What differs between them
// (the token a sequence starts with, what ends generation, how documents are joined, how the vocabulary
// is stored) is a method here, never a type test in a binary. Which one a model has is decided in one
// place: load_vocab_file / vocab_from_gguf below. Read next: data/tokenizer.h, data/model_vocab.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qat {

struct GgufFile;
class GgufWriter;

// Per-piece encoding results, reused across encode_append calls (one per thread; not shared).
struct EncodeCache {
  std::unordered_map<std::string, std::vector<int32_t>> pieces;
};

// Immutable after construction: const methods may be called from several threads at once.
class Vocab {
 public:
  virtual ~Vocab() = default;
  virtual int vocab_size() const = 0;

  // Plain text -> ids, appended: nothing added, the text of a special token encoded as text (training
  // data, --text). `cache` may be null.
  virtual void encode_append(std::string_view text, std::vector<int32_t>& out, EncodeCache* cache) const = 0;
  std::vector<int32_t> encode(std::string_view text) const;
  // A prompt as the model is prompted: the sequence's start token, then the text (for a pretrained
  // model: llama.cpp's llama_tokenize(text, add_special = true, parse_special = true)).
  virtual std::vector<int32_t> encode_prompt(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Bytes of text that token `id` stands for (0 for control tokens): bits per byte's denominator.
  virtual int64_t text_bytes(int32_t id) const = 0;

  // The token every sequence starts with, -1 when none: ours the end-of-text token (a document starts
  // after one), a pretrained model's BOS when it adds one (tokenizer.ggml.add_bos_token).
  virtual int32_t start_token() const = 0;
  // True for a token that ends generation (ours: end-of-text; a model's EOS and EOT).
  virtual bool is_end(int32_t id) const = 0;
  // The tokens before and after each document of a corpus (ours: none / end-of-text; a model's: its BOS
  // when it adds one / its EOS).
  virtual std::vector<int32_t> doc_begin() const = 0;
  virtual std::vector<int32_t> doc_end() const = 0;
  // True when a document may be cut at data/encode_chunks.h's safe line breaks and encoded in parts
  // (ours: the GPT-2 pre-tokenizer's argument holds); a model's vocabulary encodes documents whole.
  virtual bool cuts_at_lines() const = 0;

  // Equal fingerprints encode identically (the token cache's key, --distill's check).
  virtual uint64_t fingerprint() const = 0;
  // The tokenizer.ggml.* keys of an exported GGUF, so that llama.cpp tokenizes as this vocabulary does
  // (a model's: every tokenizer.* key as read, and its general.name, on which llama.cpp's phi-3 rules hang).
  virtual void write_gguf(GgufWriter& w) const = 0;
  // Its file in a checkpoint directory ("tokenizer.json" or "tokenizer.gguf") and that file's bytes.
  virtual const char* file_name() const = 0;
  virtual std::string file_bytes() const = 0;
  // "qat BPE, 1024 tokens" / "llama (SPM), 32000 tokens, BOS 1 added, EOS 2".
  virtual std::string describe() const = 0;
};

// The vocabulary of a GGUF file: this project's own BPE when the file holds one (tokenizer.ggml.model
// "gpt2", pre "gpt-2", 256 byte tokens, ranked merges, "<|endoftext|>" last and BOS = EOS = it, as
// models/gguf_model.cpp writes), any other as a pretrained model's (ModelVocab). Errors name f.path.
std::shared_ptr<const Vocab> vocab_from_gguf(const GgufFile& f);
// A checkpoint's tokenizer file: tokenizer.json (ours) or tokenizer.gguf (a vocabulary-only GGUF, the
// form of llama.cpp's models/ggml-vocab-*.gguf).
std::shared_ptr<const Vocab> load_vocab_file(const std::string& path);

}  // namespace qat
