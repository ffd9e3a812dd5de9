// The serving engine behind bin/serve: a queue of generation requests and one scheduler thread that
// runs continuous batching on BatchDecoder (batch_decode.h). Each step every active sequence runs its
// next token (or the next chunk of its prompt) in one forward; requests that arrive join between steps;
// a finished, cancelled or timed-out sequence leaves at once and its KV cache goes back to the engine's
// pool for the next request (its pages stay touched; at most max_batch are kept). Each sequence has
// its own Sampler and StopMatcher (sampler.h), so a request's tokens do not depend on what else runs.
// HTTP and JSON live in tools/serve.cpp; this file knows tokens and text only. Read next: tools/serve.cpp.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/vocab.h"
#include "models/batch_decode.h"
#include "models/sampler.h"

namespace qat {

struct GenRequest {
  std::vector<int32_t> prompt;  // (P) token ids, 1 <= P < context
  SamplerConfig sampling;
  int64_t max_tokens = -1;      // -1: until the context is full
  std::vector<std::string> stops;
  bool logprobs = false;        // each token's log-probability, and of the n_probs most likely
  int64_t n_probs = 0;
  bool ignore_eos = false;      // the end tokens are never sampled (llama-server's ignore_eos, generate --keep-going)
  double timeout_s = 0;         // from submission to the end (0: none)
};

// One generated token: its id, the text it releases (stop strings and incomplete UTF-8 held back, so
// possibly empty) and, when asked for, log-probabilities.
struct TokenEvent {
  int32_t id = -1;
  std::string text;
  TokenLogprobs lp;
};

// The handler's side of a request: events as the scheduler produces them, then the end.
class RequestStream {
 public:
  // Moves the events produced so far into *out, waiting up to wait_s for one if there are none.
  // Returns false once the request has ended and every event had been taken before this call.
  bool take(std::vector<TokenEvent>* out, double wait_s);
  void cancel() { cancelled_ = true; }  // the client went away: the sequence is freed at the next step
  bool cancelled() const { return cancelled_; }
  size_t backlog();  // events produced and not yet taken
  // Valid once take() returned false.
  StopReason reason = StopReason::none;
  std::string error;  // non-empty: the request failed (timeout, engine stopped)
  int64_t prompt_tokens = 0, completion_tokens = 0;

 private:
  friend class ServeEngine;
  void push(TokenEvent e);
  void finish(StopReason r, std::string err);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
};

struct EngineLimits {
  int64_t max_batch = 16;      // sequences decoding together
  int64_t max_queue = 64;      // requests waiting for a place in the batch; beyond: submit() refuses
  int64_t prefill_chunk = 64;  // prompt tokens per step, all sequences together: bounds a decode step's stall
  // Prompt tokens per step while no sequence decodes (nobody's inter-token gap to protect): a burst of
  // requests arriving together is prefilled in a step or two instead of one chunk per step.
  int64_t prefill_idle = 512;
  // A sequence whose client has not taken this many events waits (keeping its place): a slow or stalled
  // client costs bounded memory, and its tokens are the same, only later.
  int64_t max_backlog = 256;
};

// Prompt tokens one step may carry, given the sequences past their prompt (`decoding`) and those still
// in it (`waiting`): prefill_chunk while decoders outnumber or equal the waiting (it bounds their stall),
// else at least prefill_idle: a step's stall then delays fewer streams than it starts, so a burst behind
// a few decoding streams is prefilled in a step or two (16 requests arriving while 1 decodes: one step of
// ~300 prompt tokens, one long gap for 1 stream, instead of five steps of 64 stalling a growing batch).
int64_t prefill_budget(int64_t decoding, int64_t waiting, const EngineLimits& lim);

// Counters for /metrics (totals since start, and the current queue and batch).
struct EngineStats {
  int64_t max_active = 0;  // the largest batch so far
  int64_t requests = 0, rejected = 0, cancelled = 0, timed_out = 0, prompt_tokens = 0, generated_tokens = 0, steps = 0, queued = 0, active = 0;
  double busy_s = 0;  // time spent in steps
};

class ServeEngine {
 public:
  ServeEngine(const DecodeModel& model, const Vocab& tok, EngineLimits limits);
  ~ServeEngine();  // stops the scheduler; requests still running end with an error
  ServeEngine(const ServeEngine&) = delete;
  ServeEngine& operator=(const ServeEngine&) = delete;

  // Queues a request; nullptr when the queue is full or the engine is draining (the caller answers 503).
  std::shared_ptr<RequestStream> submit(GenRequest r);
  // Stops taking requests and waits until every queued and running one has ended.
  void drain();
  EngineStats stats() const;

 private:
  struct Seq;
  void loop();
  void admit();                            // queue -> active, cancelled queued requests out (under mu_)
  int64_t run_step(const std::vector<BatchItem>& items, const std::vector<Seq*>& who);
  bool expire(Seq& s, double now);         // a cancelled or timed-out sequence ends; true if it did
  void advance(Seq& s, const float* row);  // samples the next token of a sequence whose prompt is in
  void finish(Seq& s, StopReason r, const std::string& err = "");
  void release_text(Seq& s, const std::string& piece, TokenEvent* e, bool last);

  const DecodeModel& model_;
  const Vocab& tok_;
  const EngineLimits limits_;
  const std::vector<int32_t> end_ids_;  // what ignore_eos bans
  BatchDecoder decoder_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // work arrived, or a request ended (drain waits on it)
  std::deque<std::unique_ptr<Seq>> queue_;
  std::list<std::unique_ptr<Seq>> active_;  // touched by the scheduler thread only, its size under mu_
  std::vector<std::unique_ptr<SeqCache>> free_caches_;  // finished sequences' KV buffers (scheduler thread)
  int64_t active_count_ = 0;
  bool accepting_ = true, stopping_ = false;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace qat
