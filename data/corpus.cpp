// Reading the corpus: the document modes, document splitting, the hash split and the stream split.
// Everything is deterministic: files in sorted order (text_files.cpp), the document split by a hash of
// the text, the stream split by position. Read next: data/dataset.cpp.
#include "data/corpus.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {
namespace {

// A fortune separator: a line that is exactly "%" (CRLF tolerated).
bool is_sep(std::string_view line) { return line == "%" || line == "%\r"; }

bool has_percent_lines(const std::string& text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    if (is_sep(std::string_view(text).substr(pos, eol - pos))) return true;
    pos = eol + 1;
  }
  return false;
}

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos; }
bool has_text(const std::string& s) { return s.find_first_not_of(" \t\n\r\f\v") != std::string::npos; }

// Ends the document in `cur`: drops trailing newlines, keeps it if it has any non-space character.
void flush(std::string& cur, std::vector<std::string>& docs) {
  while (!cur.empty() && (cur.back() == '\n' || cur.back() == '\r')) cur.pop_back();
  if (has_text(cur)) docs.push_back(cur);
  cur.clear();
}

// "950 bytes", "12.3 kB", "1.2 MB" (decimal units).
std::string fmt_bytes(uint64_t n) {
  char b[32];
  if (n < 1000) std::snprintf(b, sizeof b, "%llu bytes", (unsigned long long)n);
  else if (n < 1000000) std::snprintf(b, sizeof b, "%.1f kB", double(n) / 1e3);
  else if (n < 1000000000) std::snprintf(b, sizeof b, "%.1f MB", double(n) / 1e6);
  else std::snprintf(b, sizeof b, "%.2f GB", double(n) / 1e9);
  return b;
}

// One file's documents into the hash split; returns how many it gave.
size_t add_documents(Corpus& c, const std::string& text) {
  std::vector<std::string> docs = split_documents(text, c.mode);
  for (std::string& d : docs) (is_val_document(d) ? c.val : c.train).push_back(std::move(d));
  return docs.size();
}

// At least two documents, and both splits non-empty: a tiny corpus can hash entirely to one side, so
// one document is moved over (the smallest-hash train document to val, or the largest-hash val document
// to train).
void finish_documents(Corpus& c) {
  QAT_CHECK(c.docs() >= 2, "data: ", c.source, " has only one document; separate documents with lines holding "
            "only '%' (--documents percent) or with blank lines (--documents blank-line), or train on it as one "
            "stream (--documents none)");
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
}

// The stream split: train is the text before stream_cut, val the rest.
void make_stream(Corpus& c, std::string text) {
  QAT_CHECK(has_text(text), "data: ", c.source, " has no text (only whitespace)");
  QAT_CHECK(text.size() >= 2, "data: ", c.source, " holds ", text.size(), " byte: too short to split into train and val");
  const size_t cut = stream_cut(text);
  c.val = {text.substr(cut)};
  text.resize(cut);
  c.train = {std::move(text)};
}

// One file given as --data: a bad file is an error.
Corpus load_file(Corpus c, DocMode mode) {
  std::string text = read_text_file(c.source);
  if (mode == DocMode::detect) {
    c.mode = has_percent_lines(text) ? DocMode::percent : DocMode::none;
    c.why = c.mode == DocMode::percent ? "lines holding only '%' separate documents, the fortune format"
                                       : "no '%' separator lines; --documents blank-line or percent to split it";
  } else {
    c.mode = mode;
    c.why = str("--documents ", doc_mode_name(mode));
  }
  if (c.stream()) {
    make_stream(c, std::move(text));
    return c;
  }
  QAT_CHECK(add_documents(c, text) > 0, "data: ", c.source, " has no documents (only whitespace or % separators)");
  finish_documents(c);
  return c;
}

// A directory: every usable file; a bad one is reported in c.files.problems and skipped.
Corpus load_directory(Corpus c, DocMode mode, bool recursive) {
  c.files = list_text_files(c.source, recursive);
  const std::string skipped = describe_skipped(c.files);
  QAT_CHECK(!c.files.files.empty(), "data: ", c.source, " holds no text files", skipped.empty() ? "" : " (",
            skipped, skipped.empty() ? "" : ")");
  c.mode = mode == DocMode::detect ? DocMode::percent : mode;
  c.why = mode == DocMode::detect ? "one per file, or per '%'-separated chunk of a fortune-format file"
                                  : str("--documents ", doc_mode_name(mode));
  std::vector<std::string> used;
  std::string stream;  // mode none: the files joined, each ending in a newline
  for (const std::string& f : c.files.files) {
    std::string text;
    try {
      text = read_text_file(f);
    } catch (const Error& e) {
      c.files.problems.push_back(str(e.what(), "; skipped"));
      continue;
    }
    if (!has_text(text) || (!c.stream() && add_documents(c, text) == 0)) {
      c.files.problems.push_back(str("data: ", f, " has no text (only whitespace or % separators); skipped"));
      continue;
    }
    if (c.stream()) stream += text.back() == '\n' ? text : text + "\n";
    used.push_back(f);
  }
  QAT_CHECK(!used.empty(), "data: ", c.source, " has no usable text file (", describe_skipped(c.files), "); the first: ",
            c.files.problems.front());
  c.files.files = std::move(used);
  if (c.stream()) make_stream(c, std::move(stream));
  else finish_documents(c);
  return c;
}

}  // namespace

DocMode parse_doc_mode(const std::string& name) {
  if (name.empty() || name == "auto") return DocMode::detect;
  if (name == "none") return DocMode::none;
  if (name == "percent") return DocMode::percent;
  if (name == "blank-line") return DocMode::blank_line;
  throw UsageError(str("--documents: expected auto, blank-line, percent or none, got '", name, "'"));
}

const char* doc_mode_name(DocMode m) {
  switch (m) {
    case DocMode::detect: return "auto";
    case DocMode::none: return "none";
    case DocMode::percent: return "percent";
    case DocMode::blank_line: return "blank-line";
  }
  return "?";
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

bool is_val_document(const std::string& doc) { return fnv1a64(doc.data(), doc.size()) % 10 == 0; }

std::vector<std::string> split_documents(const std::string& text, DocMode mode) {
  QAT_CHECK(mode == DocMode::percent || mode == DocMode::blank_line, "split_documents: --documents ",
            doc_mode_name(mode), " does not split text into documents");
  // "%" lines split a file that has them in both modes; blank lines only in blank_line mode.
  const bool fortune = has_percent_lines(text);
  const bool at_blank = !fortune && mode == DocMode::blank_line;
  std::vector<std::string> docs;
  std::string cur;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    size_t next = eol == std::string::npos ? text.size() : eol + 1;
    std::string_view line = std::string_view(text).substr(pos, next - pos);  // with its '\n'
    std::string_view body = line.substr(0, line.size() - (eol == std::string::npos ? 0 : 1));
    if (fortune ? is_sep(body) : at_blank && blank(body)) flush(cur, docs);
    else cur.append(line);
    pos = next;
  }
  flush(cur, docs);
  return docs;
}

size_t stream_cut(const std::string& t) {
  const size_t n = t.size();
  if (n < 2) return n;
  const size_t mark = std::min(n - n / 10, n - 1);  // the last ~10% (at least one byte) is val
  const size_t nl = t.find('\n', mark - 1);          // a line that starts at or after the mark
  if (nl != std::string::npos && nl + 1 < n && nl + 1 <= mark + n / 50) return nl + 1;
  auto continuation = [&](size_t i) { return (static_cast<unsigned char>(t[i]) & 0xC0) == 0x80; };
  size_t cut = mark;
  while (cut < n - 1 && continuation(cut)) cut++;
  while (cut > 1 && continuation(cut)) cut--;
  return cut;
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
  // A stream is tokenized without end-of-text tokens: the same two texts as documents must not share
  // its hash (the token cache is keyed by it). The document modes keep the hash they always had.
  uint64_t h = stream() ? fnv1a64("qat-corpus-v1 stream", 20) : fnv1a64("qat-corpus-v1", 13);
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

std::string Corpus::describe() const {
  std::string s = str("data: ", source, ": ");
  if (stream())
    s += str("one stream of ", fmt_bytes(train_bytes() + val_bytes()), " (", why, "), val = the last ",
             fmt_bytes(val_bytes()), " (~10% by position)");
  else
    s += str(docs(), " documents (", why, "), val = ", val.size(), " of them (~10% by a hash of their text)");
  if (!files.files.empty()) s += "; " + describe_files(files.files.size(), files);
  return s;
}

Corpus load_corpus(const std::string& path_in, DocMode mode) {
  const bool is_default = path_in.empty();
  const std::string path = is_default ? std::string(kDefaultCorpusDir) : path_in;
  if (!file_exists(path)) {
    if (is_default)
      fail("data: the default corpus ", path, " is missing; install the fortunes and fortunes-min packages "
           "(tools/install-deps.sh) or pass --data PATH");
    fail("data: ", path, " does not exist");
  }
  Corpus c;
  c.source = path;
  return is_directory(path) ? load_directory(std::move(c), mode, !is_default) : load_file(std::move(c), mode);
}

}  // namespace qat
