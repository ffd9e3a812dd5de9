// bin/bench's report logic (src/util/bench_report.h): median and spread, per-round ratios, the goals file,
// and the per-machine sections of docs/BENCHMARKS.md (other sections and hand-written text untouched,
// replacing twice gives the same document). Pure functions: fast and deterministic.
#include "src/util/bench_report.h"
#include "src/util/error.h"
#include "tests/helpers.h"

using namespace qat;
using namespace qat::bench;

TEST_CASE("bench median, spread and per-round ratios", "[bench]") {
  CHECK(median({3.0}) == 3.0);
  CHECK(median({5.0, 1.0, 3.0}) == 3.0);
  CHECK(median({4.0, 1.0, 3.0, 2.0}) == 2.5);  // even count: mean of the middle two
  CHECK_THROWS_AS(median({}), Error);
  Stats s = stats({2.0, 1.0, 4.0});
  CHECK(s.median == 2.0);
  CHECK(s.min == 1.0);
  CHECK(s.max == 4.0);
  CHECK(s.spread() == 1.5);  // (4 - 1) / 2
  // Round 2 is slow for both contenders (a load spike): the per-round ratio is still 2.
  Stats r = ratio_stats({2.0, 20.0, 2.2}, {1.0, 10.0, 1.1});
  CHECK(r.median == Approx(2.0));
  CHECK(r.spread() == Approx(0.0).margin(1e-12));
  CHECK_THROWS_AS(ratio_stats({1.0}, {1.0, 2.0}), Error);
}

TEST_CASE("bench goals: direction, attainment, file round trip", "[bench]") {
  Goal speed{"q4_0 decode / openblas, 1 thr", 5.0, 4.0, false, ""};
  Goal step{"QAT q4_0 step / FP32 step", 1.5, 1.3, true, "unreliable: cores busy"};
  CHECK(speed.met());
  CHECK(!step.met());
  CHECK(speed.attainment() == Approx(1.25));
  CHECK(step.attainment() == Approx(1.3 / 1.5));
  std::vector<Goal> back = parse_goals(goal_line(speed) + "\n" + goal_line(step));
  REQUIRE(back.size() == 2);
  CHECK(back[0].label == speed.label);
  CHECK(back[0].value == 5.0);
  CHECK(!back[0].at_most);
  CHECK(back[1].at_most);
  CHECK(back[1].note == step.note);
  CHECK_THROWS_AS(parse_goals("label\tx\t1\t>=\t\n"), Error);
  CHECK_THROWS_AS(parse_goals("label\t1\t1\t=\t\n"), Error);
  std::string t = goals_table({speed, step});
  CHECK(t.find("| q4_0 decode / openblas, 1 thr | 5.00x | >= 4.00x | met |") != std::string::npos);
  CHECK(t.find("MISSED") != std::string::npos);
}

TEST_CASE("bench machine key", "[bench]") {
  CHECK(machine_key("AMD EPYC 7763 64-Core Processor  ", "avx2") == "amd-epyc-7763-64-core-processor-avx2");
  CHECK(machine_key("", "") == "unknown");
}

TEST_CASE("bench section replacement leaves the rest of the document alone", "[bench]") {
  const std::string doc = "# Benchmarks\n\nHand-written notes.\n\n" + section_begin("m1") + "\nold m1\n" +
                          section_end("m1") + "\n\nMore notes.\n\n" + section_begin("m2") + "\nm2 body\n" +
                          section_end("m2") + "\ntrailer\n";
  std::string a = replace_section(doc, "m1", "new m1\nline 2");
  CHECK(a == "# Benchmarks\n\nHand-written notes.\n\n" + section_begin("m1") + "\nnew m1\nline 2\n" + section_end("m1") +
                 "\n\nMore notes.\n\n" + section_begin("m2") + "\nm2 body\n" + section_end("m2") + "\ntrailer\n");
  CHECK(replace_section(a, "m1", "new m1\nline 2") == a);  // idempotent

  // A new machine is appended after everything else; a second run replaces it in place.
  std::string b = replace_section(a, "m3", "m3 body\n");
  CHECK(b.substr(0, a.size()) == a);
  CHECK(b.substr(a.size()) == "\n" + section_begin("m3") + "\nm3 body\n" + section_end("m3") + "\n");
  CHECK(replace_section(b, "m3", "m3 body\n") == b);
  CHECK(replace_section(replace_section(b, "m3", "other"), "m3", "m3 body\n") == b);

  // A key that is a prefix of another key does not match it.
  std::string c = replace_section(b, "m", "m body");
  CHECK(c.find(section_begin("m1") + "\nnew m1") != std::string::npos);
  CHECK(replace_section(c, "m", "m body") == c);

  CHECK(replace_section("", "k", "x") == section_begin("k") + "\nx\n" + section_end("k") + "\n");
  CHECK_THROWS_AS(replace_section(section_begin("k") + "\nno end\n", "k", "x"), Error);
  CHECK_THROWS_AS(replace_section(section_end("k") + "\n" + section_begin("k") + "\n", "k", "x"), Error);
  CHECK_THROWS_AS(replace_section(section_end("k") + "\n", "k", "x"), Error);
}
