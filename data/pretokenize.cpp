// The GPT-2 splitter, one alternative of the regex at a time, in the regex's order. The codepoint classes
// come from data/unicode.h. Two details decide agreement with llama.cpp:
//  - an invalid UTF-8 byte is one unit of class "other" (llama.cpp reads it as U+FFFD, a symbol);
//  - \s+(?!\S): a whitespace run of 2+ units followed by a non-space leaves its last unit to the next
//    piece (so "a   b" -> "a", "  ", " b"); at the end of the text the whole run is one piece.
// Read next: data/tokenizer.cpp.
#include "data/pretokenize.h"

#include "data/unicode.h"

namespace qat {
namespace {

struct Unit {
  CharClass cls;
  size_t len;
};

Unit unit_at(std::string_view s, size_t pos) {
  unsigned char b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return {char_class(b), 1};
  Utf8Unit u = next_utf8_unit(s, pos);
  return {char_class(u.cp), u.len};
}

// End of the run of units of class `cls` that starts at pos.
size_t run_end(std::string_view s, size_t pos, CharClass cls) {
  while (pos < s.size()) {
    Unit u = unit_at(s, pos);
    if (u.cls != cls) break;
    pos += u.len;
  }
  return pos;
}

// 's 't 're 've 'm 'll 'd (lowercase only, as in GPT-2): the length matched at pos, or 0.
size_t contraction_length(std::string_view s, size_t pos) {
  if (s[pos] != '\'' || pos + 1 >= s.size()) return 0;
  char c1 = s[pos + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= s.size()) return 0;
  char c2 = s[pos + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

}  // namespace

size_t pretoken_length(std::string_view s, size_t pos) {
  if (size_t n = contraction_length(s, pos)) return n;
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional leading space, then a run of one class.
  size_t body = (s[pos] == ' ' && pos + 1 < s.size()) ? pos + 1 : pos;
  CharClass cls = (s[pos] == ' ' && pos + 1 >= s.size()) ? CharClass::whitespace : unit_at(s, body).cls;
  if (cls != CharClass::whitespace) return run_end(s, body, cls) - pos;
  // "\s+(?!\S)|\s+": the whitespace run from pos, minus its last unit when a non-space follows.
  size_t end = pos, last = pos, units = 0;
  while (end < s.size()) {
    Unit u = unit_at(s, end);
    if (u.cls != CharClass::whitespace) break;
    last = end;
    end += u.len;
    units++;
  }
  if (units > 1 && end < s.size()) return last - pos;
  return end - pos;
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  for_each_pretoken(text, [&](std::string_view piece) { out.push_back(piece); });
  return out;
}

}  // namespace qat
