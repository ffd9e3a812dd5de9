// Listing and checking --data's files (see text_files.h). Deterministic: entries are sorted by path
// before duplicates are dropped, so the name kept for a file does not depend on directory order.
#include "data/text_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <utility>

#include "data/unicode.h"
#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {
namespace fs = std::filesystem;
namespace {

using FileId = std::pair<uint64_t, uint64_t>;  // (device, inode): one file under any of its names

struct Walk {
  bool recursive;
  std::set<FileId> dirs_seen;                        // a symlink loop reaches a directory twice
  std::vector<std::pair<std::string, FileId>> found;  // (path, id) of every regular file reached
  TextFileList* out;
};

bool ends_with(const std::string& s, const char* tail) {
  const size_t n = std::char_traits<char>::length(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

void walk(const std::string& dir, Walk& w) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  QAT_CHECK(!ec, "data: cannot read directory ", dir, ": ", ec.message());
  for (; it != end; it.increment(ec)) {
    QAT_CHECK(!ec, "data: cannot read directory ", dir, ": ", ec.message());
    const std::string path = it->path().string();
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') {
      w.out->skipped["hidden"]++;
      continue;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {  // follows links: a dangling one fails here
      w.out->problems.push_back(str("data: ", path, ": ", fs::is_symlink(it->symlink_status(ec))
                                                             ? "a symlink to nothing" : "cannot stat", "; skipped"));
      continue;
    }
    const FileId id{uint64_t(st.st_dev), uint64_t(st.st_ino)};
    if (S_ISDIR(st.st_mode)) {
      if (!w.recursive) w.out->skipped["subdirectory"]++;
      else if (w.dirs_seen.insert(id).second) walk(path, w);
      else w.out->skipped["directory reached twice"]++;
    } else if (!S_ISREG(st.st_mode)) {
      w.out->skipped["not a regular file"]++;
    } else if (ends_with(name, ".dat")) {
      w.out->skipped["strfile .dat index"]++;
    } else {
      w.found.emplace_back(path, id);
    }
  }
}

}  // namespace

TextFileList list_text_files(const std::string& dir, bool recursive) {
  TextFileList out;
  Walk w{recursive, {}, {}, &out};
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) w.dirs_seen.insert({uint64_t(st.st_dev), uint64_t(st.st_ino)});
  walk(dir, w);
  std::sort(w.found.begin(), w.found.end());
  std::set<FileId> files_seen;
  for (const auto& [path, id] : w.found) {
    if (files_seen.insert(id).second) out.files.push_back(path);
    else out.skipped["another name of a file already read"]++;
  }
  return out;
}

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

std::string describe_skipped(const TextFileList& list) {
  std::string s, sep = "skipped ";
  for (const auto& [reason, n] : list.skipped) {
    s += str(sep, n, " (", reason, ")");
    sep = ", ";
  }
  if (!list.problems.empty()) s += str(sep, list.problems.size(), " (unusable: see the warnings)");
  return s;
}

std::string describe_files(size_t used, const TextFileList& list) {
  const std::string skipped = describe_skipped(list);
  return str(used, used == 1 ? " file used" : " files used", skipped.empty() ? "" : "; ", skipped);
}

}  // namespace qat
