// Tokenized train/val data: each document's tokens followed by the EOT token (a pretrained model's
// vocabulary: [BOS] tokens EOS, data/vocab.h), concatenated (a stream's parts: their tokens only), plus the
// byte counts that bits-per-byte needs; cached on disk so a second run does not re-tokenize.
// bpb = (mean loss in nats per predicted token) * tokens / (bytes * ln 2), where `bytes` counts the
// UTF-8 bytes of the documents only (the EOT separators add tokens but no bytes), so bpb compares
// across tokenizers. Read next: data/corpus.h, data/tokenizer.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/token_array.h"
#include "data/vocab.h"

namespace qat {

struct TokenizedSplit {
  TokenArray tokens;  // (N) doc0 tokens, EOT, doc1 tokens, EOT, ... (a stream: its tokens)
  uint64_t bytes = 0;           // UTF-8 bytes of the documents (EOT excluded)
  uint64_t docs = 0;
};

struct TokenizedData {
  TokenizedSplit train, val;
  bool from_cache = false;  // true when read from the cache file, false when tokenized now
  std::string cache_path;   // the cache file used (empty when caching was off)
  std::string cache_problem;  // why an existing cache file was not used ("" when none was rejected)
};

// eot = false for a stream (Corpus::stream()): its two parts are pieces of one text, not documents.
TokenizedSplit tokenize_split(const std::vector<std::string>& docs, const Vocab& tok, bool eot = true);

// Tokenizes `corpus` with `tok`, or reads the result from `cache_dir` (created if needed; empty = no
// cache). With a cache, the tokens are encoded in parallel straight into the cache file (memory: a few
// MB per thread, data/encode_chunks.h), and the returned arrays are views into the mapped file; without
// one (or when it cannot be written) they are vectors in memory. The file is keyed by (corpus.content_hash(), tok.fingerprint()) and validated on read (magic,
// version, both hashes, counts against the file size, checksum, every id < vocab size); a bad or stale
// file is re-tokenized and rewritten, with a one-line warning on stderr, never trusted. A cache that
// cannot be written (read-only or bad directory) is a warning too: the data is still returned. Temp
// files of runs killed while writing the cache are removed (remove_stale_temp_files).
TokenizedData load_or_tokenize(const Corpus& corpus, const Vocab& tok, const std::string& cache_dir);

// The cache file for (corpus, tok) in cache_dir (exposed for tests).
std::string token_cache_path(const Corpus& corpus, const Vocab& tok, const std::string& cache_dir);

}  // namespace qat
