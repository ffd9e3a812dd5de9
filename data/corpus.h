// The training text: read from the default fortune corpus or from --data PATH, either as documents
// (split into train and val by a hash of each document's text: deterministic, independent of file order)
// or as one stream (split by position: the last ~10% is val, as nanoGPT does).
// Read next: data/text_files.h (which files are read), data/tokenizer.h (how text becomes tokens),
// data/dataset.h (the token arrays).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text_files.h"

namespace qat {

// Where the default corpus lives: Debian's `fortunes` and `fortunes-min` packages.
inline constexpr const char* kDefaultCorpusDir = "/usr/share/games/fortunes";

// How text becomes documents (--documents).
//  - none: no documents; the text is one stream (a directory's files joined in sorted order), split by
//    position, and trained without end-of-text tokens.
//  - percent: documents end at lines holding only "%" (the fortune format); a file without such lines
//    is one document.
//  - blank_line: documents end at blank lines, except in a file that has "%" lines, which is split there
//    (a fortune's own blank lines are inside it). This was the only rule before --documents existed, and
//    is what a checkpoint that records no mode was trained with.
//  - detect (the default): a file is percent when it has a "%" line, else none (a book's paragraphs are
//    not documents); a directory is percent (one document per file or per "%"-separated chunk).
enum class DocMode { detect, none, percent, blank_line };
DocMode parse_doc_mode(const std::string& name);  // "", "auto", "none", "percent", "blank-line"; else UsageError
const char* doc_mode_name(DocMode m);              // the inverse ("auto" for detect)

struct Corpus {
  std::vector<std::string> train, val;  // documents (UTF-8, never empty); a stream: one part each
  std::string source;                   // the path read, for messages and metadata
  DocMode mode = DocMode::percent;      // as resolved: never detect
  std::string why;                      // why this mode, for the note line ("--documents none", ...)
  TextFileList files;                   // a directory's files: used, skipped by rule, unusable

  bool stream() const { return mode == DocMode::none; }
  uint64_t train_bytes() const;
  uint64_t val_bytes() const;
  size_t docs() const { return train.size() + val.size(); }
  // FNV-1a 64 of every document, in order, length-prefixed, and of the stream mode: changes when any
  // text or the split does.
  uint64_t content_hash() const;
  // One line: the source, the mode and why, the files used and skipped, the split, e.g.
  // "data: notes.txt: one stream of 1.2 MB (no '%' separator lines; ...), val = the last 10% by position".
  std::string describe() const;
};

// Reads `path` (empty: kDefaultCorpusDir) into documents or a stream, as `mode` says.
//  - A directory: every text file in it (text_files.h); subdirectories too, except for the default
//    corpus (whose `off/` subdirectory, from the fortunes-off package, is deliberately left out). A file
//    that cannot be used (unreadable, empty, binary, not UTF-8, no text) is listed in files.problems and
//    skipped; when none is usable the directory is refused.
//  - A file: read whole; a bad one is refused.
// In the document modes each document loses its trailing newlines and empty or whitespace-only ones are
// dropped; a stream is kept byte for byte.
// Throws a one-line qat::Error naming the path for: missing, nothing usable, or fewer than 2 documents.
// When the hash puts every document on one side (tiny corpora), one document is moved over so that
// train and val are both non-empty.
Corpus load_corpus(const std::string& path, DocMode mode = DocMode::detect);

// Splits one file's text into documents (mode percent or blank_line; exposed for tests). The one-argument
// form is blank_line.
std::vector<std::string> split_documents(const std::string& text, DocMode mode = DocMode::blank_line);

// Where a stream is cut: the last ~10% of the bytes is val. The cut is at a line start when one lies
// within 2% after the 90% mark, else at the first UTF-8 character boundary from it.
size_t stream_cut(const std::string& text);

// True for documents that go to val: FNV-1a 64 of the text, modulo 10, is 0 (about 10%).
bool is_val_document(const std::string& doc);

uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 1469598103934665603ull);

}  // namespace qat
