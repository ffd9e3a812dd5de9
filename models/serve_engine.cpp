// The continuous-batching scheduler (see serve_engine.h). One thread runs steps; handlers submit
// requests and read their RequestStream. The sequence of samples and forwards of one sequence is
// bin/generate's (tools/generate.cpp, decode_tokens), so a request served here stops where generate
// stops, for the same reason.
#include "models/serve_engine.h"

#include <algorithm>
#include <chrono>

#include "src/core/parallel.h"
#include "src/util/error.h"

namespace qat {

int64_t prefill_budget(int64_t decoding, int64_t waiting, const EngineLimits& lim) {
  return decoding >= waiting && decoding > 0 ? lim.prefill_chunk : std::max(lim.prefill_chunk, lim.prefill_idle);
}

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The length of the longest prefix of s that does not end inside a UTF-8 sequence: a token may hold
// half a character, and the text a client gets must be valid UTF-8 (JSON strings are).
static size_t utf8_complete(const std::string& s) {
  for (size_t back = 1; back <= std::min<size_t>(4, s.size()); back++) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for the lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? s.size() - back : s.size();
  }
  return s.size();
}

bool RequestStream::take(std::vector<TokenEvent>* out, double wait_s) {
  std::unique_lock lk(mu_);
  if (events_.empty() && !done_) cv_.wait_for(lk, std::chrono::duration<double>(wait_s));
  const bool ended = done_ && events_.empty();
  while (!events_.empty()) {
    out->push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return !ended;
}

size_t RequestStream::backlog() {
  std::lock_guard lk(mu_);
  return events_.size();
}

void RequestStream::push(TokenEvent e) {
  std::lock_guard lk(mu_);
  events_.push_back(std::move(e));
  cv_.notify_all();
}

void RequestStream::finish(StopReason r, std::string err) {
  std::lock_guard lk(mu_);
  reason = r;
  error = std::move(err);
  done_ = true;
  cv_.notify_all();
}

struct ServeEngine::Seq {
  Seq(GenRequest r, const ModelConfig& c)
      : req(std::move(r)),
        cap(req.max_tokens < 0 ? c.context : std::min<int64_t>(c.context, int64_t(req.prompt.size()) + req.max_tokens)),
        sampler(req.sampling),
        stop(req.stops) {}
  GenRequest req;
  std::shared_ptr<RequestStream> out = std::make_shared<RequestStream>();
  int64_t cap;                      // positions the request may fill
  std::unique_ptr<SeqCache> cache;  // from the engine's pool when it joins the batch
  Sampler sampler;
  StopMatcher stop;
  double deadline = 0;    // 0: none
  int64_t prefilled = 0;  // prompt tokens run
  int32_t next = -1;      // the last token sampled, run at the next step
  int64_t generated = 0;
  std::string utf8;       // released text that ends inside a UTF-8 character
  bool ended = false;
};

ServeEngine::ServeEngine(const DecodeModel& model, const Vocab& tok, EngineLimits limits)
    : model_(model), tok_(tok), limits_(limits), end_ids_(end_token_ids(tok)), decoder_(model) {
  thread_ = std::thread([this] { loop(); });
}

ServeEngine::~ServeEngine() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    accepting_ = false;
  }
  cv_.notify_all();
  thread_.join();
  for (auto& s : queue_) s->out->finish(StopReason::none, "the server stopped");
  for (auto& s : active_) s->out->finish(StopReason::none, "the server stopped");
}

std::shared_ptr<RequestStream> ServeEngine::submit(GenRequest r) {
  QAT_CHECK(!r.prompt.empty() && int64_t(r.prompt.size()) < model_.cfg.context, "serve: a prompt of ", r.prompt.size(),
            " tokens does not fit the context of ", model_.cfg.context);
  if (r.ignore_eos) r.sampling.banned = end_ids_;
  auto s = std::make_unique<Seq>(std::move(r), model_.cfg);
  // A request that joins the batch at the next step gets its KV cache here, on its client's thread and
  // outside the engine's lock, with every page faulted in: left to the step that first fills it, a fresh
  // cache's faults stalled every running stream (12 new 100-position caches of the 300m shape: most of
  // an 817 ms step on the VM measured, where faulting a 2 MiB page cost ~5 ms). A request that will wait
  // in the queue takes its cache when it is admitted, so queued requests hold no KV memory.
  bool joins = false;
  {
    std::lock_guard lk(mu_);
    joins = accepting_ && int64_t(queue_.size()) + active_count_ < limits_.max_batch;
    if (joins && !free_caches_.empty()) {
      s->cache = std::move(free_caches_.back());
      free_caches_.pop_back();
    }
  }
  if (s->cache)
    s->cache->reuse(s->cap);
  else if (joins)
    s->cache = std::make_unique<SeqCache>(model_.cfg, s->cap);
  if (s->cache) s->cache->prefault();
  std::lock_guard lk(mu_);
  if (!accepting_ || int64_t(queue_.size()) >= limits_.max_queue) {
    stats_.rejected++;
    if (s->cache && int64_t(free_caches_.size()) < limits_.max_batch) free_caches_.push_back(std::move(s->cache));
    return nullptr;
  }
  for (int32_t id : s->req.prompt) s->sampler.accept(id);  // the prompt counts for the penalties
  if (s->req.timeout_s > 0) s->deadline = now_s() + s->req.timeout_s;
  s->out->prompt_tokens = int64_t(s->req.prompt.size());
  std::shared_ptr<RequestStream> out = s->out;
  stats_.requests++;
  queue_.push_back(std::move(s));
  cv_.notify_all();
  return out;
}

void ServeEngine::drain() {
  std::unique_lock lk(mu_);
  accepting_ = false;
  cv_.wait(lk, [&] { return queue_.empty() && active_count_ == 0; });
}

EngineStats ServeEngine::stats() const {
  std::lock_guard lk(mu_);
  EngineStats s = stats_;
  s.queued = int64_t(queue_.size());
  s.active = active_count_;
  return s;
}

void ServeEngine::admit() {
  // A queued request whose client went away leaves now, not when a place in the batch frees up.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!(*it)->out->cancelled()) {
      ++it;
      continue;
    }
    finish(**it, StopReason::none, "cancelled");
    stats_.cancelled++;
    it = queue_.erase(it);
  }
  while (!queue_.empty() && int64_t(active_.size()) < limits_.max_batch) {
    Seq& s = *queue_.front();
    if (!s.cache && free_caches_.empty()) {  // a request that queued: submit made no cache for it
      s.cache = std::make_unique<SeqCache>(model_.cfg, s.cap);  // uninitialised: pages touched as filled
    } else if (!s.cache) {
      s.cache = std::move(free_caches_.back());
      free_caches_.pop_back();
      s.cache->reuse(s.cap);
    }
    active_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  active_count_ = int64_t(active_.size());
}

// Appends `piece` to the text released so far (stop strings already applied); the event gets what
// ends on a whole UTF-8 character, or everything when this is the sequence's last text.
void ServeEngine::release_text(Seq& s, const std::string& piece, TokenEvent* e, bool last) {
  s.utf8 += piece;
  const size_t n = last ? s.utf8.size() : utf8_complete(s.utf8);
  e->text = s.utf8.substr(0, n);
  s.utf8.erase(0, n);
}

void ServeEngine::finish(Seq& s, StopReason r, const std::string& err) {
  TokenEvent tail;
  release_text(s, s.stop.finish(), &tail, true);
  if (!tail.text.empty()) s.out->push(std::move(tail));
  s.out->completion_tokens = s.generated;
  s.out->finish(r, err);
  s.ended = true;
}

bool ServeEngine::expire(Seq& s, double now) {
  if (s.out->cancelled()) {
    finish(s, StopReason::none, "cancelled");
    std::lock_guard lk(mu_);
    stats_.cancelled++;
  } else if (s.deadline > 0 && now > s.deadline) {
    finish(s, StopReason::none, str("timed out after ", s.req.timeout_s, " s"));
    std::lock_guard lk(mu_);
    stats_.timed_out++;
  }
  else if (s.req.max_tokens == 0) finish(s, StopReason::max_tokens);
  return s.ended;
}

// generate's decode_tokens, one token at a time: sample, then the stop checks in its order.
void ServeEngine::advance(Seq& s, const float* row) {
  const int64_t V = model_.cfg.vocab;
  TokenEvent e;
  e.id = s.sampler.sample(row, V);
  if (s.req.logprobs) e.lp = token_logprobs(row, V, e.id, s.req.n_probs);
  if (tok_.is_end(e.id) && !s.req.ignore_eos) return finish(s, StopReason::end_of_text);
  release_text(s, s.stop.feed(tok_.decode({e.id})), &e, false);
  s.generated++;
  s.out->push(std::move(e));
  if (s.stop.stopped()) return finish(s, StopReason::stop_string);
  if (s.req.max_tokens >= 0 && s.generated >= s.req.max_tokens) return finish(s, StopReason::max_tokens);
  if (s.cache->pos >= model_.cfg.context) return finish(s, StopReason::context_full);
  s.next = e.id;
}

// One forward of the items, then a token for each sequence whose prompt is now in. A failed forward
// (non-finite logits) ends the step's requests with its message; the server goes on. Returns the
// tokens generated.
int64_t ServeEngine::run_step(const std::vector<BatchItem>& items, const std::vector<Seq*>& who) {
  Tensor logits;
  try {
    logits = decoder_.step(items);
  } catch (const std::exception& e) {
    for (Seq* s : who) finish(*s, StopReason::none, e.what());
    return 0;
  }
  int64_t sampled = 0;
  for (size_t j = 0; j < who.size(); j++) {
    Seq& s = *who[j];
    if (s.prefilled < int64_t(s.req.prompt.size())) {
      s.prefilled += items[j].n;
      if (s.prefilled < int64_t(s.req.prompt.size())) continue;
    }
    const int64_t before = s.generated;
    advance(s, logits.f32() + int64_t(j) * model_.cfg.vocab);
    sampled += s.generated - before;
  }
  return sampled;
}

void ServeEngine::loop() {
  // OpenMP's thread count is per thread: this one would start with all cores, not the process's
  // --threads (with 16 sequences on a loaded 2-core host, the extra team member's barriers cost
  // ~200 ms a step).
  set_num_threads(num_threads());
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_) return;
      admit();
    }
    const double t0 = now_s();
    // This step's items: a prompt chunk (the step's prefill budget, first come first served) or the
    // token sampled last step. Ended sequences leave first.
    std::vector<BatchItem> items;
    std::vector<Seq*> who;
    int64_t decoding = 0, waiting = 0;  // past their prompt (their next token waits for this step), in it
    for (auto& sp : active_)
      if (!sp->ended) (sp->prefilled >= int64_t(sp->req.prompt.size()) ? decoding : waiting)++;
    int64_t budget = prefill_budget(decoding, waiting, limits_), prompt_run = 0;
    for (auto& sp : active_) {
      Seq& s = *sp;
      if (expire(s, t0)) continue;
      if (int64_t(s.out->backlog()) >= limits_.max_backlog) continue;  // waits for its client
      const int64_t P = int64_t(s.req.prompt.size());
      if (s.prefilled < P) {
        const int64_t n = std::min(budget, P - s.prefilled);
        if (n <= 0) continue;
        budget -= n;
        prompt_run += n;
        items.push_back({s.cache.get(), s.req.prompt.data() + s.prefilled, n});
      } else {
        items.push_back({s.cache.get(), &s.next, 1});
      }
      who.push_back(&s);
    }
    if (items.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // all wait for clients
    const int64_t sampled = items.empty() ? 0 : run_step(items, who);
    std::lock_guard lk(mu_);
    for (auto it = active_.begin(); it != active_.end();) {
      if (!(*it)->ended) {
        ++it;
        continue;
      }
      // Its KV buffers serve the next request (their pages are touched already); at most max_batch
      // are kept, as many as the batch can hold at once.
      if (int64_t(free_caches_.size()) < limits_.max_batch) free_caches_.push_back(std::move((*it)->cache));
      it = active_.erase(it);
    }
    active_count_ = int64_t(active_.size());
    stats_.steps += !items.empty();
    stats_.max_active = std::max(stats_.max_active, int64_t(items.size()));
    stats_.prompt_tokens += prompt_run;
    stats_.generated_tokens += sampled;
    stats_.busy_s += now_s() - t0;
    cv_.notify_all();
  }
}

}  // namespace qat
