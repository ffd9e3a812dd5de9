// `bin/bench llama` (qat against llama.cpp's llama-bench on the same GGUF files): the pure report logic
// of src/util/bench_llama.h (llama-bench's JSON, the goals from the ladder's rows, the plot script), and
// the subcommand end to end on the `tiny` shape against a stand-in llama-bench (a script printing a
// fixed JSON answer): the table, the goals, the file cache and the errors a user can meet. No timing
// is asserted; the stand-in keeps the test independent of a llama.cpp build.
#include <sys/stat.h>

#include "src/util/bench_llama.h"
#include "src/util/error.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::bench;

namespace {

// llama-bench's -o json answer for `-p P -n G -r 1`, with the fields the parser reads.
std::string llama_json(int64_t P, int64_t G, double pp_ts, double tg_ts) {
  auto test = [](int64_t p, int64_t g, double ts) {
    return str("  {\"model_size\": 1029888, \"n_threads\": 1, \"n_prompt\": ", p, ", \"n_gen\": ", g,
               ", \"avg_ns\": 1000, \"avg_ts\": ", ts, ", \"samples_ts\": [ ", ts, " ]}");
  };
  return str("[\n", test(P, 0, pp_ts), ",\n", test(0, G, tg_ts), "\n]\n");
}

LadderRow row(const std::string& shape, int64_t bytes, int threads, double ours_tg, double llama_tg) {
  LadderRow r{shape, "q4_0", 1000, bytes, threads, {}, {}, {}, {}, ""};
  r.ours_pp = {200, 210, 190};
  r.llama_pp = {100, 100, 100};
  r.ours_tg = {ours_tg, ours_tg, ours_tg};
  r.llama_tg = {llama_tg, llama_tg, llama_tg};
  return r;
}

const Goal* find_goal(const std::vector<Goal>& goals, const std::string& label) {
  for (const Goal& g : goals)
    if (g.label == label) return &g;
  return nullptr;
}

}  // namespace

TEST_CASE("bench llama: llama-bench's JSON output", "[bench]") {
  const LlamaBenchRun r = parse_llama_bench_json(llama_json(512, 128, 300.5, 42.25), 512, 128);
  CHECK(r.pp_ts == 300.5);
  CHECK(r.tg_ts == 42.25);
  CHECK(r.model_size == 1029888);
  // A test of other token counts is not the one asked for.
  CHECK_THROWS_WITH(parse_llama_bench_json(llama_json(512, 64, 300, 40), 512, 128),
                    Catch::Contains("no generation test with n_prompt 0 and n_gen 128"));
  CHECK_THROWS_WITH(parse_llama_bench_json(llama_json(256, 128, 300, 40), 512, 128),
                    Catch::Contains("no prompt test with n_prompt 512"));
  CHECK_THROWS_WITH(parse_llama_bench_json("{}", 512, 128), Catch::Contains("expected a JSON array"));
  CHECK_THROWS_WITH(parse_llama_bench_json("[{\"n_prompt\": 512}]", 512, 128), Catch::Contains("n_gen"));
  CHECK_THROWS_AS(parse_llama_bench_json("build: 1234\n", 512, 128), Error);  // text output, not -o json
}

TEST_CASE("bench llama: goals from the ladder, the worst row deciding", "[bench]") {
  const int64_t llc = 64 << 20, big = 200 << 20;
  // Two shapes at 1 and 2 threads: `small` in cache (decode 2x llama.cpp), `big` beyond the LLC (1.1x).
  std::vector<LadderRow> rows = {row("small", 1 << 20, 1, 2000, 1000), row("small", 1 << 20, 2, 2400, 1200),
                                 row("big", big, 1, 55, 50), row("big", big, 2, 99, 90)};
  rows[3].note = "unreliable: cores busy";
  const std::vector<double> bw = {0, 20.0, 40.0};  // GB/s at 1 and 2 threads
  std::vector<std::string> missing;
  const std::vector<Goal> goals = ladder_goals(rows, bw, llc, &missing);
  CHECK(missing.empty());
  const Goal* d1 = find_goal(goals, "q4_0 decode / llama.cpp, 1 thr");
  REQUIRE(d1);
  CHECK(d1->value == Approx(1.1));
  CHECK(d1->goal == 1.2);
  CHECK_FALSE(d1->met());
  CHECK(d1->note == "worst: big");
  const Goal* d2 = find_goal(goals, "q4_0 decode / llama.cpp, 2 thr");
  REQUIRE(d2);
  CHECK(d2->note == "unreliable: cores busy; worst: big");  // the row's note first: the chart greys it
  const Goal* p1 = find_goal(goals, "q4_0 prefill / llama.cpp, 1 thr");
  REQUIRE(p1);
  CHECK(p1->value == Approx(2.0));
  CHECK(p1->met());
  // DRAM: only `big` counts; 99 tok/s x 200 MiB over 40 GB/s.
  const Goal* roof = find_goal(goals, "q4_0 decode GB/s / DRAM read, 2 thr");
  REQUIRE(roof);
  CHECK(roof->value == Approx(99.0 * double(big) * 1e-9 / 40.0));
  CHECK(roof->goal == 0.85);
  const Goal* scale = find_goal(goals, "q4_0 decode 2 thr / 1 thr, beyond the LLC");
  REQUIRE(scale);
  CHECK(scale->value == Approx(99.0 / 55.0));
  CHECK(scale->met());
  CHECK(goals.size() == 6);

  // Nothing beyond the LLC (a --quick run): the two DRAM goals are named as not measured.
  missing.clear();
  const std::vector<Goal> quick = ladder_goals({rows[0], rows[1]}, bw, llc, &missing);
  CHECK(quick.size() == 4);
  REQUIRE(missing.size() == 2);
  CHECK_THAT(missing[0], Catch::Contains("no 2-thread row with weights beyond the LLC (64 MiB)"));
}

TEST_CASE("bench llama: the plot script has every series and the roof", "[bench]") {
  std::vector<LadderRow> rows = {row("small", 1 << 20, 1, 2000, 1000), row("big", 200 << 20, 1, 55, 50)};
  rows.push_back(row("big", 200 << 20, 2, 99, 90));
  const std::string s = ladder_plot_script(rows, {0, 20.0, 40.0}, "/tmp/x.png", "t");
  for (const char* part : {"set output '/tmp/x.png'", "title 'qat q4_0 1 thr'", "title 'llama.cpp q4_0 1 thr'",
                           "title 'qat q4_0 2 thr'", "title 'llama.cpp q4_0 2 thr'", "20e9 / (x * 1048576)",
                           "DRAM roof 2 thr (40 GB/s)", "1 2000\n200 55\n", "set logscale xy"})
    CHECK_THAT(s, Catch::Contains(part));
}

TEST_CASE("bin/bench llama end to end against a stand-in llama-bench", "[bench_llama][cli]") {
  test::ScratchDir dir("bench-llama");
  // The stand-in: bin/llama-bench in a build-like directory, printing a fixed answer for -p 16 -n 8.
  const std::string answer = dir.put("answer.json", llama_json(16, 8, 1000, 100));
  make_dirs(dir.path + "/llama/bin");
  const std::string fake = dir.put("llama/bin/llama-bench", str("#!/bin/sh\ncat '", answer, "'\n"));
  REQUIRE(::chmod(fake.c_str(), 0755) == 0);
  const std::vector<std::string> argv = {"bin/bench", "llama", "--llama-cpp", dir.path + "/llama", "--shapes", "tiny",
                                         "--formats", "q4_0", "--threads", "1", "--rounds", "2", "--prompt", "16",
                                         "--gen", "8", "--cache", dir.path + "/cache", "--doc", dir.path + "/B.md",
                                         "--plot", dir.path + "/p.png"};
  // --prepare writes the files and measures nothing (a busy host makes them, a quiet one measures); it
  // needs no llama.cpp build.
  std::vector<std::string> prepare{"bin/bench", "llama"};
  prepare.insert(prepare.end(), argv.begin() + 4, argv.end() - 4);  // without --llama-cpp, --doc, --plot
  prepare.push_back("--prepare");
  test::ProcResult r = test::run_proc(prepare, dir.path + "/run0", {}, 300);
  INFO(r.what() << "\n" << r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("bench llama: wrote " + dir.path + "/cache/tiny-"));
  CHECK_THAT(r.out, !Catch::Contains("round 1/"));
  CHECK_FALSE(file_exists(dir.path + "/B.md"));
  r = test::run_proc(argv, dir.path + "/run1", {}, 300);
  INFO(r.what() << "\n" << r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, !Catch::Contains("bench llama: wrote " + dir.path + "/cache"));  // made by --prepare
  CHECK_THAT(r.out, Catch::Contains("| tiny | 0.1M | q4_0 |"));
  CHECK_THAT(r.out, Catch::Contains("| q4_0 decode / llama.cpp, 1 thr |"));
  CHECK_THAT(r.out, Catch::Contains("| q4_0 prefill / llama.cpp, 1 thr |"));
  CHECK_THAT(r.out, Catch::Contains("round 2/2 tiny q4_0 1 thr"));
  CHECK_THAT(r.out, Catch::Contains("llama.cpp 1000.0 | tg8 qat"));  // the stand-in's figures were read
  const std::string doc = read_file(dir.path + "/B.md");
  CHECK_THAT(doc, Catch::Contains("<!-- bench:begin "));
  CHECK_THAT(doc, Catch::Contains("-llama -->"));
  CHECK_THAT(doc, Catch::Contains("| tiny | 0.1M | q4_0 |"));
  // A rerun reuses the cached file.
  r = test::run_proc(argv, dir.path + "/run2", {}, 300);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, !Catch::Contains("bench llama: wrote " + dir.path + "/cache"));

  // Errors: one line, non-zero.
  auto error = [&](std::vector<std::string> args, const std::vector<std::string>& env, const std::string& part) {
    test::ProcResult e = test::run_proc(args, dir.path + "/err", env, 120);
    INFO(e.what());
    CHECK(e.code != 0);
    CHECK(e.signal == 0);
    CHECK(test::lines_of(e.err).size() == 1);
    CHECK_THAT(e.err, Catch::Contains(part));
  };
  error({"bin/bench", "llama"}, {"LLAMA_CPP="}, "no llama.cpp build: give --llama-cpp DIR or LLAMA_CPP=DIR");
  error({"bin/bench", "llama", "--llama-cpp", dir.path + "/none"}, {}, "no executable bin/llama-bench");
  std::vector<std::string> bad = argv;
  bad[7] = "q5_1";  // --formats
  error(bad, {}, "--formats: expected q4_0 or q8_0, got 'q5_1'");
  bad = argv;
  bad[5] = "7b";  // --shapes
  error(bad, {}, "--shapes: unknown shape '7b'");
  write_file_atomic(fake, "#!/bin/sh\necho 'main: error: failed to load model' >&2\nexit 1\n");
  REQUIRE(::chmod(fake.c_str(), 0755) == 0);
  error(argv, {}, "failed to load model");
}
