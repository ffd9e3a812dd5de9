// tokenizer.json in the Hugging Face `tokenizers` format: a BPE model whose vocab and merges are written
// in the GPT-2 byte-to-unicode form, a ByteLevel pre-tokenizer (the GPT-2 regex) and decoder, and
// "<|endoftext|>" as the one special added token (also in the vocab, with the last id, as GPT-2 has it).
// The loader accepts only what this tokenizer can reproduce exactly and checks everything it reads.
// Read next: data/dataset.h.
#include <array>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "data/byte_level.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "src/util/error.h"

namespace qat {
namespace {

Json byte_level(bool add_prefix_space, bool trim_offsets) {
  Json j = Json::object();
  j.set("type", "ByteLevel");
  j.set("add_prefix_space", add_prefix_space);
  j.set("trim_offsets", trim_offsets);
  j.set("use_regex", true);
  return j;
}

// Field access with errors that name the file and the field.
struct Reader {
  const std::string& name;
  [[noreturn]] void bad(const std::string& field, const std::string& what) const {
    fail(name, ": ", field, ": ", what);
  }
  const Json& get(const Json& obj, const std::string& key, Json::Type type, const std::string& path) const {
    const Json* v = obj.find(key);
    if (!v) bad(path, "missing");
    if (v->type() != type) bad(path, "has the wrong type");
    return *v;
  }
  // Optional field that, when present and not null, must equal `want` (a setting we cannot honour).
  void expect(const Json& obj, const std::string& key, const Json& want, const std::string& path) const {
    const Json* v = obj.find(key);
    if (v && !v->is_null() && v->dump() != want.dump()) bad(path, "must be " + want.dump() + ", got " + v->dump());
  }
};

}  // namespace

std::string Tokenizer::to_json() const {
  Json vocab = Json::object();
  std::vector<std::string> strings = gguf_tokens();
  for (size_t id = 0; id < strings.size(); id++) vocab.set(strings[id], Json(int64_t(id)));
  Json merges = Json::array();
  for (std::string& m : gguf_merges()) merges.push(Json(std::move(m)));

  Json model = Json::object();
  model.set("type", "BPE");
  model.set("dropout", nullptr);
  model.set("unk_token", nullptr);
  model.set("continuing_subword_prefix", "");
  model.set("end_of_word_suffix", "");
  model.set("fuse_unk", false);
  model.set("byte_fallback", false);
  model.set("vocab", std::move(vocab));
  model.set("merges", std::move(merges));

  Json eot = Json::object();
  eot.set("id", Json(int64_t(eot_)));
  eot.set("content", std::string(kEotText));
  eot.set("single_word", false);
  eot.set("lstrip", false);
  eot.set("rstrip", false);
  eot.set("normalized", false);
  eot.set("special", true);
  Json added = Json::array();
  added.push(std::move(eot));

  Json j = Json::object();
  j.set("version", "1.0");
  j.set("truncation", nullptr);
  j.set("padding", nullptr);
  j.set("added_tokens", std::move(added));
  j.set("normalizer", nullptr);
  j.set("pre_tokenizer", byte_level(false, true));
  j.set("post_processor", byte_level(true, false));
  j.set("decoder", byte_level(true, true));
  j.set("model", std::move(model));
  return j.dump(1) + "\n";
}

void Tokenizer::save(const std::string& path) const { write_file_atomic(path, to_json()); }

Tokenizer Tokenizer::load(const std::string& path) {
  // 256 MiB is far above any tokenizer this project writes (a 2048-token one is ~60 KB).
  return from_json(read_file(path, uint64_t(256) << 20), path);
}

namespace {

// Settings that change how text is split or ids are produced must be the ones we implement.
void check_settings(const Json& j, const Json& model, const Reader& r) {
  if (r.get(model, "type", Json::Type::string, "model.type").as_string() != "BPE")
    r.bad("model.type", "expected \"BPE\", got " + model.at("type").dump());
  r.expect(model, "byte_fallback", Json(false), "model.byte_fallback");
  r.expect(model, "continuing_subword_prefix", Json(""), "model.continuing_subword_prefix");
  r.expect(model, "end_of_word_suffix", Json(""), "model.end_of_word_suffix");
  r.expect(model, "dropout", Json(nullptr), "model.dropout");
  r.expect(j, "normalizer", Json(nullptr), "normalizer");
  const Json& pre = r.get(j, "pre_tokenizer", Json::Type::object, "pre_tokenizer");
  if (r.get(pre, "type", Json::Type::string, "pre_tokenizer.type").as_string() != "ByteLevel")
    r.bad("pre_tokenizer.type", "expected \"ByteLevel\" (the GPT-2 split), got " + pre.at("type").dump());
  r.expect(pre, "add_prefix_space", Json(false), "pre_tokenizer.add_prefix_space");
  r.expect(pre, "use_regex", Json(true), "pre_tokenizer.use_regex");
}

// The vocabulary as (token string, id) pairs: ids 0..V-1, each exactly once; every string maps back to
// distinct bytes, except the EOT text, which must have the last id; all 256 single bytes present.
// `field(k)` names entry k in errors ("model.vocab[\"ab\"]"), `all` the whole list. Returns each id's bytes.
std::vector<std::string> check_vocab(const std::vector<std::pair<std::string_view, int64_t>>& entries,
                                     const std::function<std::string(size_t)>& field, const std::string& all,
                                     const Reader& r, std::unordered_map<std::string, int32_t>& bytes_to_id) {
  const size_t V = entries.size();
  if (V < 257 || V > (1u << 20)) r.bad(all, "expected 257 to 1048576 tokens, got " + std::to_string(V));
  std::vector<std::string> tokens(V);
  std::vector<bool> have(V, false);
  bytes_to_id.reserve(V);
  for (size_t k = 0; k < V; k++) {
    auto [str, id] = entries[k];
    if (id < 0 || id >= int64_t(V)) r.bad(field(k), "id " + std::to_string(id) + " outside [0, " + std::to_string(V) + ")");
    if (have[size_t(id)]) r.bad(field(k), "id " + std::to_string(id) + " used twice");
    have[size_t(id)] = true;
    std::string bytes;
    if (str == Tokenizer::kEotText) {
      if (id != int64_t(V) - 1) r.bad(field(k), "<|endoftext|> must have the last id " + std::to_string(V - 1));
      bytes = str;
    } else {
      if (str.empty() || !unicode_string_to_bytes(std::string(str), &bytes)) r.bad(field(k), "not a byte-level token string");
      if (!bytes_to_id.emplace(bytes, int32_t(id)).second) r.bad(field(k), "same bytes as another token");
    }
    tokens[size_t(id)] = std::move(bytes);
  }
  if (tokens[V - 1] != Tokenizer::kEotText) r.bad(all, "the last id must be <|endoftext|>");
  for (int b = 0; b < 256; b++)
    if (!bytes_to_id.count(std::string(1, char(b))))
      r.bad(all, "no token for byte " + std::to_string(b) + " (\"" + byte_to_unicode(uint8_t(b)) + "\")");
  return tokens;
}

// model.vocab of tokenizer.json: each id a non-negative integer, then check_vocab.
std::vector<std::string> read_vocab(const Json& model, const Reader& r, std::unordered_map<std::string, int32_t>& bytes_to_id) {
  const Json& vocab = r.get(model, "vocab", Json::Type::object, "model.vocab");
  const auto& members = vocab.members();
  auto field = [&](size_t k) { return "model.vocab[" + Json(members[k].first).dump() + "]"; };
  if (members.size() > (1u << 20)) r.bad("model.vocab", "expected 257 to 1048576 tokens, got " + std::to_string(members.size()));
  std::vector<std::pair<std::string_view, int64_t>> entries;
  entries.reserve(members.size());
  for (size_t k = 0; k < members.size(); k++) {
    const Json& idj = members[k].second;
    if (!idj.is_number() || idj.dump().find_first_not_of("0123456789") != std::string::npos)
      r.bad(field(k), "expected a non-negative integer id, got " + idj.dump());
    entries.emplace_back(members[k].first, idj.as_int());
  }
  return check_vocab(entries, field, "model.vocab", r, bytes_to_id);
}

// added_tokens: exactly the EOT token, special, with the last id.
void check_added_tokens(const Json& j, const Reader& r, size_t V) {
  const Json& added = r.get(j, "added_tokens", Json::Type::array, "added_tokens");
  if (added.items().size() != 1) r.bad("added_tokens", "expected exactly one entry, <|endoftext|>");
  const Json& eot = added.items()[0];
  if (!eot.is_object()) r.bad("added_tokens[0]", "expected an object");
  if (r.get(eot, "content", Json::Type::string, "added_tokens[0].content").as_string() != Tokenizer::kEotText)
    r.bad("added_tokens[0].content", "expected \"<|endoftext|>\"");
  const Json& id = r.get(eot, "id", Json::Type::number, "added_tokens[0].id");
  if (id.dump() != std::to_string(V - 1)) r.bad("added_tokens[0].id", "expected " + std::to_string(V - 1) + ", got " + id.dump());
  r.expect(eot, "special", Json(true), "added_tokens[0].special");
}

// "A B" (two tokens, one space) as its two token strings.
std::pair<std::string, std::string> split_merge(const std::string& s, const Reader& r, const std::string& field) {
  size_t sp = s.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
    r.bad(field, "expected \"A B\" (two tokens, one space), got " + Json(s).dump());
  return {s.substr(0, sp), s.substr(sp + 1)};
}

// One merge, "A B" or ["A", "B"], as its two token strings.
std::pair<std::string, std::string> merge_parts(const Json& m, const Reader& r, const std::string& field) {
  if (m.is_array() && m.items().size() == 2 && m.items()[0].is_string() && m.items()[1].is_string())
    return {m.items()[0].as_string(), m.items()[1].as_string()};
  if (!m.is_string()) r.bad(field, "expected \"A B\" or [\"A\", \"B\"], got " + m.dump());
  return split_merge(m.as_string(), r, field);
}

// n merges in rank order, parts(i, field) giving merge i's two token strings: both parts and their
// concatenation are tokens; no pair twice. Returns (left, right, result) ids per merge.
template <class Parts>
std::vector<std::array<int32_t, 3>> check_merges(size_t n, const Parts& parts, const std::string& all, const Reader& r,
                                                 const std::unordered_map<std::string, int32_t>& bytes_to_id) {
  std::vector<std::array<int32_t, 3>> merges;
  merges.reserve(n);
  std::unordered_set<uint64_t> seen;
  for (size_t i = 0; i < n; i++) {
    std::string field = all + "[" + std::to_string(i) + "]";
    auto [left, right] = parts(i, field);
    int32_t ids[2];
    std::string joined, bytes;
    for (int k = 0; k < 2; k++) {
      const std::string& part = k ? right : left;
      auto it = unicode_string_to_bytes(part, &bytes) ? bytes_to_id.find(bytes) : bytes_to_id.end();
      if (it == bytes_to_id.end()) r.bad(field, Json(part).dump() + " is not in model.vocab");  // escaped: one line
      ids[k] = it->second;
      joined += bytes;
    }
    auto res = bytes_to_id.find(joined);
    if (res == bytes_to_id.end()) r.bad(field, "the merged token " + Json(left + right).dump() + " is not in model.vocab");
    if (!seen.insert(uint64_t(uint32_t(ids[0])) << 32 | uint32_t(ids[1])).second) r.bad(field, "the same pair merged twice");
    merges.push_back({ids[0], ids[1], res->second});
  }
  return merges;
}

}  // namespace

// Every error names the file: a message from a helper that does not (a JSON integer beyond int64 read
// by as_int, found by the fuzz smoke) gets the name in front.
Tokenizer Tokenizer::from_json(std::string_view text, const std::string& name) {
  auto body = [&]() -> Tokenizer {
    Json j;
    try {
      j = Json::parse(text);
    } catch (const Error& e) {
      fail(name, ": ", e.what());
    }
    Reader r{name};
    if (!j.is_object()) r.bad("top level", "expected a JSON object");
    const Json& model = r.get(j, "model", Json::Type::object, "model");
    check_settings(j, model, r);
    std::unordered_map<std::string, int32_t> bytes_to_id;
    std::vector<std::string> tokens = read_vocab(model, r, bytes_to_id);
    check_added_tokens(j, r, tokens.size());

    const Json& mj = r.get(model, "merges", Json::Type::array, "model.merges");
    auto parts = [&](size_t i, const std::string& field) { return merge_parts(mj.items()[i], r, field); };
    std::vector<Merge> merges;
    for (const auto& [a, b, c] : check_merges(mj.items().size(), parts, "model.merges", r, bytes_to_id)) merges.push_back({a, b, c});
    return Tokenizer(std::move(tokens), std::move(merges));
  };
  try {
    return body();
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(name + ": ", 0) == 0) throw;
    fail(name, ": ", m);
  }
}

// The same checks on GGUF's tokenizer.ggml.tokens (id = index) and .merges, without building JSON.
Tokenizer Tokenizer::from_gguf(const std::vector<std::string>& token_strings, const std::vector<std::string>& merge_strings,
                               const std::string& name) {
  Reader r{name};
  std::vector<std::pair<std::string_view, int64_t>> entries;
  entries.reserve(token_strings.size());
  for (size_t i = 0; i < token_strings.size(); i++) entries.emplace_back(token_strings[i], int64_t(i));
  auto field = [](size_t k) { return "tokenizer.ggml.tokens[" + std::to_string(k) + "]"; };
  std::unordered_map<std::string, int32_t> bytes_to_id;
  std::vector<std::string> tokens = check_vocab(entries, field, "tokenizer.ggml.tokens", r, bytes_to_id);
  auto parts = [&](size_t i, const std::string& f) { return split_merge(merge_strings[i], r, f); };
  std::vector<Merge> merges;
  for (const auto& [a, b, c] : check_merges(merge_strings.size(), parts, "tokenizer.ggml.merges", r, bytes_to_id))
    merges.push_back({a, b, c});
  return Tokenizer(std::move(tokens), std::move(merges));
}

}  // namespace qat
