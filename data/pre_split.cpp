// The pre-tokenizer regexes of llama.cpp's llm_tokenizer_bpe, as matchers over codepoints. Two kinds of
// stage, as in llama.cpp's unicode_regex_split:
//  - tiling: the GPT-2 and Llama 3 regexes, which llama.cpp also runs by hand (unicode_regex_split_custom_*)
//    and whose alternatives tile the piece;
//  - search: the others run through std::regex there; a match is searched leftmost, the gap before it is
//    a piece of its own. A non-ASCII whitespace codepoint reads as U+000B there (std::regex's \s only knows
//    ASCII), so a bracket range never matches it: `set_cp` does the same.
// Read next: data/model_vocab.cpp.
#include "data/pre_split.h"

#include <cstdint>

#include "data/pretokenize.h"
#include "data/unicode.h"

namespace qat {
namespace {

const PreTypeInfo kPreTypes[] = {
    {PreType::gpt2, {"gpt-2", "phi-2", "roberta-bpe", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                     "jina-v2-de", "jina-v2-code", "mpt", "olmo", "jais"}, false, false},
    {PreType::llama3, {"llama-bpe", "llama3", "llama-v3", "falcon3"}, true, true},
    {PreType::llama3, {"dbrx", "smaug-bpe"}, false, false},
    {PreType::qwen2, {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, false, false},
    {PreType::deepseek_llm, {"deepseek-llm"}, false, false},
    {PreType::starcoder, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, false, false},
    {PreType::deepseek_coder, {"deepseek-coder"}, false, false},
    {PreType::falcon, {"falcon"}, false, false},
    {PreType::default_, {"default"}, false, false},
};

struct Span {
  const uint32_t* c;  // (n) codepoints of one piece
  size_t n;
};
using Lengths = std::vector<size_t>;  // piece lengths in codepoints

CharClass cls_at(Span s, size_t i) { return i < s.n ? char_class(s.c[i]) : CharClass::other; }
bool is_ws(Span s, size_t i) { return i < s.n && char_class(s.c[i]) == CharClass::whitespace; }
bool is_cr_lf(uint32_t cp) { return cp == '\r' || cp == '\n'; }
// The codepoint std::wregex sees (see the file comment).
uint32_t set_cp(uint32_t cp) { return cp > 0x7F && char_class(cp) == CharClass::whitespace ? 0x0B : cp; }

// (?i:'s|'t|'re|'ve|'m|'ll|'d): length at i, or 0. Only ASCII letters lower-case to these letters.
size_t contraction_ci(Span s, size_t i) {
  auto low = [&](size_t k) -> uint32_t {
    uint32_t c = k < s.n ? s.c[k] : 0;
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  };
  if (s.c[i] != '\'' || i + 1 >= s.n) return 0;
  uint32_t a = low(i + 1), b = low(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < s.n && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))) return 3;
  return 0;
}

// Whitespace alternatives of Llama 3: \s*[\r\n]+ | \s+(?!\S) | \s+ ; 0 when no whitespace at i.
size_t llama3_space(Span s, size_t i) {
  size_t n = 0, last_crlf = 0;
  while (is_ws(s, i + n)) {
    if (is_cr_lf(s.c[i + n])) last_crlf = i + n + 1;
    n++;
  }
  if (last_crlf > 0) return last_crlf - i;
  if (n > 1 && i + n < s.n) return n - 1;
  return n;
}

// The Llama 3 regex (digits = 3) or Qwen2's (digits = 1), one alternative at a time as llama.cpp's
// unicode_regex_split_custom_llama3:
//   contractions | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,digits} | ?[^\s\p{L}\p{N}]+[\r\n]* | whitespace
size_t llama3_length(Span s, size_t i, size_t digits) {
  if (size_t k = contraction_ci(s, i)) return k;
  const CharClass c = cls_at(s, i);
  if (!is_cr_lf(s.c[i]) && c != CharClass::number && (c == CharClass::letter || cls_at(s, i + 1) == CharClass::letter)) {
    size_t j = i + 1;
    while (cls_at(s, j) == CharClass::letter) j++;
    return j - i;
  }
  if (c == CharClass::number) {
    size_t j = i;
    while (j - i < digits && cls_at(s, j) == CharClass::number) j++;
    return j - i;
  }
  const size_t body = (s.c[i] == ' ' && i + 1 < s.n) ? i + 1 : i;
  if (body < s.n && cls_at(s, body) == CharClass::other) {
    size_t j = body;
    while (j < s.n && cls_at(s, j) == CharClass::other) j++;
    while (j < s.n && is_cr_lf(s.c[j])) j++;
    return j - i;
  }
  if (size_t k = llama3_space(s, i)) return k;
  return 1;
}

// GPT-2's regex through the splitter our own tokenizer uses (data/pretokenize.h), on the piece's UTF-8.
Lengths split_gpt2(Span s) {
  std::string text;
  std::vector<size_t> cp_at_byte;  // (bytes + 1) codepoint index of each byte offset
  for (size_t i = 0; i < s.n; i++) {
    append_utf8(s.c[i], text);
    cp_at_byte.resize(text.size(), i);
  }
  cp_at_byte.push_back(s.n);
  Lengths out;
  for (size_t pos = 0; pos < text.size();) {
    size_t len = pretoken_length(text, pos);
    out.push_back(cp_at_byte[pos + len] - cp_at_byte[pos]);
    pos += len;
  }
  return out;
}

template <class F>
Lengths tile(Span s, F&& length) {
  Lengths out;
  for (size_t i = 0; i < s.n;) {
    size_t k = length(s, i);
    out.push_back(k);
    i += k;
  }
  return out;
}

// std::regex_search over the piece: leftmost match, gaps between matches are pieces too.
template <class M>
Lengths search(Span s, M&& match) {
  Lengths out;
  size_t gap = 0;
  for (size_t i = 0; i < s.n;) {
    size_t k = match(s, i);
    if (k == 0) {
      i++, gap++;
      continue;
    }
    if (gap) out.push_back(gap);
    out.push_back(k);
    gap = 0;
    i += k;
  }
  if (gap) out.push_back(gap);
  return out;
}

struct Range {
  uint32_t first, last;  // inclusive
};
template <size_t N>
bool in_set(const Range (&set)[N], uint32_t cp) {
  cp = set_cp(cp);
  for (const Range& r : set)
    if (cp >= r.first && cp <= r.last) return true;
  return false;
}

// DeepSeek LLM's bracket sets, copied from llama.cpp's regex_exprs (letters of cased scripts, ASCII and
// full-width punctuation, CJK + Hangul).
const Range kDsLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
    {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
    {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
const Range kDsPunct[] = {{0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
const Range kDsCjk[] = {{0x4E00, 0x9FA5}, {0x800, 0x4E00}, {0xAC00, 0xD7FF}};

// \s?X+ with X a codepoint predicate.
template <class P>
size_t opt_space_run(Span s, size_t i, P&& in) {
  size_t j = (is_ws(s, i) && i + 1 < s.n && in(s.c[i + 1])) ? i + 1 : i;
  if (j >= s.n || !in(s.c[j])) return 0;
  while (j < s.n && in(s.c[j])) j++;
  return j - i;
}
// X{1,max} (greedy) with X a codepoint predicate.
template <class P>
size_t run(Span s, size_t i, P&& in, size_t max = SIZE_MAX) {
  size_t j = i;
  while (j < s.n && j - i < max && in(s.c[j])) j++;
  return j - i;
}
bool is_letter(uint32_t cp) { return char_class(cp) == CharClass::letter; }
bool is_number(uint32_t cp) { return char_class(cp) == CharClass::number; }
bool is_digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }
bool ds_letter(uint32_t cp) { return in_set(kDsLetters, cp); }
bool ds_punct(uint32_t cp) { return in_set(kDsPunct, cp); }
bool ds_cjk(uint32_t cp) { return in_set(kDsCjk, cp); }
// [\p{P}\$\+<=>\^~\|] (default) and the same with ` (Falcon).
bool punct_or_sym(uint32_t cp) { return is_punctuation(cp) || (cp < 128 && std::string_view("$+<=>^~|").find(char(cp)) != std::string_view::npos); }
bool punct_or_sym_tick(uint32_t cp) { return punct_or_sym(cp) || cp == '`'; }

// [0-9][0-9][0-9]
size_t three_digits(Span s, size_t i) { return run(s, i, is_digit, 3) == 3 ? 3 : 0; }
// \s+$ (the end of the piece)
size_t trailing_space(Span s, size_t i) {
  size_t j = i;
  while (is_ws(s, j)) j++;
  return j > i && j == s.n ? j - i : 0;
}

using Stage = Lengths (*)(Span);
// A search stage from a matcher (size_t (*)(Span, size_t)).
#define SEARCH(expr) [](Span s) { return search(s, [](Span p, size_t i) -> size_t { return expr; }); }

std::vector<Stage> stages(PreType t) {
  const Stage gpt2 = [](Span s) { return split_gpt2(s); };
  const Stage cr_lf = SEARCH(is_cr_lf(p.c[i]) ? 1 : 0);                    // [\r\n]
  switch (t) {
    case PreType::gpt2: return {gpt2};
    case PreType::llama3: return {[](Span s) { return tile(s, [](Span p, size_t i) { return llama3_length(p, i, 3); }); }};
    case PreType::qwen2: return {[](Span s) { return tile(s, [](Span p, size_t i) { return llama3_length(p, i, 1); }); }};
    case PreType::starcoder: return {SEARCH(run(p, i, is_number, 1)), gpt2};  // \p{N}, GPT-2
    case PreType::deepseek_llm:
      return {cr_lf, SEARCH(opt_space_run(p, i, ds_letter)), SEARCH(opt_space_run(p, i, ds_punct)),
              SEARCH(trailing_space(p, i)), SEARCH(run(p, i, ds_cjk)), SEARCH(run(p, i, is_number))};
    case PreType::deepseek_coder:  // [\r\n], \s?\p{L}+, \s?\p{P}+, CJK+, \p{N}
      return {cr_lf, SEARCH(opt_space_run(p, i, is_letter)), SEARCH(opt_space_run(p, i, is_punctuation)),
              SEARCH(run(p, i, ds_cjk)), SEARCH(run(p, i, is_number, 1))};
    case PreType::falcon:  // [\p{P}\$\+<=>\^~\|`]+, GPT-2, [0-9][0-9][0-9]
      return {SEARCH(run(p, i, punct_or_sym_tick)), gpt2, SEARCH(three_digits(p, i))};
    case PreType::default_:  // [\p{P}\$\+<=>\^~\|]+, GPT-2, \p{N}+, [0-9][0-9][0-9]
      return {SEARCH(run(p, i, punct_or_sym)), gpt2, SEARCH(run(p, i, is_number)), SEARCH(three_digits(p, i))};
  }
  return {};
}
#undef SEARCH

}  // namespace

const PreTypeInfo* find_pre_type(std::string_view name) {
  for (const PreTypeInfo& row : kPreTypes)
    for (std::string_view n : row.names)
      if (n == name) return &row;
  return nullptr;
}

std::string supported_pre_types() {
  std::string out;
  for (const PreTypeInfo& row : kPreTypes)
    for (std::string_view n : row.names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::vector<std::string> pre_split(std::string_view text, PreType type) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    Utf8Unit u = next_utf8_unit(text, pos);
    cps.push_back(u.cp);
    pos += u.len;
  }
  Lengths pieces = {cps.size()};
  for (Stage stage : stages(type)) {
    Lengths next;
    size_t start = 0;
    for (size_t n : pieces) {
      for (size_t k : stage(Span{cps.data() + start, n})) next.push_back(k);
      start += n;
    }
    pieces = std::move(next);
  }
  std::vector<std::string> words;
  words.reserve(pieces.size());
  size_t start = 0;
  for (size_t n : pieces) {
    std::string w;
    for (size_t i = start; i < start + n; i++) append_utf8(cps[i], w);
    if (!w.empty()) words.push_back(std::move(w));
    start += n;
  }
  return words;
}

}  // namespace qat
