// The deterministic BPE training sample (bpe_sample.h). Read next: data/bpe_train.cpp.
#include "data/bpe_sample.h"

#include <cstdio>

#include "data/corpus.h"
#include "data/encode_chunks.h"

namespace qat {

std::string BpeSample::note() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "BPE trained on a %.1f MB sample of %.1f MB of train text (blocks of ~64 KB chosen by hash)",
                double(bytes) / 1e6, double(total_bytes) / 1e6);
  return buf;
}

BpeSample sample_for_bpe(const std::vector<std::string>& docs, uint64_t max_bytes) {
  constexpr size_t kBlockBytes = size_t(64) << 10;
  BpeSample s;
  for (const std::string& d : docs) s.total_bytes += d.size();
  if (s.total_bytes <= max_bytes) {
    s.docs = docs;
    s.bytes = s.total_bytes;
    return s;
  }
  s.sampled = true;
  // Keep a block when its hash, as a fraction of 2^64, is below max_bytes / total.
  const double rate = double(max_bytes) / double(s.total_bytes);
  const uint64_t threshold = uint64_t(rate * 18446744073709551615.0);
  for (const std::string& d : docs)
    for (std::string_view block : split_at_safe_cuts(d, kBlockBytes)) {
      if (fnv1a64(block.data(), block.size()) >= threshold) continue;
      s.docs.emplace_back(block);
      s.bytes += block.size();
    }
  return s;
}

}  // namespace qat
