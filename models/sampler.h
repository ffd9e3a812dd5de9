// Picking the next token from logits, and deciding when to stop. Sampler: greedy (temperature 0), or
// sampling with temperature, top-k, top-p (nucleus) and min-p from a seeded generator, after the
// repetition penalties (llama.cpp's rules, over the last-N tokens of the history: prompt and output).
// StopMatcher: stop strings matched on the decoded text, holding back a partial match so that no stop
// text is ever emitted. bin/generate and bin/serve share both, so a request stops and samples the same
// way in either. Read next: decode.h.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "src/core/rng.h"

namespace qat {
class Vocab;
}

namespace qat {

struct SamplerConfig {
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 40;        // 0: off
  float top_p = 0.95f;       // 1: off
  uint64_t seed = 42;
  // Fields below come after seed so that {temp, top_k, top_p, seed} initialisers keep their meaning.
  float min_p = 0.0f;              // 0: off; keeps tokens with p >= min_p * p(most likely)
  float repeat_penalty = 1.0f;     // 1: off; a logit l of a token in the window: l > 0 ? l / r : l * r
  int64_t repeat_last_n = 64;      // the window: the last N tokens of the history (0: off)
  float frequency_penalty = 0.0f;  // l -= count * f, count = occurrences in the window
  float presence_penalty = 0.0f;   // l -= p once if the token occurs in the window
  // Tokens never sampled (their logits -inf, after the penalties): the end tokens under llama.cpp's
  // --ignore-eos / llama-server's "ignore_eos" (generate --keep-going), which bias them away rather than
  // sample them and go on.
  std::vector<int32_t> banned = {};
  bool penalized() const { return repeat_penalty != 1.0f || frequency_penalty != 0.0f || presence_penalty != 0.0f; }
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg) : cfg_(cfg), rng_(cfg.seed) {}
  // logits (V): returns the chosen token id and appends it to the history. Ties in greedy pick the
  // lowest id. Without penalties the logits are used as given (the same draws as before penalties).
  int32_t sample(const float* logits, int64_t V);
  // Tokens that count for the penalties without being sampled (the prompt, a chat turn's text).
  void accept(int32_t token);
  const SamplerConfig& config() const { return cfg_; }

 private:
  // logits (V) with the repetition penalties of the window applied, into pen_.
  const float* penalize(const float* logits, int64_t V);
  int32_t draw(const float* logits, int64_t V);
  SamplerConfig cfg_;
  Rng rng_;
  std::deque<int32_t> window_;  // the last repeat_last_n tokens of the history
  std::vector<float> pen_;      // (V) scratch
};

// Every id the vocabulary ends a text with (Vocab::is_end): what ignore_eos bans.
std::vector<int32_t> end_token_ids(const Vocab& tok);

// The n most likely tokens of logits (V) and their log-probabilities (log-softmax at temperature 1),
// most likely first, ties by id; plus the log-probability of `chosen` (the OpenAI "logprobs" fields).
struct TokenLogprobs {
  float chosen = 0;
  std::vector<std::pair<int32_t, float>> top;
};
TokenLogprobs token_logprobs(const float* logits, int64_t V, int32_t chosen, int64_t n);

// Why a generation ended, as OpenAI's finish_reason names it: "stop" (end-of-text or a stop string),
// "length" (the token budget or the model's context).
enum class StopReason : uint8_t { none, end_of_text, stop_string, max_tokens, context_full };
const char* finish_reason(StopReason r);  // "stop", "length" ("" for none)
const char* stop_reason_text(StopReason r);  // "end of text", "stop string", "max tokens", "context full"

// Text arrives in pieces (one token's bytes at a time); feed() returns what may be shown now. A stop
// string found in the text ends it: the text before it is returned, the stop string and anything after
// are dropped, stopped() turns true. A tail that could still become a stop string is held back until
// the next piece decides; finish() returns it when the generation ends for another reason.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  std::string feed(const std::string& piece);
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  size_t held_suffix() const;  // length of the longest tail of held_ that is a proper prefix of a stop
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace qat
