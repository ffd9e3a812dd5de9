// Encoding large texts on several threads with exactly the tokens of encoding them whole, one document
// at a time. A document longer than a chunk is cut at "safe" line breaks: positions p where text[p-1] is
// '\n', the byte before it is an ASCII non-whitespace character and text[p] starts a non-whitespace unit.
// Why that is safe (data/pretokenize.cpp): no piece crosses the '\n' (letter, number and other runs stop
// at whitespace, the optional leading space is ' ' only, contractions need a letter after the quote),
// the whitespace run that starts at p-1 is the single unit "\n" both in the whole text and at the end of
// the prefix, and pretoken_length never looks back, so the pieces after p are the same.
// Read next: data/dataset.h (which calls encode_documents), data/tokenizer.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/vocab.h"

namespace qat {

// True when encoding text[0, p) and text[p, n) separately gives the tokens of encoding text whole.
bool is_safe_cut(std::string_view text, size_t p);

// text cut into consecutive parts at safe cuts, each part at least chunk_bytes long (except the last)
// unless no safe cut follows; the parts concatenate to text. chunk_bytes > 0.
std::vector<std::string_view> split_at_safe_cuts(std::string_view text, size_t chunk_bytes);

// Encodes `docs` in order (when eot, each between tok.doc_begin() and tok.doc_end(): ours, followed by
// the EOT token), on up to `threads` OpenMP threads
// (0: omp_get_max_threads()), chunk_bytes of text per task. The tokens arrive in order through
// sink(tokens of a group of tasks); a group holds about threads * chunk_bytes of text, so the memory
// for tokens in flight is bounded by that, not by the corpus. The same tokens at any thread count and
// chunk size, equal to encode_append on each document. Documents are cut only when tok.cuts_at_lines().
void encode_documents(const Vocab& tok, const std::vector<std::string_view>& docs, bool eot, size_t chunk_bytes,
                      int threads, const std::function<void(const std::vector<int32_t>&)>& sink);

inline constexpr size_t kEncodeChunkBytes = size_t(1) << 20;  // 1 MiB per task: ~0.1 s of encoding

}  // namespace qat
