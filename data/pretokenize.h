// GPT-2 pre-tokenization: splits text into the pieces that BPE merges never cross, as llama.cpp does for
// tokenizer.ggml.pre = "gpt-2" (its unicode_regex_split_custom_gpt2). The regex it implements, by hand:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The pieces tile the input exactly (no byte lost or reordered), invalid UTF-8 included.
// Read next: data/tokenizer.h.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace qat {

// Calls f(piece) for each piece of `text`, in order; the pieces concatenate to `text`.
template <class F>
void for_each_pretoken(std::string_view text, F&& f);

// The same pieces as a vector (tests, small inputs).
std::vector<std::string_view> pretokenize(std::string_view text);

// Byte length of the piece that starts at `pos` (pos < text.size()); the engine behind both.
size_t pretoken_length(std::string_view text, size_t pos);

template <class F>
void for_each_pretoken(std::string_view text, F&& f) {
  for (size_t pos = 0; pos < text.size();) {
    size_t n = pretoken_length(text, pos);
    f(text.substr(pos, n));
    pos += n;
  }
}

}  // namespace qat
