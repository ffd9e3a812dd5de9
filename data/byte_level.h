// GPT-2's byte-to-unicode map: each of the 256 byte values gets a printable codepoint, so that a token's
// bytes can be written as a JSON / GGUF string with no spaces or control characters. Printable Latin-1
// bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 map, in byte order, to U+0100,
// U+0101, ... (so ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A). llama.cpp's gpt2 vocab reads tokens this way.
// Read next: data/tokenizer.h.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace qat {

// The UTF-8 string of byte b's codepoint.
const std::string& byte_to_unicode(uint8_t b);
// Bytes -> their byte-level string (each byte replaced by its codepoint's UTF-8).
std::string bytes_to_unicode_string(std::string_view bytes);
// The inverse: false when `s` holds a codepoint that is not in the map (or invalid UTF-8).
bool unicode_string_to_bytes(std::string_view s, std::string* bytes);

}  // namespace qat
