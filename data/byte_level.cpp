// The byte <-> codepoint tables of GPT-2's bytes_to_unicode(), built once on first use: 256 UTF-8
// strings one way, a codepoint -> byte map the other (used when loading tokenizer.json).
// Read next: data/tokenizer.cpp.
#include "data/byte_level.h"

#include <array>
#include <unordered_map>

#include "data/unicode.h"

namespace qat {
namespace {

struct Tables {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, uint8_t> from_cp;
  Tables() {
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
      uint32_t cp = printable(b) ? uint32_t(b) : next++;
      append_utf8(cp, to_unicode[b]);
      from_cp[cp] = uint8_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return tables().to_unicode[b]; }

std::string bytes_to_unicode_string(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_unicode(static_cast<uint8_t>(c));
  return out;
}

bool unicode_string_to_bytes(std::string_view s, std::string* bytes) {
  const auto& from = tables().from_cp;
  bytes->clear();
  for (size_t i = 0; i < s.size();) {
    Utf8Unit u = next_utf8_unit(s, i);
    if (u.len == 1 && static_cast<unsigned char>(s[i]) >= 0x80) return false;  // invalid UTF-8
    auto it = from.find(u.cp);
    if (it == from.end()) return false;
    *bytes += char(it->second);
    i += u.len;
  }
  return true;
}

}  // namespace qat
