// Reading the corpus: file discovery, the checks that turn bad input into one-line errors, document
// splitting and the hash split. Everything is deterministic: files in sorted order, the split by a hash
// of the text. Read next: data/dataset.cpp.
#include "data/corpus.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "data/unicode.h"
#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {
namespace fs = std::filesystem;
namespace {

// Regular files under `dir`, sorted by path; symlinks (the fortune `.u8` names), hidden entries and
// strfile `.dat` indexes are skipped.
std::vector<std::string> list_files(const std::string& dir, bool recursive) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  QAT_CHECK(!ec, "data: cannot read directory ", dir, ": ", ec.message());
  for (; it != end; it.increment(ec)) {
    QAT_CHECK(!ec, "data: cannot read directory ", dir, ": ", ec.message());
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (name.empty() || name[0] == '.') continue;
    fs::file_status st = it->symlink_status(ec);
    if (ec || fs::is_symlink(st)) continue;
    if (fs::is_directory(st)) {
      if (recursive) {
        std::vector<std::string> sub = list_files(p.string(), true);
        out.insert(out.end(), sub.begin(), sub.end());
      }
      continue;
    }
    if (!fs::is_regular_file(st)) continue;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".dat") == 0) continue;
    out.push_back(p.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The text of one input file, checked: not empty, no NUL byte, valid UTF-8.
std::string read_text_file(const std::string& path) {
  std::string text = read_file(path, uint64_t(1) << 32);
  QAT_CHECK(!text.empty(), "data: ", path, " is empty");
  size_t nul = text.find('\0');
  QAT_CHECK(nul == std::string::npos, "data: ", path, " looks binary (a NUL byte at offset ", nul,
            "); --data takes UTF-8 text files");
  size_t bad = 0;
  QAT_CHECK(is_valid_utf8(text, &bad), "data: ", path, " is not valid UTF-8 (byte offset ", bad,
            "); convert it first, e.g. iconv -f latin1 -t utf-8");
  return text;
}

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos; }

// Ends the document in `cur`: drops trailing newlines, keeps it if it has any non-space character.
void flush(std::string& cur, std::vector<std::string>& docs) {
  while (!cur.empty() && (cur.back() == '\n' || cur.back() == '\r')) cur.pop_back();
  if (cur.find_first_not_of(" \t\n\r\f\v") != std::string::npos) docs.push_back(cur);
  cur.clear();
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

bool is_val_document(const std::string& doc) { return fnv1a64(doc.data(), doc.size()) % 10 == 0; }

std::vector<std::string> split_documents(const std::string& text) {
  // Fortune format when some line is exactly "%" (CRLF tolerated); paragraphs otherwise.
  auto is_sep = [](std::string_view line) { return line == "%" || line == "%\r"; };
  bool fortune = false;
  for (size_t pos = 0; pos < text.size() && !fortune;) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    fortune = is_sep(std::string_view(text).substr(pos, eol - pos));
    pos = eol + 1;
  }
  std::vector<std::string> docs;
  std::string cur;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    size_t next = eol == std::string::npos ? text.size() : eol + 1;
    std::string_view line = std::string_view(text).substr(pos, next - pos);  // with its '\n'
    std::string_view body = line.substr(0, line.size() - (eol == std::string::npos ? 0 : 1));
    if (fortune ? is_sep(body) : blank(body)) flush(cur, docs);
    else cur.append(line);
    pos = next;
  }
  flush(cur, docs);
  return docs;
}

uint64_t Corpus::train_bytes() const {
  uint64_t n = 0;
  for (const std::string& d : train) n += d.size();
  return n;
}

uint64_t Corpus::val_bytes() const {
  uint64_t n = 0;
  for (const std::string& d : val) n += d.size();
  return n;
}

uint64_t Corpus::content_hash() const {
  uint64_t h = fnv1a64("qat-corpus-v1", 13);
  for (const auto* split : {&train, &val}) {
    uint64_t n = split->size();
    h = fnv1a64(&n, sizeof n, h);
    for (const std::string& d : *split) {
      uint64_t len = d.size();
      h = fnv1a64(&len, sizeof len, h);
      h = fnv1a64(d.data(), d.size(), h);
    }
  }
  return h;
}

Corpus load_corpus(const std::string& path_in) {
  const bool is_default = path_in.empty();
  const std::string path = is_default ? std::string(kDefaultCorpusDir) : path_in;
  if (!file_exists(path)) {
    if (is_default)
      fail("data: the default corpus ", path, " is missing; install the fortunes and fortunes-min packages "
           "(tools/install-deps.sh) or pass --data PATH");
    fail("data: ", path, " does not exist");
  }
  std::vector<std::string> files = is_directory(path) ? list_files(path, !is_default) : std::vector<std::string>{path};
  QAT_CHECK(!files.empty(), "data: ", path, " holds no text files");

  Corpus c;
  c.source = path;
  for (const std::string& f : files) {
    std::vector<std::string> docs = split_documents(read_text_file(f));
    QAT_CHECK(!docs.empty(), "data: ", f, " has no documents (only whitespace or % separators)");
    for (std::string& d : docs) (is_val_document(d) ? c.val : c.train).push_back(std::move(d));
  }
  QAT_CHECK(c.docs() >= 2, "data: ", path, " has only one document; separate documents with lines "
            "holding only '%' or with blank lines");
  // A tiny corpus can hash entirely to one side: move one document over (the smallest-hash train
  // document to val, or the largest-hash val document to train) so both splits are usable.
  auto hash = [](const std::string& d) { return fnv1a64(d.data(), d.size()); };
  auto by_hash = [&](const std::string& a, const std::string& b) { return hash(a) < hash(b); };
  if (c.val.empty()) {
    auto it = std::min_element(c.train.begin(), c.train.end(), by_hash);
    c.val.push_back(std::move(*it));
    c.train.erase(it);
  } else if (c.train.empty()) {
    auto it = std::max_element(c.val.begin(), c.val.end(), by_hash);
    c.train.push_back(std::move(*it));
    c.val.erase(it);
  }
  return c;
}

}  // namespace qat
