// The persistent worker pool of decode (src/core/parallel.h) and its use by the one-token matvecs
// (src/nn/linear.cpp): every thread index runs once per run; the workers are stopped and joined when
// the owner ends; a GEMV split into any number of parts gives qgemm's bits; and token-by-token decode
// gives the same logits, bit for bit, at 1, 2 and 3 threads, with the pool really in use.
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/qgemm.h"
#include "kernels/ref/quant.h"
#include "models/decode.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "src/core/parallel.h"
#include "tests/helpers.h"

using namespace qat;

TEST_CASE("WorkerPool runs each thread index once per run and stops its workers with it", "[pool]") {
  REQUIRE(WorkerPool::live_workers() == 0);
  for (int threads : {1, 2, 3, 4}) {
    INFO("threads " << threads);
    {
      WorkerPool pool(threads);
      REQUIRE(pool.size() == threads);
      std::vector<std::atomic<int>> calls(static_cast<size_t>(threads));
      for (int r = 0; r < 2000; r++) pool.run([&](int t) { calls[size_t(t)].fetch_add(1); });
      for (auto& c : calls) REQUIRE(c.load() == 2000);
      // Every worker has run, so every worker thread is alive (spinning or parked) until the pool ends.
      REQUIRE(WorkerPool::live_workers() == threads - 1);
    }
    REQUIRE(WorkerPool::live_workers() == 0);
  }
}

TEST_CASE("qgemv_part: the parts of any split give qgemm's bits", "[pool]") {
  const int64_t N = 200, K = 96;  // N not a multiple of any panel width
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> w(static_cast<size_t>(N * K)), x(static_cast<size_t>(K));
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  for (WFormat f : {WFormat::q4_0, WFormat::q8_0, WFormat::s8_pc}) {
    INFO(wformat_name(f));
    std::vector<int8_t> q(size_t(N * K));
    std::vector<float> d(size_t(f == WFormat::s8_pc ? N : N * K / 32));
    if (f == WFormat::s8_pc) quantize_per_channel_int8(w.data(), N, K, q.data(), d.data());
    else if (f == WFormat::q8_0) quantize_int8_ggml(w.data(), N * K, 32, ScaleRound::f16, q.data(), d.data());
    else quantize_int4_ggml(w.data(), N * K, 32, q.data(), d.data());
    PackedWeights pw;
    pack_weights(f, q.data(), d.data(), N, K, &pw);
    QuantActs a;
    quantize_acts(uses_per_token(f), x.data(), 1, K, &a);
    std::vector<float> want(static_cast<size_t>(N)), got(static_cast<size_t>(N));
    qgemm(pw, a, want.data());
    for (int parts : {1, 2, 3, 7, 64}) {
      std::fill(got.begin(), got.end(), -1.0f);
      for (int p = 0; p < parts; p++) qgemv_part(pw, a, p, parts, got.data());
      REQUIRE(std::memcmp(got.data(), want.data(), size_t(N) * 4) == 0);
    }
  }
}

// A q4_0 QAT model wide enough (C 192, F 512) that its matvecs take the pool's path.
TEST_CASE("decode logits are bit-identical at 1, 2 and 3 threads with the pool in use", "[pool][decode]") {
  ModelConfig c = ModelConfig::preset_named("small");
  c.n_layers = 2;
  c.vocab = 320;
  QatConfig q = QatConfig::make("q4_0", "", c.n_layers, c.tied);
  Transformer t(c, &q);
  t.init_weights(7);
  t.init_qat_scales();
  const DecodeModel m = decode_model(quantized_from_qat(t));
  auto run = [&](int threads) {
    set_num_threads(threads);
    DecodeSession s(m, 64);
    REQUIRE(s.pool_threads() == threads);
    REQUIRE(WorkerPool::live_workers() == threads - 1);
    std::vector<float> all;
    int32_t tok = 1;
    for (int i = 0; i < 12; i++) {
      Tensor logits = s.forward(&tok, 1);
      all.insert(all.end(), logits.f32(), logits.f32() + c.vocab);
      tok = int32_t((tok * 37 + i) % c.vocab);
    }
    return all;
  };
  const std::vector<float> one = run(1);
  for (int threads : {2, 3}) {
    INFO("threads " << threads);
    const std::vector<float> got = run(threads);
    REQUIRE(std::memcmp(got.data(), one.data(), one.size() * 4) == 0);
    REQUIRE(WorkerPool::live_workers() == 0);  // the session's workers ended with it
  }
  // A session follows the thread count of its forward, not of its construction.
  set_num_threads(2);
  DecodeSession s(m, 64);
  set_num_threads(1);
  int32_t tok = 1;
  (void)s.forward(&tok, 1);
  CHECK(s.pool_threads() == 1);
  CHECK(WorkerPool::live_workers() == 0);
  set_num_threads(3);
  (void)s.forward(&tok, 1);
  CHECK(s.pool_threads() == 3);
  CHECK(WorkerPool::live_workers() == 2);
  set_num_threads(0);
}

TEST_CASE("run_on_own_thread: the OpenMP threads its work made end with it; its exception comes back", "[pool]") {
  auto tids = [] {
    std::set<std::string> t;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) t.insert(e.path().filename().string());
    return t;
  };
  const std::set<std::string> before = tids();
  std::set<std::string> during;
  std::atomic<int> ran{0};
  run_on_own_thread(3, [&] {
#pragma omp parallel
    {
      ran++;
#pragma omp barrier
#pragma omp single
      during = tids();
    }
  });
  CHECK(ran == 3);
  std::set<std::string> made;  // the thread of its own and its team's 2 workers
  for (const std::string& t : during)
    if (!before.count(t)) made.insert(t);
  CHECK(made.size() >= 3);
  // Gone (libgomp tells them to exit when their thread ends; they leave within moments): none is left to
  // share the CPUs with the next team.
  auto left = [&] {
    const std::set<std::string> now = tids();
    int64_t n = 0;
    for (const std::string& t : made) n += int64_t(now.count(t));
    return n;
  };
  for (int i = 0; i < 200 && left() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(left() == 0);
  CHECK_THROWS_WITH(run_on_own_thread(1, [] { throw Error("failed inside"); }), "failed inside");
}
