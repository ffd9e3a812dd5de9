// ModelVocab from a Hugging Face tokenizer.json: the GGUF tokenizer.ggml.* keys llama.cpp's converter
// (convert_hf_to_gguf.py, gguf-py's SpecialVocab) would write for it are built in memory and read by
// from_gguf, so both paths share every check and the encoder. Two forms of model.type BPE:
//  - ByteLevel (GPT-2, Llama 3): pre_tokenizer ByteLevel (GPT-2's regex) or Split(regex) + ByteLevel
//    (Llama 3's or Qwen2's regex) -> tokenizer.ggml.model "gpt2" with the matching pre type;
//  - Metaspace / SentencePiece style (Llama 2, TinyLlama): byte_fallback, normalizer Prepend "▁" +
//    Replace " " -> "▁" (or pre_tokenizer Metaspace) -> model "llama"; the merges' ranks become scores
//    (a token's score is minus the rank of the first merge that makes it), which is the order
//    SentencePiece's scores had when the merges were extracted from them.
// added_tokens become control (special) or user-defined tokens; BOS / EOS / UNK / PAD ids and add_bos /
// add_eos come from tokenizer_config.json, then config.json, beside the file. Read next: data/model_vocab.h.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "data/model_vocab.h"
#include "src/io/file.h"
#include "src/io/format_util.h"
#include "src/io/gguf.h"
#include "src/io/json.h"
#include "src/util/error.h"

namespace qat {
namespace {

constexpr uint64_t kMaxTokenizerJsonBytes = uint64_t(1) << 28;  // Llama 3's is 9 MB
constexpr uint64_t kMaxSideJsonBytes = uint64_t(1) << 24;       // tokenizer_config.json (chat templates)

// The Split regexes of the Llama 3 and Qwen2 tokenizer.json files, as written there.
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct AddedToken {
  int32_t id;
  std::string content;
  bool special, rstrip;
};

// What the file says, checked: tokens by id, merges as "A B", added tokens, the form.
struct HfTokenizer {
  std::string path;
  std::map<int64_t, std::string> by_id;
  std::vector<std::string> merges;
  std::vector<AddedToken> added;
  std::string unk;            // model.unk_token ("" when none)
  bool spm = false;           // the Metaspace / SentencePiece form
  bool space_prefix = false;  // spm: a "▁" is prepended
  std::string pre;            // bpe: the GGUF tokenizer.ggml.pre name
};

const Json* member(const Json& j, std::string_view key) { return j.is_object() ? j.find(key) : nullptr; }
bool is_type(const Json* j, std::string_view type) {
  const Json* t = j ? member(*j, "type") : nullptr;
  return t && t->is_string() && t->as_string() == type;
}
bool flag(const Json& j, std::string_view key, bool absent) {
  const Json* v = member(j, key);
  return v && v->type() == Json::Type::boolean ? v->as_bool() : absent;
}
std::string shown(const Json& j) {
  std::string s = j.dump();
  return s.size() > 100 ? s.substr(0, 100) + "..." : s;
}

int64_t token_id(const Json& v, const std::string& where) {
  QAT_CHECK(v.is_number() && v.as_double() >= 0 && v.as_double() < double(ModelVocab::kMaxTokens) &&
                v.as_double() == double(int64_t(v.as_double())),
            where, " is ", shown(v), ", expected a token id in [0, ", ModelVocab::kMaxTokens, ")");
  return int64_t(v.as_double());
}

void read_vocab(const Json& model, HfTokenizer& t) {
  const Json* vocab = member(model, "vocab");
  QAT_CHECK(vocab && vocab->is_object() && !vocab->members().empty(), t.path, ": model.vocab: expected an object token -> id");
  for (const auto& [text, id] : vocab->members()) {
    auto [it, fresh] = t.by_id.emplace(token_id(id, str(t.path, ": model.vocab[", fmt::quote(text), "]")), text);
    QAT_CHECK(fresh, t.path, ": model.vocab: id ", it->first, " is given to ", fmt::quote(it->second), " and ", fmt::quote(text));
  }
}

// "A B" strings, or [A, B] pairs (transformers >= 4.45), whose spaces llama.cpp writes as U+0120.
void read_merges(const Json& model, HfTokenizer& t) {
  const Json* merges = member(model, "merges");
  if (!merges || merges->is_null()) return;
  QAT_CHECK(merges->is_array() && merges->items().size() <= size_t(4) * ModelVocab::kMaxTokens, t.path,
            ": model.merges: expected an array of at most ", 4 * ModelVocab::kMaxTokens, " merges");
  for (size_t i = 0; i < merges->items().size(); i++) {
    const Json& m = merges->items()[i];
    if (m.is_string()) {
      t.merges.push_back(m.as_string());
      continue;
    }
    QAT_CHECK(m.is_array() && m.items().size() == 2 && m.items()[0].is_string() && m.items()[1].is_string(), t.path,
              ": model.merges[", i, "] is ", shown(m), ", expected \"A B\" or [\"A\", \"B\"]");
    std::string joined;
    for (int k = 0; k < 2; k++) {
      if (k) joined += ' ';
      for (char c : m.items()[size_t(k)].as_string()) joined += c == ' ' ? std::string("\xc4\xa0") : std::string(1, c);
    }
    t.merges.push_back(joined);
  }
}

void read_added(const Json& j, HfTokenizer& t) {
  const Json* added = member(j, "added_tokens");
  if (!added || added->is_null()) return;
  QAT_CHECK(added->is_array(), t.path, ": added_tokens: expected an array");
  for (size_t i = 0; i < added->items().size(); i++) {
    const Json& a = added->items()[i];
    const std::string where = str(t.path, ": added_tokens[", i, "]");
    const Json* content = member(a, "content");
    QAT_CHECK(content && content->is_string() && !content->as_string().empty() && member(a, "id"), where,
              ": expected {\"id\": N, \"content\": \"...\", ...}");
    const int64_t id = token_id(*member(a, "id"), where + ".id");
    t.added.push_back({int32_t(id), content->as_string(), flag(a, "special", false), flag(a, "rstrip", false)});
    auto [it, fresh] = t.by_id.emplace(id, content->as_string());
    QAT_CHECK(fresh || it->second == content->as_string(), where, ": id ", id, " is ", fmt::quote(it->second),
              " in model.vocab, ", fmt::quote(content->as_string()), " here");
  }
}

// The SentencePiece form: normalizer Prepend("▁") + Replace(" " -> "▁"), or a Metaspace pre-tokenizer.
bool detect_spm(const Json& j, HfTokenizer& t) {
  const Json* norm = member(j, "normalizer");
  const Json* pre = member(j, "pre_tokenizer");
  if (is_type(pre, "Metaspace")) {
    const Json* scheme = member(*pre, "prepend_scheme");
    t.space_prefix = scheme && scheme->is_string() ? scheme->as_string() != "never" : flag(*pre, "add_prefix_space", true);
    return true;
  }
  if (!is_type(norm, "Sequence") || (pre && !pre->is_null())) return false;
  const Json* list = member(*norm, "normalizers");
  bool prepend = false, replace = false;
  for (const Json& n : list && list->is_array() ? list->items() : std::vector<Json>{}) {
    const Json* p = member(n, "prepend");
    if (is_type(&n, "Prepend") && p && p->is_string() && p->as_string() == "\xe2\x96\x81") prepend = true;
    else if (is_type(&n, "Replace") && member(n, "content") && member(n, "content")->dump() == "\"\xe2\x96\x81\"") replace = true;
    else fail(t.path, ": normalizer ", shown(n), " is not part of the SentencePiece form (Prepend \"▁\", Replace \" \" -> \"▁\")");
  }
  QAT_CHECK(replace, t.path, ": normalizer: the SentencePiece form needs Replace \" \" -> \"▁\"");
  t.space_prefix = prepend;
  return true;
}

// The ByteLevel form's pre type: GPT-2's built-in regex, or one Split whose regex names a pre type.
std::string detect_byte_level(const Json& j, const Json& model, const std::string& path) {
  const Json* pre = member(j, "pre_tokenizer");
  const Json* norm = member(j, "normalizer");
  QAT_CHECK(!norm || norm->is_null(), path, ": normalizer ", shown(*norm), " is not supported with a ByteLevel pre_tokenizer");
  if (is_type(pre, "ByteLevel")) {
    QAT_CHECK(flag(*pre, "use_regex", true) && !flag(*pre, "add_prefix_space", false), path, ": pre_tokenizer ", shown(*pre),
              ": only ByteLevel with GPT-2's regex and no prefix space is supported");
    return "gpt-2";
  }
  const Json* list = is_type(pre, "Sequence") ? member(*pre, "pretokenizers") : nullptr;
  const bool two = list && list->is_array() && list->items().size() == 2;
  const Json* split = two ? &list->items()[0] : nullptr;
  const Json* regex = split && is_type(split, "Split") && member(*split, "pattern") ? member(*member(*split, "pattern"), "Regex") : nullptr;
  const Json* behavior = split ? member(*split, "behavior") : nullptr;
  const bool ok = regex && regex->is_string() && behavior && behavior->dump() == "\"Isolated\"" && !flag(*split, "invert", false) &&
                  is_type(&list->items()[1], "ByteLevel") && !flag(list->items()[1], "use_regex", true);
  QAT_CHECK(ok, path, ": pre_tokenizer ", pre ? shown(*pre) : "null",
            " is not a supported form (ByteLevel; or Sequence [Split(regex, Isolated), ByteLevel(use_regex false)])");
  if (regex->as_string() == kLlama3Regex) return flag(model, "ignore_merges", false) ? "llama-bpe" : "dbrx";
  if (regex->as_string() == kQwen2Regex) return "qwen2";
  fail(path, ": pre_tokenizer: the Split regex ", shown(*regex), " is not one of the supported ones (Llama 3, Qwen2)");
}

HfTokenizer read_tokenizer_json(const std::string& path) {
  HfTokenizer t;
  t.path = path;
  Json j;
  try {
    j = Json::parse(read_file(path, kMaxTokenizerJsonBytes));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  const Json* model = member(j, "model");
  QAT_CHECK(model && is_type(model, "BPE"), path, ": model.type must be \"BPE\" (", model ? shown(*model) : "no model",
            "): WordPiece and Unigram tokenizers are not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const Json* v = member(*model, key); v && !v->is_null() && v->dump() != "\"\"")
      fail(path, ": model.", key, " is ", shown(*v), ": not supported");
  read_vocab(*model, t);
  read_merges(*model, t);
  read_added(j, t);
  if (const Json* unk = member(*model, "unk_token"); unk && unk->is_string()) t.unk = unk->as_string();
  t.spm = flag(*model, "byte_fallback", false);
  if (t.spm) {
    QAT_CHECK(detect_spm(j, t), path, ": byte_fallback without the SentencePiece form (normalizer Prepend + Replace, or Metaspace)");
  } else {
    t.pre = detect_byte_level(j, *model, path);
  }
  return t;
}

// gguf-py's SpecialVocab: tokenizer_config.json's <typ>_token (text -> added token id) and
// add_<typ>_token, then config.json's <typ>_token_id; the first id found for a type wins.
void special_keys(const HfTokenizer& t, int64_t V, GgufWriter& w) {
  const std::string dir = t.path.substr(0, t.path.find_last_of('/') == std::string::npos ? 0 : t.path.find_last_of('/') + 1);
  std::map<std::string, uint32_t> ids;
  auto set_id = [&](const std::string& typ, const Json* v) {
    if (v && v->is_number() && v->as_double() >= 0 && v->as_double() < double(V) && v->as_double() == double(int64_t(v->as_double())))
      ids.emplace(typ, uint32_t(v->as_double()));
  };
  const char* types[] = {"bos", "eos", "unk", "pad"};
  if (file_exists(dir + "tokenizer_config.json")) {
    Json tc;
    try {
      tc = Json::parse(read_file(dir + "tokenizer_config.json", kMaxSideJsonBytes));
    } catch (const Error& e) {
      fail(dir, "tokenizer_config.json: ", e.what());
    }
    for (const char* typ : types) {
      if (const Json* add = member(tc, str("add_", typ, "_token")); add && add->type() == Json::Type::boolean)
        w.set_bool(str("tokenizer.ggml.add_", typ, "_token"), add->as_bool());
      const Json* e = member(tc, str(typ, "_token"));
      const Json* content = e && e->is_object() ? member(*e, "content") : e;
      if (!content || !content->is_string()) continue;
      for (const AddedToken& a : t.added)
        if (a.content == content->as_string()) {
          Json id(int64_t(a.id));
          set_id(typ, &id);
          break;
        }
    }
  }
  if (file_exists(dir + "config.json")) {
    Json c;
    try {
      c = Json::parse(read_file(dir + "config.json", kMaxSideJsonBytes));
    } catch (const Error& e) {
      fail(dir, "config.json: ", e.what());
    }
    for (const char* typ : types) set_id(typ, member(c, str(typ, "_token_id")));
  }
  const char* keys[] = {"bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"};
  for (int k = 0; k < 4; k++)
    if (ids.count(types[k])) w.set_u32(str("tokenizer.ggml.", keys[k]), ids[types[k]]);
}

// Token types as the converter assigns them (get_vocab_base / the SentencePiece vocab).
std::vector<int32_t> token_types(const HfTokenizer& t, const std::vector<std::string>& tokens, const std::vector<bool>& present) {
  std::vector<int32_t> type(tokens.size(), ModelVocab::kNormal);
  for (size_t i = 0; i < tokens.size(); i++) {
    const std::string& s = tokens[i];
    if (!present[i]) type[i] = ModelVocab::kUnused;
    else if (t.spm && s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' && std::isxdigit(uint8_t(s[3])) && std::isxdigit(uint8_t(s[4])))
      type[i] = ModelVocab::kByte;
    else if (t.spm && !t.unk.empty() && s == t.unk) type[i] = ModelVocab::kUnknown;
  }
  for (const AddedToken& a : t.added) {
    const std::string& s = a.content;
    const bool looks_special = (s.rfind("<|", 0) == 0 && s.size() >= 4 && s.compare(s.size() - 2, 2, "|>") == 0) || s == "<pad>" ||
                               s == "<mask>";
    if (type[size_t(a.id)] == ModelVocab::kUnknown || type[size_t(a.id)] == ModelVocab::kByte) continue;
    type[size_t(a.id)] = a.special || looks_special ? ModelVocab::kControl : ModelVocab::kUserDefined;
  }
  return type;
}

// SentencePiece scores from merge ranks: -rank of the first merge producing a token; tokens no merge
// makes: 0 for byte / control / unknown / user-defined ones (as SentencePiece has them), below every
// merge for normal ones.
std::vector<float> spm_scores(const HfTokenizer& t, const std::vector<std::string>& tokens, const std::vector<int32_t>& type) {
  std::map<std::string, size_t> first_rank;
  for (size_t r = 0; r < t.merges.size(); r++) {
    const std::string& m = t.merges[r];
    const size_t sp = m.find(' ', 1);
    QAT_CHECK(sp != std::string::npos && sp + 1 < m.size(), t.path, ": model.merges[", r, "]: expected \"A B\"");
    first_rank.emplace(m.substr(0, sp) + m.substr(sp + 1), r);
  }
  std::vector<float> score(tokens.size(), 0.0f);
  for (size_t i = 0; i < tokens.size(); i++) {
    auto it = first_rank.find(tokens[i]);
    if (it != first_rank.end()) score[i] = -float(it->second);
    else if (type[i] == ModelVocab::kNormal) score[i] = -float(t.merges.size() + i);
  }
  return score;
}

int64_t config_vocab_size(const std::string& path) {
  const std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (!file_exists(dir + "config.json")) return 0;
  try {
    const Json cfg = Json::parse(read_file(dir + "config.json", kMaxSideJsonBytes));  // outlives v
    const Json* v = member(cfg, "vocab_size");
    return v && v->is_number() && v->as_double() > 0 && v->as_double() <= double(ModelVocab::kMaxTokens) ? int64_t(v->as_double()) : 0;
  } catch (const Error& e) {
    fail(dir, "config.json: ", e.what());
  }
}

}  // namespace

ModelVocab ModelVocab::from_hf_tokenizer_json(const std::string& path) {
  const HfTokenizer t = read_tokenizer_json(path);
  // Ids 0 .. V-1; V also covers config.json's vocab_size (the embedding's rows), as the converter pads.
  const int64_t V = std::max(int64_t(t.by_id.size()), config_vocab_size(path));
  // Memory follows what the file defines: ids past its tokens only up to config.json's vocab_size.
  QAT_CHECK(t.by_id.rbegin()->first < V, path, ": token id ", t.by_id.rbegin()->first, " is beyond the ", t.by_id.size(),
            " tokens the file defines", V > int64_t(t.by_id.size()) ? " and config.json's vocab_size" : "");
  std::vector<std::string> tokens(static_cast<size_t>(V));
  std::vector<bool> present(size_t(V), false);
  for (int64_t i = 0; i < V; i++) tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [id, text] : t.by_id) tokens[size_t(id)] = text, present[size_t(id)] = true;
  const std::vector<int32_t> type = token_types(t, tokens, present);
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", t.spm ? "llama" : "gpt2");
  if (!t.spm) w.set_string("tokenizer.ggml.pre", t.pre);
  w.set_arr_string("tokenizer.ggml.tokens", tokens);
  w.set_arr_i32("tokenizer.ggml.token_type", type);
  if (t.spm) {
    w.set_arr_f32("tokenizer.ggml.scores", spm_scores(t, tokens, type));
    w.set_bool("tokenizer.ggml.add_space_prefix", t.space_prefix);
  } else {
    w.set_arr_string("tokenizer.ggml.merges", t.merges);
  }
  special_keys(t, V, w);
  ModelVocab v = from_gguf(parse_gguf(w.serialize(), path));
  // Hugging Face says per added token whether spaces after it are dropped (llama.cpp guesses by model name).
  for (const AddedToken& a : t.added) v.rstrip_[size_t(a.id)] = a.rstrip;
  v.rstrip_from_hf_ = true;  // written back under kRstripKey, so a checkpoint keeps these flags
  return v;
}

}  // namespace qat
