// The files behind --data: which files of a directory are read (symlinks followed, each file once) and
// the checks that make a file usable text. A directory says how many files it used and why it skipped
// the others; a bad file in a directory is reported and skipped, a bad file given alone is an error.
// Read next: data/corpus.h (how the text becomes documents).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace qat {

struct TextFileList {
  std::vector<std::string> files;            // candidate text files, sorted by path, each file once
  std::map<std::string, int> skipped;        // skipped by rule: reason -> count ("strfile .dat index", ...)
  std::vector<std::string> problems;         // one line per entry that could not be used (a dangling link)
};

// The text files under `dir`. Symlinks are followed (to files and, when recursive, to directories; a
// directory reached twice is read once); a file reached under several names (fortune's `.u8` links) is
// read under the first name in sorted order. Skipped by rule: hidden entries, strfile `.dat` indexes,
// entries that are neither files nor directories (FIFOs, devices), and subdirectories when not recursive.
TextFileList list_text_files(const std::string& dir, bool recursive);

// The text of one input file, checked: not empty, no NUL byte (a binary file), valid UTF-8 (llama.cpp
// replaces invalid bytes, so training on them would break train = serve). Throws a one-line qat::Error
// starting "data: <path>" otherwise, or when the file cannot be read.
std::string read_text_file(const std::string& path);

// "skipped 43 (strfile .dat index), 2 (unusable: see the warnings)", or "" when nothing was skipped.
std::string describe_skipped(const TextFileList& list);
// "12 files used; skipped ..." for the note line.
std::string describe_files(size_t used, const TextFileList& list);

}  // namespace qat
