// Penalties, greedy / temperature / top-k / top-p / min-p sampling, log-probabilities and stop strings
// (see sampler.h).
#include "models/sampler.h"

#include "data/vocab.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace qat {

void Sampler::accept(int32_t token) {
  if (cfg_.repeat_last_n <= 0) return;
  window_.push_back(token);
  if (int64_t(window_.size()) > cfg_.repeat_last_n) window_.pop_front();
}

// llama.cpp's penalties sampler: each distinct token of the window once, repeat penalty by the sign of
// its logit, then frequency (per occurrence) and presence (once) subtracted.
const float* Sampler::penalize(const float* logits, int64_t V) {
  pen_.assign(logits, logits + V);
  std::unordered_map<int32_t, int64_t> count;
  for (int32_t t : window_) count[t]++;
  for (auto [t, n] : count) {
    if (t < 0 || t >= V) continue;
    float& l = pen_[size_t(t)];
    l = l > 0 ? l / cfg_.repeat_penalty : l * cfg_.repeat_penalty;
    l -= float(n) * cfg_.frequency_penalty + cfg_.presence_penalty;
  }
  return pen_.data();
}

int32_t Sampler::sample(const float* logits, int64_t V) {
  const float* l = cfg_.penalized() && !window_.empty() ? penalize(logits, V) : logits;
  if (!cfg_.banned.empty()) {
    if (l != pen_.data()) pen_.assign(logits, logits + V);
    for (int32_t b : cfg_.banned)
      if (b >= 0 && b < V) pen_[size_t(b)] = -std::numeric_limits<float>::infinity();
    l = pen_.data();
  }
  int32_t t = draw(l, V);
  accept(t);
  return t;
}

std::vector<int32_t> end_token_ids(const Vocab& tok) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tok.vocab_size(); id++)
    if (tok.is_end(id)) ids.push_back(id);
  return ids;
}

int32_t Sampler::draw(const float* logits, int64_t V) {
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
  // min-p (llama.cpp's rule, on the distribution at temperature 1): p >= min_p * p_max, i.e. a logit at
  // least maxl + ln(min_p). The candidates are sorted, so this too keeps a prefix (never empty).
  if (cfg_.min_p > 0.0f) {
    const double floor_l = maxl + std::log(double(cfg_.min_p));
    size_t m = 1;
    while (m < keep && double(logits[idx[m]]) >= floor_l) m++;
    keep = m;
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

TokenLogprobs token_logprobs(const float* logits, int64_t V, int32_t chosen, int64_t n) {
  double maxl = logits[0];
  for (int64_t i = 1; i < V; i++) maxl = std::max(maxl, double(logits[i]));
  double total = 0;
  for (int64_t i = 0; i < V; i++) total += std::exp(double(logits[i]) - maxl);
  const double lse = maxl + std::log(total);
  TokenLogprobs r;
  r.chosen = float(double(logits[chosen]) - lse);
  std::vector<int32_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = std::clamp<int64_t>(n, 0, V);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int64_t i = 0; i < k; i++) r.top.push_back({idx[size_t(i)], float(double(logits[idx[size_t(i)]]) - lse)});
  return r;
}

const char* finish_reason(StopReason r) {
  switch (r) {
    case StopReason::end_of_text:
    case StopReason::stop_string: return "stop";
    case StopReason::max_tokens:
    case StopReason::context_full: return "length";
    case StopReason::none: break;
  }
  return "";
}

const char* stop_reason_text(StopReason r) {
  switch (r) {
    case StopReason::end_of_text: return "end of text";
    case StopReason::stop_string: return "stop string";
    case StopReason::max_tokens: return "max tokens";
    case StopReason::context_full: return "context full";
    case StopReason::none: break;
  }
  return "none";
}

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

size_t StopMatcher::held_suffix() const {
  size_t best = 0;
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, held_.size()); len > best; len--)
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        best = len;
        break;
      }
  return best;
}

std::string StopMatcher::feed(const std::string& piece) {
  if (stopped_) return {};
  held_ += piece;
  size_t first = std::string::npos;  // the earliest stop string wins
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  const size_t keep = held_suffix();
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopMatcher::finish() {
  std::string out;
  out.swap(held_);
  return stopped_ ? std::string() : out;
}

}  // namespace qat
