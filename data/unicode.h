// The Unicode facts the GPT-2 pre-tokenizer needs: a permissive-but-lossless UTF-8 reader and each
// codepoint's class (letter \p{L}, number \p{N}, whitespace \s, other), from the pinned Unicode 15.1 table
// in data/unicode_tables.inc (the same classes as llama.cpp's src/unicode-data.cpp; regenerate with
// tools/gen_unicode_tables.py). Read next: data/pretokenize.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qat {

enum class CharClass : uint8_t { other = 0, letter = 1, number = 2, whitespace = 3 };

// Class of one codepoint; codepoints outside [0, 0x10FFFF] are "other".
CharClass char_class(uint32_t cp);
// \p{P} (Unicode punctuation, data/unicode_punct.inc): a subset of "other", used only by the
// pre-tokenizers of imported vocabularies (data/pre_split.cpp).
bool is_punctuation(uint32_t cp);

// One unit of text at byte `pos` (pos < s.size()): a well-formed UTF-8 sequence (shortest form, no
// surrogates, <= U+10FFFF) of 1-4 bytes, or a single invalid byte. An invalid byte reads as U+FFFD,
// class "other", exactly as llama.cpp reads it; keeping its length at 1 keeps every byte.
struct Utf8Unit {
  uint32_t cp;   // the codepoint, or 0xFFFD for an invalid byte
  uint32_t len;  // bytes consumed: 1..4
};
Utf8Unit next_utf8_unit(std::string_view s, size_t pos);

// True when s is entirely well-formed UTF-8; on false, *bad_offset (if given) is the first bad byte.
bool is_valid_utf8(std::string_view s, size_t* bad_offset = nullptr);

// Appends the UTF-8 encoding of cp (cp <= 0x10FFFF) to out.
void append_utf8(uint32_t cp, std::string& out);

}  // namespace qat
