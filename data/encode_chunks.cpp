// Parallel, chunked encoding (the argument for the safe cuts is in encode_chunks.h).
// Read next: data/dataset.cpp.
#include "data/encode_chunks.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/unicode.h"
#include "src/util/error.h"

namespace qat {
namespace {

bool ascii_non_space(unsigned char b) { return b < 0x80 && char_class(b) != CharClass::whitespace; }

// A part of a document, and whether the document's begin tokens precede it / its end tokens follow it.
struct Piece {
  std::string_view text;
  bool first, last;
};

}  // namespace

bool is_safe_cut(std::string_view text, size_t p) {
  if (p < 2 || p >= text.size() || text[p - 1] != '\n') return false;
  if (!ascii_non_space(static_cast<unsigned char>(text[p - 2]))) return false;
  return char_class(next_utf8_unit(text, p).cp) != CharClass::whitespace;
}

std::vector<std::string_view> split_at_safe_cuts(std::string_view text, size_t chunk_bytes) {
  QAT_CHECK(chunk_bytes > 0, "split_at_safe_cuts: chunk_bytes must be positive");
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (text.size() - start > chunk_bytes) {
    size_t p = start + chunk_bytes;
    while (p < text.size() && !is_safe_cut(text, p)) {  // on to the next line start
      const size_t nl = text.find('\n', p);
      p = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    if (p >= text.size()) break;
    parts.push_back(text.substr(start, p - start));
    start = p;
  }
  parts.push_back(text.substr(start));
  return parts;
}

void encode_documents(const Vocab& tok, const std::vector<std::string_view>& docs, bool eot, size_t chunk_bytes,
                      int threads, const std::function<void(const std::vector<int32_t>&)>& sink) {
  const std::vector<int32_t> begin = eot ? tok.doc_begin() : std::vector<int32_t>{};  // ours: none
  const std::vector<int32_t> end = eot ? tok.doc_end() : std::vector<int32_t>{};      // ours: EOT
#ifdef _OPENMP
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  std::vector<EncodeCache> caches(static_cast<size_t>(threads));  // one per thread, kept across groups
  std::vector<Piece> group;                          // the pieces of text of this group, in order
  std::vector<size_t> task_start{0};                 // task t encodes group[task_start[t], task_start[t+1])
  size_t task_bytes = 0, group_bytes = 0;
  std::vector<std::vector<int32_t>> out;  // (tasks) tokens of each task
  auto flush = [&] {
    if (task_start.back() != group.size()) task_start.push_back(group.size());
    const int n_tasks = int(task_start.size()) - 1;
    out.assign(size_t(n_tasks), {});
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int t = 0; t < n_tasks; t++) {
#ifdef _OPENMP
      EncodeCache* cache = &caches[size_t(omp_get_thread_num())];
#else
      EncodeCache* cache = &caches[0];
#endif
      for (size_t i = task_start[size_t(t)]; i < task_start[size_t(t) + 1]; i++) {
        std::vector<int32_t>& ids = out[size_t(t)];
        if (group[i].first) ids.insert(ids.end(), begin.begin(), begin.end());
        tok.encode_append(group[i].text, ids, cache);
        if (group[i].last) ids.insert(ids.end(), end.begin(), end.end());
      }
    }
    for (const auto& ids : out) sink(ids);
    group.clear();
    task_start.assign(1, 0);
    task_bytes = group_bytes = 0;
  };
  // Small documents share a task (a task per fortune would cost more than it encodes); a task closes at
  // chunk_bytes, a group at threads * chunk_bytes.
  for (std::string_view doc : docs) {
    const std::vector<std::string_view> parts =
        tok.cuts_at_lines() ? split_at_safe_cuts(doc, chunk_bytes) : std::vector<std::string_view>{doc};
    for (size_t j = 0; j < parts.size(); j++) {
      group.push_back({parts[j], j == 0, j + 1 == parts.size()});
      task_bytes += parts[j].size();
      group_bytes += parts[j].size();
      if (task_bytes >= chunk_bytes) {
        task_start.push_back(group.size());
        task_bytes = 0;
      }
      if (group_bytes >= size_t(threads) * chunk_bytes) flush();
    }
  }
  if (!group.empty()) flush();
}

}  // namespace qat
