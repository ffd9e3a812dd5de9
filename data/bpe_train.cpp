// BPE training: count pre-tokens ("words") once, keep adjacent-pair counts and the words each pair occurs
// in, and after each merge update only the words that held the merged pair. A max-heap of (count, pair)
// with lazy invalidation picks the next pair: a popped entry whose count is out of date is re-pushed
// with the current count. Cost: the words touched by each merge, not a recount of the corpus.
// Read next: data/tokenizer_json.cpp.
#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>

#include "data/pretokenize.h"
#include "data/tokenizer.h"
#include "src/util/error.h"

namespace qat {
namespace {

uint64_t key_of(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

struct Word {
  std::vector<int32_t> ids;  // current tokens of this pre-token
  int64_t freq;              // occurrences in the corpus
};

struct HeapEntry {
  int64_t count;
  uint64_t key;  // key_of(left, right)
  // Max-heap on count; among equal counts the smallest key (left id, then right id) comes first.
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : key > o.key; }
};

struct PairStats {
  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<int32_t>> words;  // words that hold (or held) the pair
  std::priority_queue<HeapEntry> heap;

  // Adds (sign +1) or removes (-1) the pairs of word `wi`. When adding after a merge into token c,
  // pairs that contain c are listed under the word and collected in *grown (their counts rose).
  void add(const Word& w, int32_t wi, int64_t sign, int32_t c = -1, std::vector<uint64_t>* grown = nullptr) {
    for (size_t i = 0; i + 1 < w.ids.size(); i++) {
      uint64_t k = key_of(w.ids[i], w.ids[i + 1]);
      count[k] += sign * w.freq;
      if (sign < 0 || (c >= 0 && w.ids[i] != c && w.ids[i + 1] != c)) continue;
      auto& list = words[k];
      if (list.empty() || list.back() != wi) list.push_back(wi);
      if (grown) grown->push_back(k);
    }
  }
  // The most frequent pair still present, or false when none is left. Counts only fall between pushes
  // (rises are pushed when they happen), so a stale entry is re-queued with its true count.
  bool pop_best(uint64_t* key) {
    while (!heap.empty()) {
      HeapEntry top = heap.top();
      heap.pop();
      auto it = count.find(top.key);
      int64_t current = it == count.end() ? 0 : it->second;
      if (current == top.count && current > 0) {
        *key = top.key;
        return true;
      }
      if (current > 0) heap.push({current, top.key});
    }
    return false;
  }
};

// The word list, sorted by text so that nothing depends on hash-map iteration order.
std::vector<Word> count_words(const std::vector<std::string>& docs) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (const std::string& doc : docs) for_each_pretoken(doc, [&](std::string_view p) { counts[p]++; });
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [text, freq] : sorted) {
    Word w{{}, freq};
    for (char ch : text) w.ids.push_back(static_cast<uint8_t>(ch));
    words.push_back(std::move(w));
  }
  return words;
}

// Every (a, b) in `ids` replaced by c, left to right (so "a a a" with a == b gives "c a").
std::vector<int32_t> merge_pair(const std::vector<int32_t>& ids, int32_t a, int32_t b, int32_t c) {
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    bool hit = i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b;
    out.push_back(hit ? c : ids[i]);
    i += hit;
  }
  return out;
}

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& docs, int vocab_size) {
  QAT_CHECK(vocab_size >= 257 && vocab_size <= (1 << 20), "tokenizer: vocab size must be in [257, 1048576], got ",
            vocab_size);
  std::vector<Word> words = count_words(docs);
  std::vector<std::string> tokens;
  std::map<std::string, int32_t> token_id;  // bytes -> id: a merge can rebuild an existing token
  for (int b = 0; b < 256; b++) {
    tokens.emplace_back(1, char(b));
    token_id[tokens.back()] = b;
  }
  PairStats stats;
  for (int32_t w = 0; w < int32_t(words.size()); w++) stats.add(words[size_t(w)], w, +1);
  for (auto& [k, n] : stats.count) stats.heap.push({n, k});

  std::vector<Merge> merges;
  std::vector<int32_t> visited(words.size(), -1);  // the merge that last rewrote each word
  uint64_t key;
  while (int(tokens.size()) + 1 < vocab_size && stats.pop_best(&key)) {
    const int32_t a = int32_t(key >> 32), b = int32_t(key & 0xFFFFFFFFu);
    auto [it, is_new] = token_id.emplace(tokens[size_t(a)] + tokens[size_t(b)], int32_t(tokens.size()));
    if (is_new) tokens.push_back(it->first);
    const int32_t c = it->second, m = int32_t(merges.size());
    merges.push_back({a, b, c});
    // Rewrite the words that hold (a, b): remove their old pairs, add the new ones. Pairs without c can
    // only lose counts here; pairs with c gain, and are pushed onto the heap below.
    std::vector<int32_t> affected = std::move(stats.words[key]);
    stats.words.erase(key);
    std::vector<uint64_t> grown;
    for (int32_t w : affected) {
      Word& word = words[size_t(w)];
      if (visited[size_t(w)] == m) continue;
      visited[size_t(w)] = m;
      std::vector<int32_t> merged = merge_pair(word.ids, a, b, c);
      if (merged.size() == word.ids.size()) continue;  // listed, but the pair has since gone from it
      stats.add(word, w, -1);
      word.ids.swap(merged);
      stats.add(word, w, +1, c, &grown);
    }
    stats.count.erase(key);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t k : grown) stats.heap.push({stats.count[k], k});
  }
  tokens.emplace_back(kEotText);
  return Tokenizer(std::move(tokens), std::move(merges));
}

}  // namespace qat
