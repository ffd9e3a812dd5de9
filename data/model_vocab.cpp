// ModelVocab: loading tokenizer.ggml.* (bounded, validated) and encoding as llama.cpp's llama-vocab.cpp
// does: special-token partition, then per raw fragment either BPE (pre-split words, byte-level symbols,
// merges by rank, lowest rank and then leftmost first) or SPM (UTF-8 characters, merges by the merged
// token's score, highest first and then leftmost, bytes as <0xNN> when a character is no token).
// Read next: tools/tokenizer-vectors.cpp (the check against llama.cpp's vectors).
#include "data/model_vocab.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <queue>

#include "data/byte_level.h"
#include "src/io/gguf.h"
#include "src/util/error.h"

namespace qat {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// Texts llama.cpp always treats as control tokens (its EOG / EOT / FIM detection by text).
bool forced_control(std::string_view t) {
  static const std::string_view k[] = {
      "<EOT>", "<MID>", "<PAD>", "<PRE>", "<REPO>", "<SUF>", "<end_of_turn>", "<fim-middle>", "<fim-pad>",
      "<fim-prefix>", "<fim-repo>", "<fim-suffix>", "<|endoftext|>", "<|end|>", "<|eom_id|>", "<|eot_id|>",
      "<|file_sep|>", "<|fim_middle|>", "<|fim_pad|>", "<|fim_prefix|>", "<|fim_repo|>", "<|fim_suffix|>",
      "<|im_end|>", "<|repo_name|>", "<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜fim▁hole｜>"};
  return std::find(std::begin(k), std::end(k), t) != std::end(k);
}
bool is_eot_text(std::string_view t) {
  return t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|end|>" || t == "<end_of_turn>" || t == "<|endoftext|>" ||
         t == "<EOT>" || t == "<｜end▁of▁sentence｜>";
}

// SPM's starting symbols: UTF-8 characters by their lead byte's length (an invalid lead byte takes what
// it claims, cut at the end), in a linked list.
struct SpmSym {
  int prev, next;     // neighbours, -1 at the ends
  size_t begin, n;    // bytes of the text; n = 0 once merged into the left neighbour
};
std::vector<SpmSym> spm_chars(std::string_view text) {
  static const uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  std::vector<SpmSym> syms;
  for (size_t off = 0; off < text.size();) {
    size_t n = std::min<size_t>(kLen[static_cast<uint8_t>(text[off]) >> 4], text.size() - off);
    int idx = int(syms.size());
    syms.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, off, n});
    off += n;
  }
  return syms;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t at; (at = s.find(from, pos)) != std::string::npos; pos = at + from.size()) out.append(s, pos, at - pos).append(to);
  s = out.append(s, pos, std::string::npos);
}

}  // namespace

void ModelVocab::load_tokens(const GgufFile& f) {
  auto need = [&](bool ok, const std::string& what) { QAT_CHECK(ok, f.path, ": ", what); };
  const std::vector<std::string>& tokens = f.get_arr_string("tokenizer.ggml.tokens");
  const size_t V = tokens.size();
  need(V >= 1 && int64_t(V) <= kMaxTokens, str("tokenizer.ggml.tokens: expected 1 to ", kMaxTokens, " tokens, got ", V));
  type_.assign(V, kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    type_ = f.get_arr_i32("tokenizer.ggml.token_type");
    need(type_.size() == V, str("tokenizer.ggml.token_type has ", type_.size(), " entries, tokenizer.ggml.tokens ", V));
    for (size_t i = 0; i < V; i++)
      need(type_[i] >= kUndefined && type_[i] <= kByte, str("tokenizer.ggml.token_type[", i, "] is ", type_[i], ", expected 0..6"));
  }
  score_.assign(V, 0.0f);
  if (f.has("tokenizer.ggml.scores")) {
    score_ = f.get_arr_f32("tokenizer.ggml.scores");
    need(score_.size() == V, str("tokenizer.ggml.scores has ", score_.size(), " entries, tokenizer.ggml.tokens ", V));
    for (size_t i = 0; i < V; i++) need(std::isfinite(score_[i]), str("tokenizer.ggml.scores[", i, "] is not finite"));
  }
  text_.resize(V);
  id_of_.reserve(V * 2);
  for (size_t i = 0; i < V; i++) {
    text_[i] = tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : tokens[i];  // as llama.cpp
    id_of_[text_[i]] = int32_t(i);
  }
  for (size_t i = 0; i < V; i++)
    if (forced_control(text_[i])) type_[i] = kControl;
}

// "A B" (split at the first space after the first byte, as llama.cpp) -> symbols; a part or result that
// is no token gets a symbol id past the vocabulary.
void ModelVocab::load_merges(const GgufFile& f) {
  const std::vector<std::string>& merges = f.get_arr_string("tokenizer.ggml.merges");
  QAT_CHECK(merges.size() <= size_t(4) * kMaxTokens, f.path, ": tokenizer.ggml.merges: ", merges.size(), " merges, at most ",
            4 * kMaxTokens);
  std::unordered_map<std::string, int32_t> extra;
  auto symbol = [&](const std::string& t) {
    if (int32_t id = find(t); id >= 0) return id;
    auto [it, added] = extra.emplace(t, int32_t(text_.size() + extra_symbols_.size()));
    if (added) extra_symbols_.push_back(t);
    return it->second;
  };
  merges_.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); i++) {
    const std::string& m = merges[i];
    const size_t sp = m.find(' ', 1);
    QAT_CHECK(sp != std::string::npos && sp + 1 < m.size(), f.path, ": tokenizer.ggml.merges[", i,
              "]: expected \"A B\" (two non-empty parts, one space)");
    const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
    merges_.emplace(pair_key(symbol(a), symbol(b)), MergeRule{int32_t(i), symbol(a + b)});  // first rank wins
  }
  for (int b = 0; b < 256; b++) byte_symbol_[b] = symbol(byte_to_unicode(uint8_t(b)));
}

// Special ids (u32 keys), add_bos / add_eos / add_space_prefix, the EOT found by text when not given,
// and the special-token list the partition walks.
void ModelVocab::load_specials(const GgufFile& f) {
  const int64_t V = vocab_size();
  auto id_key = [&](const char* key, int32_t& id) {
    if (!f.has(key)) return;
    uint32_t v = f.get_u32(key);
    QAT_CHECK(int64_t(v) < V, f.path, ": ", key, " is ", v, ", outside the vocabulary of ", V, " tokens");
    id = int32_t(v);
  };
  id_key("tokenizer.ggml.bos_token_id", bos_);
  id_key("tokenizer.ggml.eos_token_id", eos_);
  id_key("tokenizer.ggml.eot_token_id", eot_);
  id_key("tokenizer.ggml.unknown_token_id", unk_);
  if (f.has("tokenizer.ggml.add_bos_token")) add_bos_ = f.get_bool("tokenizer.ggml.add_bos_token");
  if (f.has("tokenizer.ggml.add_eos_token")) add_eos_ = f.get_bool("tokenizer.ggml.add_eos_token");
  if (f.has("tokenizer.ggml.add_space_prefix")) add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix");
  QAT_CHECK(!add_bos_ || (bos_ >= 0 && bos_ < V), f.path, ": tokenizer.ggml.add_bos_token is set but the BOS id ", bos_,
            " is not a token");
  QAT_CHECK(!add_eos_ || (eos_ >= 0 && eos_ < V), f.path, ": tokenizer.ggml.add_eos_token is set but the EOS id ", eos_,
            " is not a token");
  for (int32_t id = 0; eot_ < 0 && id < V; id++)
    if (is_eot_text(text_[size_t(id)])) eot_ = id;
  for (int32_t id = 0; id < V; id++) {
    int32_t t = type_[size_t(id)];
    if (t == kControl || t == kUserDefined || t == kUnknown) specials_.push_back(id);
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int32_t a, int32_t b) { return text_[size_t(a)].size() > text_[size_t(b)].size(); });
  // Phi-3: spaces after a special token are dropped (llama.cpp sets RSTRIP by the model's name).
  rstrip_.assign(size_t(V), false);
  std::string name = f.has("general.name") ? lower(f.get_string("general.name")) : "";
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : specials_) rstrip_[size_t(id)] = true;
    if (int32_t id = find("</s>"); id >= 0) rstrip_[size_t(id)] = true;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
      if (int32_t id = find(t); id >= 0) rstrip_[size_t(id)] = false;
  }
  // A vocabulary from a Hugging Face tokenizer.json says per added token whether spaces after it go; a
  // checkpoint or export of it keeps them under our own key (llama.cpp ignores qat.* keys).
  if (f.has(kRstripKey)) {
    rstrip_from_hf_ = true;
    rstrip_.assign(size_t(V), false);
    for (int32_t id : f.get_arr_i32(kRstripKey)) {
      QAT_CHECK(id >= 0 && id < V, f.path, ": ", kRstripKey, ": token id ", id, " outside the vocabulary of ", V);
      rstrip_[size_t(id)] = true;
    }
  }
}

ModelVocab ModelVocab::from_gguf(const GgufFile& f) {
  ModelVocab v;
  const std::string& model = f.get_string("tokenizer.ggml.model");
  v.load_tokens(f);
  if (model == "gpt2") {
    // No tokenizer.ggml.pre: llama.cpp uses "default" (with a warning), as for gpt-neox.
    const std::string pre = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
    const PreTypeInfo* info = find_pre_type(pre);
    QAT_CHECK(info, f.path, ": tokenizer.ggml.pre \"", pre, "\" is not supported (supported: ", supported_pre_types(), ")");
    v.kind_ = Kind::bpe;
    v.pre_ = info->type;
    v.pre_name_ = pre;
    v.ignore_merges_ = info->ignore_merges;
    v.add_bos_ = info->add_bos;
    v.bos_ = v.eos_ = 11;  // llama.cpp's defaults for "gpt2" when the keys are absent
    v.load_merges(f);
  } else if (model == "llama") {
    v.kind_ = Kind::spm;
    v.add_space_prefix_ = v.add_bos_ = true;
    v.bos_ = 1, v.eos_ = 2, v.unk_ = 0;
  } else {
    fail(f.path, ": tokenizer.ggml.model \"", model, "\" is not supported (expected \"gpt2\" or \"llama\")");
  }
  if (v.bos_ >= v.vocab_size()) v.bos_ = -1;
  if (v.eos_ >= v.vocab_size()) v.eos_ = -1;
  if (v.unk_ >= v.vocab_size()) v.unk_ = -1;
  v.load_specials(f);
  for (const GgufKv& kv : f.kv)
    if (kv.key.rfind("tokenizer.", 0) == 0) v.keys_.push_back(kv);
  if (f.has("general.name")) v.name_ = f.get_string("general.name");
  return v;
}

void ModelVocab::encode_append(std::string_view text, std::vector<int32_t>& out, EncodeCache*) const {
  const std::vector<int32_t> ids = encode(text, false, false);
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> ModelVocab::doc_begin() const {
  if (add_bos_) return {bos_};
  return {};
}

std::vector<int32_t> ModelVocab::doc_end() const {
  if (eos_ >= 0) return {eos_};
  if (eot_ >= 0) return {eot_};
  return {};
}

// The keys as read, and the source's general.name (llama.cpp, as ModelVocab, decides phi-3's rstrip by it).
void ModelVocab::write_gguf(GgufWriter& w) const {
  if (!name_.empty()) w.set_string("general.name", name_);
  for (const GgufKv& kv : keys_) w.set_value(kv.key, kv.value);
  if (rstrip_from_hf_) {
    std::vector<int32_t> ids;
    for (size_t id = 0; id < rstrip_.size(); id++)
      if (rstrip_[id]) ids.push_back(int32_t(id));
    w.set_arr_i32(kRstripKey, ids);
  }
}

std::string ModelVocab::file_bytes() const {
  GgufWriter w;
  write_gguf(w);
  return w.serialize();
}

// FNV-1a 64 of the tokenizer keys and of whether special tokens strip the spaces after them (phi-3,
// by general.name): everything that decides how text is encoded, not the model's name.
uint64_t ModelVocab::fingerprint() const {
  GgufWriter w;
  for (const GgufKv& kv : keys_) w.set_value(kv.key, kv.value);
  const std::string bytes = w.serialize();
  uint64_t h = 1469598103934665603ull;
  for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
  const bool rstrip = std::find(rstrip_.begin(), rstrip_.end(), true) != rstrip_.end();
  return (h ^ uint64_t(rstrip)) * 1099511628211ull;
}

std::string ModelVocab::describe() const {
  std::string s = str(kind_ == Kind::spm ? "llama (SPM)" : "gpt2 (BPE, pre " + pre_name_ + ")", ", ",
                      vocab_size(), " tokens");
  if (add_bos_) s += str(", BOS ", bos_, " added");
  if (eos_ >= 0) s += str(", EOS ", eos_);
  if (eot_ >= 0 && eot_ != eos_) s += str(", EOT ", eot_);
  return s;
}

int32_t ModelVocab::find(std::string_view text) const {
  auto it = id_of_.find(std::string(text));
  return it == id_of_.end() ? -1 : it->second;
}

const std::string& ModelVocab::token_text(int32_t id) const {
  QAT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside [0, ", vocab_size(), ")");
  return text_[size_t(id)];
}

// Cuts every special token out of the raw fragments, longest text first, leftmost occurrence first
// (llama.cpp's tokenizer_st_partition). Control and unknown tokens only when parse_special.
std::vector<ModelVocab::Fragment> ModelVocab::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({0, text.size(), -1});
  for (int32_t id : specials_) {
    const int32_t t = type_[size_t(id)];
    if (!parse_special && (t == kControl || t == kUnknown)) continue;
    const std::string& s = text_[size_t(id)];
    std::vector<Fragment> next;
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t cur = fr.begin;
      for (size_t m; (m = text.find(s, cur)) != std::string_view::npos && m + s.size() <= fr.end;) {
        if (m > cur) next.push_back({cur, m, -1});
        next.push_back({0, 0, id});
        cur = m + s.size();
        if (rstrip_[size_t(id)])
          while (cur < fr.end && std::isspace(static_cast<unsigned char>(text[cur]))) cur++;
      }
      if (cur < fr.end) next.push_back({cur, fr.end, -1});
    }
    frags = std::move(next);
  }
  return frags;
}

std::vector<int32_t> ModelVocab::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && add_bos_) out.push_back(bos_);
  bool prev_special = true;  // SPM: a fragment at the start or after a special token gets a leading space
  for (const Fragment& fr : partition(text, parse_special)) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    std::string_view raw = text.substr(fr.begin, fr.end - fr.begin);
    if (kind_ == Kind::spm) {
      std::string t = (add_space_prefix_ && prev_special) ? " " : "";
      t += raw;
      replace_all(t, " ", "\xe2\x96\x81");  // "▁"
      encode_spm(t, out);
    } else {
      for (const std::string& w : pre_split(raw, pre_)) encode_bpe_word(w, out);
    }
    prev_special = false;
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

// BPE inside one word: symbols start as its bytes (byte-level characters); a min-heap of candidate
// merges keyed by (rank, left position); a candidate is stale when either side changed. As in
// data/tokenizer.cpp, with symbols that may be no token (see MergeRule).
void ModelVocab::encode_bpe_word(const std::string& word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (int32_t id = find(bytes_to_unicode_string(word)); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const int n = int(word.size());
  std::vector<int32_t> sym(word.size()), next(word.size()), prev(word.size());
  for (int i = 0; i < n; i++) {
    sym[i] = byte_symbol_[static_cast<uint8_t>(word[size_t(i)])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, left, right, left_sym, right_sym;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto offer = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    auto it = merges_.find(pair_key(sym[l], sym[r]));
    if (it != merges_.end()) heap.push({it->second.rank, l, r, sym[l], sym[r]});
  };
  for (int i = 0; i + 1 < n; i++) offer(i, i + 1);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    if (sym[c.left] != c.left_sym || sym[c.right] != c.right_sym || next[c.left] != c.right) continue;
    sym[c.left] = merges_.at(pair_key(c.left_sym, c.right_sym)).result;
    sym[c.right] = -1;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    offer(prev[c.left], c.left);
    offer(c.left, next[c.left]);
  }
  for (int i = 0; n > 0 && i >= 0; i = next[i]) {
    if (sym[i] < vocab_size()) {
      out.push_back(sym[i]);
      continue;
    }
    // Not a token: llama.cpp emits the tokens of its single bytes (of the byte-level text), where any.
    for (char ch : extra_symbols_[size_t(sym[i] - vocab_size())])
      if (int32_t id = find(std::string_view(&ch, 1)); id >= 0) out.push_back(id);
  }
}

int32_t ModelVocab::spm_byte_token(uint8_t b) const {
  static const char* hex = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
  if (int32_t id = find(std::string_view(buf, 6)); id >= 0) return id;
  const char raw = char(b);
  if (int32_t id = find(std::string_view(&raw, 1)); id >= 0) return id;
  return unk_;  // llama.cpp would abort here; the unknown token (or nothing) is kinder
}

// SPM (llama.cpp's llm_tokenizer_spm_session): UTF-8 characters (length from the lead byte), then
// repeatedly merge the adjacent pair whose concatenation is the token with the highest score (ties:
// leftmost); each final symbol is its token, or its bytes as byte tokens.
void ModelVocab::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<SpmSym> syms = spm_chars(text);
  struct Bigram {
    int left, right;
    float score;
    size_t size;
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };
  std::priority_queue<Bigram> queue;
  auto offer = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    int32_t id = find(text.substr(syms[size_t(l)].begin, syms[size_t(l)].n + syms[size_t(r)].n));
    if (id >= 0) queue.push({l, r, score_[size_t(id)], syms[size_t(l)].n + syms[size_t(r)].n});
  };
  for (int i = 1; i < int(syms.size()); i++) offer(i - 1, i);
  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    SpmSym &l = syms[size_t(b.left)], &r = syms[size_t(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
    offer(l.prev, b.left);
    offer(b.left, l.next);
  }
  for (int i = 0; !syms.empty() && i != -1; i = syms[size_t(i)].next) {
    std::string_view piece = text.substr(syms[size_t(i)].begin, syms[size_t(i)].n);
    if (int32_t id = find(piece); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char ch : piece)
      if (int32_t id = spm_byte_token(static_cast<uint8_t>(ch)); id >= 0) out.push_back(id);
  }
}

// Token pieces as llama.cpp's token_to_piece(special = false): BPE normal tokens from their byte-level
// text, SPM normal tokens with "▁" as a space, byte tokens their byte, user-defined tokens as written,
// control / unknown / unused tokens nothing.
std::string ModelVocab::decode(const std::vector<int32_t>& ids) const {
  std::string out, bytes;
  for (int32_t id : ids) {
    const std::string& t = token_text(id);
    const int32_t type = type_[size_t(id)];
    if (type == kUserDefined) {
      out += t;
    } else if (type == kNormal || type == kUndefined) {
      if (kind_ == Kind::bpe) {
        out += unicode_string_to_bytes(t, &bytes) ? bytes : t;
      } else {
        std::string s = t;
        replace_all(s, "\xe2\x96\x81", " ");
        out += s;
      }
    } else if (type == kByte && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
      auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
      if (hex(t[3]) >= 0 && hex(t[4]) >= 0) out += char(hex(t[3]) * 16 + hex(t[4]));
    }
  }
  return out;
}

}  // namespace qat
