// Small helpers shared by the file-format readers (safetensors.cpp, gguf.cpp): overflow-checked u64
// arithmetic, UTF-8 validation, and quoting untrusted names so that an error stays one short line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace qat::fmt {

// a + b and a * b, false on u64 overflow.
inline bool add_u64(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }
inline bool mul_u64(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Rounds x up to a multiple of `align` (a power of two); false on overflow.
inline bool align_up(uint64_t x, uint64_t align, uint64_t* out) {
  if (!add_u64(x, align - 1, out)) return false;
  *out &= ~(align - 1);
  return true;
}

// Index of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF), or npos when all of `s` is valid.
inline size_t utf8_error_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) { len = 3; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return i;
    if (n - i < len) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return i;
    i += len;
  }
  return std::string_view::npos;
}

// 'name' in single quotes with control bytes escaped (\n, \xNN) and at most 80 bytes shown.
inline std::string quote(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  size_t shown = s.size() > 80 ? 80 : s.size();
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\'";
    else if (c < 0x20 || c == 0x7f) { out += "\\x"; out += hex[c >> 4]; out += hex[c & 15]; }
    else out += char(c);
  }
  if (shown < s.size()) out += "...";
  out += "'";
  return out;
}

}  // namespace qat::fmt
