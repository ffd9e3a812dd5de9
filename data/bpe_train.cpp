// BPE training: count pre-tokens ("words") once, keep adjacent-pair counts and the words each pair occurs
// in, and after each merge update only the words that held the merged pair. A max-heap of (count, pair)
// with lazy invalidation picks the next pair: a popped entry whose count is out of date is re-pushed
// with the current count. O(total merge work), not O(merges x corpus).
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

struct Word {
  std::vector<int32_t> ids;
  int64_t freq;
};

struct HeapEntry {
  int64_t count;
  uint64_t key;  // left id << 32 | right id
  // Max-heap on count; among equal counts the smallest key (left id, then right id) comes first.
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : key > o.key; }
};

uint64_t key_of(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

// The word list, sorted by text so that training order never depends on hash-map iteration.
std::vector<Word> count_words(const std::vector<std::string>& docs) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (const std::string& doc : docs) for_each_pretoken(doc, [&](std::string_view p) { counts[p]++; });
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [text, freq] : sorted) {
    Word w{{}, freq};
    for (char c : text) w.ids.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& docs, int vocab_size) {
  QAT_CHECK(vocab_size >= 257 && vocab_size <= (1 << 20), "tokenizer: vocab size must be in [257, 1048576], got ",
            vocab_size);
  std::vector<Word> words = count_words(docs);

  std::vector<std::string> tokens(256);
  std::map<std::string, int32_t> token_id;  // bytes -> id, to detect a merge that rebuilds an existing token
  for (int b = 0; b < 256; b++) tokens[size_t(b)] = std::string(1, char(b)), token_id[tokens[size_t(b)]] = b;

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // words that (may) hold the pair
  for (int32_t w = 0; w < int32_t(words.size()); w++) {
    const auto& ids = words[size_t(w)].ids;
    for (size_t i = 0; i + 1 < ids.size(); i++) {
      uint64_t k = key_of(ids[i], ids[i + 1]);
      pair_count[k] += words[size_t(w)].freq;
      auto& list = pair_words[k];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<Merge> merges;
  std::vector<int32_t> seen(words.size(), -1);  // merge index that last visited each word
  std::vector<int32_t> merged;
  while (int(tokens.size()) + 1 < vocab_size && !heap.empty()) {
    HeapEntry top = heap.top();
    heap.pop();
    auto cit = pair_count.find(top.key);
    int64_t current = cit == pair_count.end() ? 0 : cit->second;
    if (current != top.count) {  // stale: counts only drop between pushes, so re-queue the true count
      if (current > 0) heap.push({current, top.key});
      continue;
    }
    const int32_t a = int32_t(top.key >> 32), b = int32_t(top.key & 0xFFFFFFFFu);
    std::string bytes = tokens[size_t(a)] + tokens[size_t(b)];
    auto [tit, is_new] = token_id.emplace(bytes, int32_t(tokens.size()));
    if (is_new) tokens.push_back(bytes);
    const int32_t c = tit->second, merge_index = int32_t(merges.size());
    merges.push_back({a, b, c});

    std::vector<int32_t> affected = std::move(pair_words[top.key]);
    pair_words.erase(top.key);
    std::vector<uint64_t> grown;  // pairs with the new token: their counts only rise in this merge
    for (int32_t w : affected) {
      if (seen[size_t(w)] == merge_index) continue;
      seen[size_t(w)] = merge_index;
      Word& word = words[size_t(w)];
      merged.clear();
      for (size_t i = 0; i < word.ids.size(); i++) {
        if (i + 1 < word.ids.size() && word.ids[i] == a && word.ids[i + 1] == b) {
          merged.push_back(c);
          i++;
        } else {
          merged.push_back(word.ids[i]);
        }
      }
      if (merged.size() == word.ids.size()) continue;  // listed, but the pair is gone from this word
      for (size_t i = 0; i + 1 < word.ids.size(); i++) pair_count[key_of(word.ids[i], word.ids[i + 1])] -= word.freq;
      for (size_t i = 0; i + 1 < merged.size(); i++) {
        uint64_t k = key_of(merged[i], merged[i + 1]);
        pair_count[k] += word.freq;
        if (merged[i] == c || merged[i + 1] == c) {
          auto& list = pair_words[k];
          if (list.empty() || list.back() != w) list.push_back(w);
          grown.push_back(k);
        }
      }
      word.ids.swap(merged);
    }
    pair_count.erase(top.key);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t k : grown)
      if (pair_count[k] > 0) heap.push({pair_count[k], k});
  }
  tokens.push_back(std::string(kEotText));
  return Tokenizer(std::move(tokens), std::move(merges));
}

}  // namespace qat
