// Greedy / temperature / top-k / top-p sampling (see sampler.h).
#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace qat {

int32_t Sampler::sample(const float* logits, int64_t V) {
  if (cfg_.temperature <= 0.0f) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
      if (logits[i] > logits[best]) best = i;
    return int32_t(best);
  }
  // Candidates sorted by logit (descending, ties by id), cut to top-k.
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  int64_t k = cfg_.top_k > 0 && cfg_.top_k < V ? cfg_.top_k : V;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(size_t(k));
  // Softmax at the temperature over the candidates.
  std::vector<double> p(idx.size());
  double maxl = logits[idx[0]], total = 0;
  for (size_t i = 0; i < idx.size(); i++) total += p[i] = std::exp((double(logits[idx[i]]) - maxl) / cfg_.temperature);
  // Nucleus: the smallest prefix whose mass reaches top_p.
  size_t keep = idx.size();
  if (cfg_.top_p < 1.0f) {
    double acc = 0;
    for (size_t i = 0; i < idx.size(); i++) {
      acc += p[i] / total;
      if (acc >= cfg_.top_p) { keep = i + 1; break; }
    }
  }
  double mass = 0;
  for (size_t i = 0; i < keep; i++) mass += p[i];
  double r = double(rng_.uniform()) * mass;
  for (size_t i = 0; i < keep; i++) {
    r -= p[i];
    if (r < 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace qat
