// Encoding and decoding with a trained tokenizer, and its GGUF views. Merges apply inside each pre-token
// lowest rank first, and among equal ranks leftmost first, one merge at a time: the order of llama.cpp's
// llm_tokenizer_bpe_session (a priority queue on (rank, left index)), which also equals GPT-2's
// "merge every occurrence of the best pair" because a merge's result only ever enters later-ranked merges.
// Read next: data/bpe_train.cpp.
#include "data/tokenizer.h"

#include <queue>

#include "data/byte_level.h"
#include "data/pretokenize.h"
#include "src/io/gguf.h"
#include "src/util/error.h"

namespace qat {

Tokenizer::Tokenizer(std::vector<std::string> tokens, std::vector<Merge> merges)
    : tokens_(std::move(tokens)), merges_(std::move(merges)) {
  eot_ = int32_t(tokens_.size()) - 1;
  for (auto& b : byte_id_) b = -1;
  for (int32_t id = 0; id < eot_; id++)
    if (tokens_[id].size() == 1) byte_id_[static_cast<uint8_t>(tokens_[id][0])] = id;
  for (int b = 0; b < 256; b++) QAT_CHECK(byte_id_[b] >= 0, "tokenizer: no token for byte ", b);
  merge_rank_.reserve(merges_.size() * 2);
  for (size_t r = 0; r < merges_.size(); r++) merge_rank_.emplace(pair_key(merges_[r].left, merges_[r].right), int32_t(r));
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  QAT_CHECK(id >= 0 && id < vocab_size(), "tokenizer: token id ", id, " outside [0, ", vocab_size(), ")");
  return tokens_[size_t(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  EncodeCache cache;
  encode_append(text, out, &cache);
  return out;
}

void Tokenizer::encode_append(std::string_view text, std::vector<int32_t>& out, EncodeCache* cache) const {
  // Long pieces (runs of punctuation or spaces) are rare and rarely repeat: not worth caching.
  constexpr size_t kMaxCachedPiece = 64, kMaxCacheEntries = 1 << 20;
  for_each_pretoken(text, [&](std::string_view piece) {
    if (piece.size() == 1) {
      out.push_back(byte_id_[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (!cache || piece.size() > kMaxCachedPiece) {
      encode_piece(piece, out);
      return;
    }
    auto it = cache->pieces.find(std::string(piece));
    if (it == cache->pieces.end()) {
      std::vector<int32_t> ids;
      encode_piece(piece, ids);
      if (cache->pieces.size() >= kMaxCacheEntries) cache->pieces.clear();
      it = cache->pieces.emplace(std::string(piece), std::move(ids)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  });
}

// BPE inside one pre-token: symbols start as single bytes in a linked list; a min-heap holds candidate
// merges keyed by (rank, left position). A popped candidate is stale when either symbol has changed since
// it was pushed; merging joins the right symbol into the left one and offers the two new neighbours.
void Tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const int n = int(piece.size());
  std::vector<int32_t> id(piece.size()), next(piece.size()), prev(piece.size());
  for (int i = 0; i < n; i++) {
    id[i] = byte_id_[static_cast<uint8_t>(piece[size_t(i)])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, left, right, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto offer = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    auto it = merge_rank_.find(pair_key(id[l], id[r]));
    if (it != merge_rank_.end()) heap.push({it->second, l, r, id[l], id[r]});
  };
  for (int i = 0; i + 1 < n; i++) offer(i, i + 1);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (id[c.left] != c.left_id || id[c.right] != c.right_id || next[c.left] != c.right) continue;
    id[c.left] = merges_[size_t(c.rank)].result;
    id[c.right] = -1;  // absorbed
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    offer(prev[c.left], c.left);
    offer(c.left, next[c.left]);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

uint64_t Tokenizer::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  };
  uint64_t n = tokens_.size();
  mix(&n, sizeof n);
  for (const std::string& t : tokens_) {
    uint64_t len = t.size();
    mix(&len, sizeof len);
    mix(t.data(), t.size());
  }
  for (const Merge& m : merges_) mix(&m, sizeof m);
  return h;
}

std::vector<std::string> Tokenizer::gguf_tokens() const {
  std::vector<std::string> out;
  out.reserve(tokens_.size());
  for (int32_t id = 0; id < vocab_size(); id++)
    out.push_back(id == eot_ ? tokens_[size_t(id)] : bytes_to_unicode_string(tokens_[size_t(id)]));
  return out;
}

std::vector<std::string> Tokenizer::gguf_merges() const {
  std::vector<std::string> out;
  out.reserve(merges_.size());
  for (const Merge& m : merges_)
    out.push_back(bytes_to_unicode_string(tokens_[size_t(m.left)]) + " " + bytes_to_unicode_string(tokens_[size_t(m.right)]));
  return out;
}

std::vector<int32_t> Tokenizer::gguf_token_types() const {
  std::vector<int32_t> out(tokens_.size(), kTypeNormal);
  out[size_t(eot_)] = kTypeControl;
  return out;
}

}  // namespace qat

namespace qat {

std::vector<int32_t> Tokenizer::encode_prompt(std::string_view text) const {
  std::vector<int32_t> ids{eot_};
  encode_append(text, ids);
  return ids;
}

void Tokenizer::write_gguf(GgufWriter& w) const {
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_arr_string("tokenizer.ggml.tokens", gguf_tokens());
  w.set_arr_i32("tokenizer.ggml.token_type", gguf_token_types());
  w.set_arr_string("tokenizer.ggml.merges", gguf_merges());
  w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(eot_));
  w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(eot_));
  w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(eot_));
  // BOS = EOT, added: training puts an EOT before every document, and bin/generate starts every prompt
  // with one; add_bos_token = true makes llama.cpp (llama-cli, llama-simple, llama-perplexity) do the same.
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

std::string Tokenizer::describe() const { return str("qat BPE, ", vocab_size(), " tokens"); }

}  // namespace qat
