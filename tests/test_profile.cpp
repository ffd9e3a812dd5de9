// The profiler (issue 7): times are exclusive, so the rows add up to the time of the outermost scopes;
// `bin/train --profile` prints rows that add up to the measured step time within 5%, and
// --profile-json writes a Chrome trace of complete events. Code under test: src/util/profile.cpp and
// the scopes of models/train/trainer.cpp, src/core/autograd.cpp and the ops.
#include <chrono>
#include <cstdio>
#include <thread>

#include "src/io/file.h"
#include "src/io/json.h"
#include "src/util/profile.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {
void busy_ms(double ms) {  // a spin, not a sleep: the clock runs the same either way, but this is a CPU op
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
  while (std::chrono::steady_clock::now() < end) {
  }
}
}  // namespace

TEST_CASE("profiler: nested scopes are exclusive and add up to the outer scope", "[profile]") {
  // One timed block: 4 ms in "outer" around two 6 ms "inner" scopes. The rows must add up to the wall
  // time of the block within 1%; a descheduling between the clock read and the scope's start (a loaded
  // host, ASan) can break that once, so the block runs up to 5 times and one clean attempt must pass.
  // A profiler that lost or double-counted time would fail every attempt.
  bool added_up = false;
  std::string attempts;  // each attempt's figures, shown when none added up
  for (int attempt = 0; attempt < 5 && !added_up; attempt++) {
    prof::enable(true, true);
    auto t0 = std::chrono::steady_clock::now();
    {
      QAT_PROF("outer", forward, 1e6, 1e3);
      busy_ms(4);
      {
        QAT_PROF("inner", backward);
        busy_ms(6);
      }
      {
        QAT_PROF("inner", backward);
        busy_ms(6);
      }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<prof::Row> rows = prof::rows();
    prof::enable(false);
    REQUIRE(rows.size() == 2);
    const prof::Row& inner = rows[0].name == std::string("inner") ? rows[0] : rows[1];
    const prof::Row& outer = rows[0].name == std::string("outer") ? rows[0] : rows[1];
    CHECK(inner.calls == 2);
    CHECK(outer.calls == 1);
    CHECK(inner.phase == prof::Phase::backward);
    CHECK(outer.flops == 1e6);
    CHECK(inner.seconds >= 0.012);
    CHECK(outer.seconds >= 0.004);
    CHECK(outer.seconds < inner.seconds);  // the inner 12 ms are not counted again in the outer row
    double sum = inner.seconds + outer.seconds;
    CHECK(sum <= wall);
    UNSCOPED_INFO("attempt " << attempt << ": rows " << sum << " s, wall " << wall << " s");
    added_up = sum >= 0.99 * wall;
  }
  CHECK(added_up);
}

// The 5% is wall time on ~5 ms steps: one preemption between two rows of a loaded machine (CI's ASan run
// saw 15.8% once) can break it in a single run. A row that is really missing breaks it every time, so the
// run is tried up to three times and one must add up.
TEST_CASE("bin/train --profile: the rows add up to the measured step within 5%; the trace is valid",
          "[profile][cli]") {
  ScratchDir dir("profile");
  std::string corpus = dir.put("corpus.txt", synthetic_corpus(200));
  std::string trace = dir.path + "/trace.json";
  ProcResult r;
  bool added_up = false;
  std::string attempts;  // each attempt's figures, shown when none added up
  for (int attempt = 1; attempt <= 3 && !added_up; attempt++) {
    remove_tree(dir.path + "/run");
    r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "32", "--batch", "8",
                  "--steps", "6", "--threads", "2", "--out", dir.path + "/run", "--cache-dir", dir.path + "/cache",
                  "--quiet", "--no-plot", "--profile", "--profile-json", trace},
                 dir.path + "/train" + std::to_string(attempt), {}, 120);
    INFO(r.what());
    REQUIRE(r.code == 0);
    size_t at = r.err.find("rows add up to ");
    REQUIRE(at != std::string::npos);
    double rows_ms = 0, measured_ms = 0;
    REQUIRE(std::sscanf(r.err.c_str() + at, "rows add up to %lf ms/step; measured %lf ms/step", &rows_ms, &measured_ms) == 2);
    REQUIRE(measured_ms > 0);
    added_up = std::fabs(rows_ms - measured_ms) <= 0.05 * measured_ms;
    attempts += str("attempt ", attempt, ": rows ", rows_ms, " ms/step, measured ", measured_ms, " ms/step; ");
  }
  INFO(attempts);
  CHECK(added_up);
  for (const char* row : {"linear ", "attention ", "optimizer ", "cross_entropy "}) CHECK_THAT(r.err, Catch::Contains(row));
  CHECK_THAT(r.err, Catch::Contains("thread busy"));

  Json j = Json::parse(read_file(trace));
  const std::vector<Json>& events = j.at("traceEvents").items();
  REQUIRE(events.size() > 6);
  for (const Json& e : events) {
    REQUIRE(e.at("ph").as_string() == "X");
    REQUIRE(e.at("dur").as_double() >= 0);
    REQUIRE(!e.at("name").as_string().empty());
  }
}

TEST_CASE("bin/train --profile: thread busy and its wall time cover the same intervals (the steps)", "[profile][cli]") {
  // At one thread a thread's CPU time cannot exceed the wall time of the same interval. The busy time
  // had been read from before the first step to after the last, evaluations included, and compared
  // with the wall time of the steps alone: "t0=0.47 of 0.25 s wall". Evaluations here cost many steps
  // each (400 windows after every step), so counting them in one figure and not the other shows.
  ScratchDir dir("profile-busy");
  std::string corpus = dir.put("corpus.txt", synthetic_corpus(200));
  ProcResult r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "32",
                           "--batch", "2", "--steps", "4", "--eval-every", "1", "--eval-windows", "400", "--threads",
                           "1", "--out", dir.path + "/run", "--cache-dir", dir.path + "/cache", "--quiet", "--no-plot",
                           "--profile"},
                          dir.path + "/train", {}, 120);
  INFO(r.what());
  REQUIRE(r.code == 0);
  const size_t at = r.err.find("thread busy");
  REQUIRE(at != std::string::npos);
  const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
  INFO(line);
  double t0 = -1, wall = -1;
  REQUIRE(std::sscanf(line.c_str() + line.find(" t0="), " t0=%lf of %lf s wall", &t0, &wall) == 2);
  CHECK(t0 > 0);
  CHECK(t0 <= wall + 0.001);  // both printed with 3 decimals
  CHECK_THAT(line, Catch::Contains("in the 4 profiled steps"));
}

TEST_CASE("profile table: the ms/step column has one precision for every row", "[profile]") {
  // %.4g had printed 12.22, 1.501, 0.4006 and 0.0004592 in one column: digits that look like precision
  // but are not aligned. Fixed 3 decimals (microseconds) for every row and for the totals line.
  prof::enable(true);
  {
    prof::Scope slow("slow", prof::Phase::forward);
    busy_ms(3);
  }
  {
    prof::Scope fast("fast", prof::Phase::forward);
    busy_ms(0.02);
  }
  const std::string t = prof::table({}, 1, 0.004);
  prof::enable(false);
  INFO(t);
  const std::vector<std::string> lines = lines_of(t);
  int rows = 0;
  for (const std::string& line : lines) {
    char name[64], phase[8];
    double calls = 0;
    char ms[32];
    if (std::sscanf(line.c_str(), "%63s %7s %lf %31s", name, phase, &calls, ms) != 4) continue;
    if (std::string(name) != "slow" && std::string(name) != "fast") continue;
    rows++;
    const std::string m = ms;
    CHECK(m.size() > 4);
    CHECK(m.find('.') == m.size() - 4);  // d.ddd
  }
  CHECK(rows == 2);
  CHECK_THAT(t, Catch::Matches("(.|\n)*rows add up to [0-9]+\\.[0-9]{3} ms/step; measured 4\\.000 ms/step(.|\n)*"));
}
