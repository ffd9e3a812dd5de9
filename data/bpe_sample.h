// The text BPE training reads from a large corpus: a deterministic sample. Training counts every
// pre-token of its input, so its time and memory grow with the text; merges are decided by the most
// frequent pairs, which a sample of tens of MB already ranks as the whole corpus would.
// Read next: data/bpe_train.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qat {

// Corpora up to this many bytes are trained on whole (the fortune corpus, ~2.3 MB of train text, always is).
inline constexpr uint64_t kDefaultBpeSampleBytes = uint64_t(64) << 20;

struct BpeSample {
  std::vector<std::string> docs;  // the sampled text, in corpus order
  uint64_t bytes = 0, total_bytes = 0;
  bool sampled = false;  // false: docs is a copy of the input
  std::string note() const;  // "BPE trained on a 64.0 MB sample of 310.2 MB (blocks of 64 KB chosen by hash)"
};

// All of `docs` when they hold <= max_bytes; else blocks of about 64 KB (documents, or parts of a long
// document cut at safe line breaks, data/encode_chunks.h) kept when a hash of their text falls under
// max_bytes / total: the same text gives the same sample, whatever the order of other documents.
BpeSample sample_for_bpe(const std::vector<std::string>& docs, uint64_t max_bytes);

}  // namespace qat
