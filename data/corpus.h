// The training text: documents read from the default fortune corpus or from --data PATH, split into
// train and val by a hash of each document's text (deterministic, independent of file order).
// Read next: data/tokenizer.h (how documents become tokens), data/dataset.h (the token arrays).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qat {

// Where the default corpus lives: Debian's `fortunes` and `fortunes-min` packages.
inline constexpr const char* kDefaultCorpusDir = "/usr/share/games/fortunes";

struct Corpus {
  std::vector<std::string> train, val;  // documents (UTF-8, no trailing newline, never empty)
  std::string source;                   // the path read, for messages and metadata

  uint64_t train_bytes() const;
  uint64_t val_bytes() const;
  size_t docs() const { return train.size() + val.size(); }
  // FNV-1a 64 of every document, in order, length-prefixed: changes when any text or the split does.
  uint64_t content_hash() const;
};

// Reads `path` (empty: kDefaultCorpusDir) into documents and splits them.
//  - A directory: every regular file in it (not symlinks, not hidden files, not strfile `.dat` indexes),
//    in sorted order; subdirectories too, except for the default corpus (whose `off/` subdirectory,
//    from the fortunes-off package, is deliberately left out).
//  - A file with lines holding only "%" (fortune format): one document per %-separated chunk.
//  - Any other file: one document per paragraph (chunks separated by blank lines).
// Each document loses its trailing newlines; documents that are empty or only whitespace are dropped.
// Throws a one-line qat::Error naming the file for: missing, unreadable, empty, binary (a NUL byte),
// not UTF-8, or fewer than 2 documents in all. When the hash puts every document on one side (tiny
// corpora), one document is moved over so that train and val are both non-empty.
Corpus load_corpus(const std::string& path);

// Splits one file's text into documents by the rules above (exposed for tests).
std::vector<std::string> split_documents(const std::string& text);

// True for documents that go to val: FNV-1a 64 of the text, modulo 10, is 0 (about 10%).
bool is_val_document(const std::string& doc);

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ull);

}  // namespace qat
