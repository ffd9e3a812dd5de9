// The sampler's penalties and min-p, stop strings with held-back partial matches, stop reasons and
// log-probabilities (models/sampler.h), shared by bin/generate and bin/serve. Each case picks logits
// whose greedy or sampled outcome flips when the rule under test is wrong.
#include <catch2/catch.hpp>
#include <cmath>

#include "models/sampler.h"

using namespace qat;

namespace {
SamplerConfig greedy_with(float repeat, int64_t last_n, float freq = 0, float presence = 0) {
  SamplerConfig c{0.0f, 0, 1.0f, 1};
  c.repeat_penalty = repeat;
  c.repeat_last_n = last_n;
  c.frequency_penalty = freq;
  c.presence_penalty = presence;
  return c;
}
}  // namespace

TEST_CASE("sampler: repeat penalty divides positive logits, multiplies negative ones, in the last-N window",
          "[sampler]") {
  std::vector<float> pos{2.0f, 1.9f, 0.5f}, neg{-1.0f, -1.2f, -3.0f};
  Sampler s(greedy_with(1.5f, 64));
  s.accept(0);
  CHECK(s.sample(pos.data(), 3) == 1);  // 2 / 1.5 = 1.33 < 1.9
  Sampler t(greedy_with(1.5f, 64));
  t.accept(0);
  CHECK(t.sample(neg.data(), 3) == 1);  // -1 * 1.5 = -1.5 < -1.2
  Sampler w(greedy_with(1.5f, 1));      // window of one: token 0 has left it
  w.accept(0);
  w.accept(2);
  CHECK(w.sample(pos.data(), 3) == 0);
  Sampler off(greedy_with(1.0f, 64));
  off.accept(0);
  CHECK(off.sample(pos.data(), 3) == 0);
  // The sampled token joins the window: greedy alternates instead of repeating.
  Sampler alt(greedy_with(1.5f, 1));
  CHECK(alt.sample(pos.data(), 3) == 0);
  CHECK(alt.sample(pos.data(), 3) == 1);
  CHECK(alt.sample(pos.data(), 3) == 0);
}

TEST_CASE("sampler: frequency penalty per occurrence, presence penalty once", "[sampler]") {
  std::vector<float> l{2.0f, 1.5f};
  Sampler once(greedy_with(1.0f, 64, 0.3f));
  once.accept(0);
  CHECK(once.sample(l.data(), 2) == 0);  // 2 - 0.3 = 1.7
  Sampler twice(greedy_with(1.0f, 64, 0.3f));
  twice.accept(0);
  twice.accept(0);
  CHECK(twice.sample(l.data(), 2) == 1);  // 2 - 0.6 = 1.4
  Sampler pres(greedy_with(1.0f, 64, 0.0f, 0.4f));
  pres.accept(0);
  pres.accept(0);
  pres.accept(0);
  CHECK(pres.sample(l.data(), 2) == 0);  // 2 - 0.4 = 1.6: once, whatever the count
  Sampler pres2(greedy_with(1.0f, 64, 0.0f, 0.6f));
  pres2.accept(0);
  CHECK(pres2.sample(l.data(), 2) == 1);  // 2 - 0.6 = 1.4
}

TEST_CASE("sampler: min-p keeps tokens with p >= min_p * p_max; same seed, same tokens", "[sampler]") {
  std::vector<float> l{0.0f, -1.0f, -5.0f};  // p ratios to the best: 1, 0.37, 0.0067
  auto counts = [&](float min_p, uint64_t seed) {
    SamplerConfig c{1.0f, 0, 1.0f, seed};
    c.min_p = min_p;
    Sampler s(c);
    std::vector<int> n(3, 0);
    for (int i = 0; i < 2000; i++) n[size_t(s.sample(l.data(), 3))]++;
    return n;
  };
  std::vector<int> half = counts(0.5f, 3), third = counts(0.3f, 3), off = counts(0.0f, 3);
  CHECK(half[1] + half[2] == 0);
  CHECK(third[1] > 300);
  CHECK(third[2] == 0);
  CHECK(off[2] > 0);  // ~0.5% of 2000 draws: min-p is what removed it
  SamplerConfig c{0.9f, 40, 0.95f, 11};
  c.min_p = 0.05f;
  c.repeat_penalty = 1.3f;
  c.frequency_penalty = 0.2f;
  Sampler a(c), b(c);
  std::vector<float> v{0.3f, 0.1f, 0.2f, 0.25f, -0.5f};
  for (int i = 0; i < 100; i++) REQUIRE(a.sample(v.data(), 5) == b.sample(v.data(), 5));
}

TEST_CASE("sampler: banned tokens (ignore_eos) are never drawn, greedy or sampled, penalties or not", "[sampler]") {
  std::vector<float> l{0.5f, 3.0f, 0.4f, -1.0f};  // token 1 (the "end") dominates
  SamplerConfig g{0.0f, 0, 1.0f, 1};
  g.banned = {1};
  CHECK(Sampler(g).sample(l.data(), 4) == 0);   // greedy: the best of the rest
  SamplerConfig t{1.0f, 0, 1.0f, 7};
  t.banned = {1, 3};
  t.repeat_penalty = 1.1f;  // the penalties' scratch path as well
  Sampler s(t);
  std::vector<int> n(4, 0);
  for (int i = 0; i < 500; i++) n[size_t(s.sample(l.data(), 4))]++;
  CHECK(n[1] == 0);
  CHECK(n[3] == 0);
  CHECK(n[0] > 0);
  CHECK(n[2] > 0);
  // The caller's logits are not changed.
  CHECK(l[1] == 3.0f);
}

TEST_CASE("stop strings: text before the stop is shown, the stop and what follows never", "[sampler]") {
  StopMatcher m({"o W"});
  CHECK(m.feed("Hel") == "Hel");
  CHECK(m.feed("lo") == "l");  // "o" could start "o W": held
  CHECK(m.feed(" Wor") == "");  // the stop: "lo" shown up to it, " Wor" dropped
  CHECK(m.stopped());
  CHECK(m.feed("ld") == "");
  CHECK(m.finish() == "");

  StopMatcher held({"END", "\n\n"});
  CHECK(held.feed("abcE") == "abc");
  CHECK(held.feed("N") == "");
  CHECK(held.feed("x") == "ENx");  // not a stop after all: released
  CHECK(held.feed("y\n") == "y");
  CHECK(held.finish() == "\n");  // the generation ended otherwise: the held tail is text
  CHECK_FALSE(held.stopped());

  StopMatcher earliest({"cd", "b"});
  CHECK(earliest.feed("abcd") == "a");
  StopMatcher none({});
  CHECK(none.feed("anything") == "anything");
  StopMatcher empty_stop({""});  // an empty stop string matches nothing
  CHECK(empty_stop.feed("x") == "x");
}

TEST_CASE("stop reasons map to OpenAI's finish_reason; log-probabilities", "[sampler]") {
  CHECK(std::string(finish_reason(StopReason::end_of_text)) == "stop");
  CHECK(std::string(finish_reason(StopReason::stop_string)) == "stop");
  CHECK(std::string(finish_reason(StopReason::max_tokens)) == "length");
  CHECK(std::string(finish_reason(StopReason::context_full)) == "length");
  std::vector<float> l{0.0f, std::log(3.0f), 0.0f};  // p = 0.2, 0.6, 0.2
  TokenLogprobs lp = token_logprobs(l.data(), 3, 2, 2);
  CHECK(lp.chosen == Approx(std::log(0.2)).margin(1e-6));
  REQUIRE(lp.top.size() == 2);
  CHECK(lp.top[0].first == 1);
  CHECK(lp.top[0].second == Approx(std::log(0.6)).margin(1e-6));
  CHECK(lp.top[1].first == 0);  // ties by id
}
