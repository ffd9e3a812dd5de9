// UTF-8 reading and the codepoint class lookup: a binary search in the generated range table, with an
// ASCII fast path because nearly all text is ASCII. The reader accepts only shortest-form UTF-8 and
// reports anything else one byte at a time. Read next: data/pretokenize.cpp.
#include "data/unicode.h"

#include <algorithm>
#include <array>

namespace qat {
namespace {

struct CodepointRange {
  uint32_t first, last;  // inclusive
  CharClass cls;
};
constexpr CharClass kLetter = CharClass::letter, kNumber = CharClass::number, kWhitespace = CharClass::whitespace;
#include "data/unicode_tables.inc"
struct PunctRange {
  uint32_t first, last;  // inclusive
};
#include "data/unicode_punct.inc"

CharClass lookup(uint32_t cp) {
  const CodepointRange* end = kCodepointRanges + sizeof(kCodepointRanges) / sizeof(kCodepointRanges[0]);
  // First range whose last >= cp; cp is in it when first <= cp.
  const CodepointRange* r = std::lower_bound(kCodepointRanges, end, cp,
                                             [](const CodepointRange& a, uint32_t v) { return a.last < v; });
  return (r != end && r->first <= cp) ? r->cls : CharClass::other;
}

const std::array<CharClass, 128> kAscii = [] {
  std::array<CharClass, 128> t{};
  for (uint32_t c = 0; c < 128; c++) t[c] = lookup(c);
  return t;
}();

}  // namespace

CharClass char_class(uint32_t cp) { return cp < 128 ? kAscii[cp] : lookup(cp); }

bool is_punctuation(uint32_t cp) {
  const PunctRange* end = kPunctRanges + sizeof(kPunctRanges) / sizeof(kPunctRanges[0]);
  const PunctRange* r = std::lower_bound(kPunctRanges, end, cp, [](const PunctRange& a, uint32_t v) { return a.last < v; });
  return r != end && r->first <= cp;
}

Utf8Unit next_utf8_unit(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  size_t avail = s.size() - pos;
  unsigned char b0 = p[0];
  if (b0 < 0x80) return {b0, 1};
  constexpr Utf8Unit bad{0xFFFD, 1};
  auto cont = [&](size_t i) { return i < avail && (p[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return bad;
    return {uint32_t(b0 & 0x1F) << 6 | (p[1] & 0x3F), 2};
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return bad;
    uint32_t cp = uint32_t(b0 & 0x0F) << 12 | uint32_t(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return bad;  // overlong or surrogate
    return {cp, 3};
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return bad;
    uint32_t cp = uint32_t(b0 & 0x07) << 18 | uint32_t(p[1] & 0x3F) << 12 | uint32_t(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    if (cp < 0x10000 || cp > 0x10FFFF) return bad;
    return {cp, 4};
  }
  return bad;  // continuation byte, C0/C1, F5..FF
}

bool is_valid_utf8(std::string_view s, size_t* bad_offset) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) { i++; continue; }
    Utf8Unit u = next_utf8_unit(s, i);
    if (u.len == 1) {  // a non-ASCII unit of one byte is always an invalid byte
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += u.len;
  }
  return true;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace qat
