// bin/train's options and what a checkpoint may say about them (issue 15): the loss plot runs with an
// argument vector (no shell) from any working directory and draws periodic and final evaluations as
// separate, plainly labelled series; a resumed state.json is held to the ranges of the flags, to the
// optimizer's own step and to the corpus it was trained on; --profile-json is checked before the run;
// --out and, with --init, --steps / --lr have defaults that do not overwrite or mis-train a model.
// Every run is a child process (tests/proc.h), tiny preset, synthetic corpus.
// Code under test: models/train/trainer.cpp, tools/train.cpp, tools/plot, src/util/profile.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "src/io/json.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// The absolute path of a binary in bin/ (for runs started in another working directory).
std::string bin_path(const std::string& name) {
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  return std::string(cwd) + "/bin/" + name;
}

// bin/train's arguments for a tiny run of `steps` steps on `corpus`, into `out` (nothing when empty).
std::vector<std::string> tiny_run(const std::string& corpus, const std::string& out, const std::string& cache,
                                  int steps) {
  std::vector<std::string> a{bin_path("train"), "--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "16",
                             "--batch", "2", "--steps", std::to_string(steps), "--eval-every", "2",
                             "--eval-windows", "2", "--threads", "1", "--cache-dir", cache};
  if (!out.empty()) a.insert(a.end(), {"--out", out});
  return a;
}

// Runs argv with the working directory `cwd` (GNU env -C: no shell involved).
ProcResult run_in(const std::string& cwd, std::vector<std::string> argv, const std::string& log,
                  const std::vector<std::string>& env = {}) {
  argv.insert(argv.begin(), {"/usr/bin/env", "-C", cwd});
  return run_proc(argv, log, env, 120);
}

// A trained tiny checkpoint (4 steps, an evaluation at step 2 and the final one), made once.
struct Base {
  ScratchDir dir{"train-options"};
  std::string corpus, ckpt, cache;
  Base() {
    corpus = dir.put("corpus.txt", synthetic_corpus(120));
    ckpt = dir.path + "/base";
    cache = dir.path + "/cache";
    ProcResult r = run_proc(tiny_run(corpus, ckpt, cache, 4), dir.path + "/base-log");
    if (r.code != 0) fail("fixture: bin/train failed: ", r.what());
  }
  // A copy of the checkpoint whose state.json is `edit`ed (its "options" object too).
  std::string with_state(const std::string& name, const std::function<void(Json& st, Json& options)>& edit) const {
    std::string d = dir.path + "/" + name;
    remove_tree(d);
    make_dirs(d);
    for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors", "metrics.jsonl"})
      write_file_atomic(d + "/" + f, read_file(ckpt + "/" + f));
    Json st = Json::parse(read_file(ckpt + "/state.json"));
    Json options = st.at("options");
    edit(st, options);
    st.set("options", options);
    write_file_atomic(d + "/state.json", st.dump(2));
    return d;
  }
};
const Base& base() {
  static Base b;
  return b;
}

// Exit `code`, exactly one line on stderr, holding every one of `parts`.
void expect_one_line(const ProcResult& r, int code, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  CHECK(r.code == code);
  CHECK(!r.err.empty());
  if (r.err.empty()) return;  // every case of a table reports, not only the first
  CHECK(r.err.find('\n') == r.err.size() - 1);
  for (const std::string& p : parts) CHECK_THAT(r.err, Catch::Contains(p));
}

int g_log = 0;
std::string log_name() { return base().dir.path + "/log" + std::to_string(g_log++); }

}  // namespace

TEST_CASE("--out with $(...), spaces and quotes: no command runs, loss.png is drawn", "[train_options]") {
  const Base& b = base();
  const std::string pwned = b.dir.path + "/PWNED";
  // The command substitutions would run in a shell; the quotes would end a shell's or gnuplot's string.
  for (const std::string& name : {"run $(touch " + pwned + "1) `touch " + pwned + "2`", std::string("run it's \"q4_0\"")}) {
    const std::string out = b.dir.path + "/" + name;
    ProcResult r = run_proc(tiny_run(b.corpus, out, b.cache, 2), log_name());
    INFO(name << ": " << r.what());
    REQUIRE(r.code == 0);
    CHECK_FALSE(file_exists(pwned + "1"));
    CHECK_FALSE(file_exists(pwned + "2"));
    CHECK(file_exists(out + "/loss.png"));
    CHECK_THAT(r.err, !Catch::Contains("not drawn"));
  }
}

TEST_CASE("tools/plot: a directory named like a gnuplot pipe ('|cmd') is a name", "[train_options]") {
  const Base& b = base();
  ScratchDir cwd("train-options-pipe");
  const std::string name = "|touch PWNED ";  // relative: gnuplot would run `set output '|touch PWNED /loss.png'`
  make_dirs(cwd.path + "/" + name);
  write_file_atomic(cwd.path + "/" + name + "/metrics.jsonl", read_file(b.ckpt + "/metrics.jsonl"));
  ProcResult r = run_in(cwd.path, {bin_path("../tools/plot"), name}, log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_FALSE(file_exists(cwd.path + "/PWNED"));
  CHECK(file_exists(cwd.path + "/" + name + "/loss.png"));
}

TEST_CASE("bin/train started outside the repository root still draws loss.png", "[train_options]") {
  const Base& b = base();
  ScratchDir elsewhere("train-options-cwd");
  ProcResult r = run_in(elsewhere.path, tiny_run(b.corpus, elsewhere.path + "/run", b.cache, 2), log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(file_exists(elsewhere.path + "/run/loss.png"));
  CHECK_THAT(r.err, !Catch::Contains("not drawn"));
}

TEST_CASE("a binary without tools/plot beside it: one note, the run still succeeds", "[train_options]") {
  const Base& b = base();
  ScratchDir elsewhere("train-options-noplot");
  make_dirs(elsewhere.path + "/bin");
  const std::string train = elsewhere.path + "/bin/train";
  write_file_atomic(train, read_file(bin_path("train")));
  REQUIRE(::chmod(train.c_str(), 0755) == 0);
  std::vector<std::string> a = tiny_run(b.corpus, elsewhere.path + "/run", b.cache, 2);
  a[0] = train;
  ProcResult r = run_proc(a, log_name());  // the working directory is the repository: its tools/plot is not used
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("note: loss.png not drawn: " + elsewhere.path + "/bin/../tools/plot: No such file"));
  CHECK(file_exists(elsewhere.path + "/run/model.safetensors"));
  CHECK_FALSE(file_exists(elsewhere.path + "/run/loss.png"));
}

TEST_CASE("the loss plot: periodic and final evaluations are separate series, text is not enhanced", "[train_options]") {
  const Base& b = base();
  // metrics.jsonl says which evaluation saw what: the first --eval-windows windows, or the whole split.
  int sample = 0, all = 0;
  for (const std::string& line : lines_of(read_file(b.ckpt + "/metrics.jsonl"))) {
    Json j = Json::parse(line);
    if (!j.contains("val_loss")) continue;
    const std::string split = j.at("val_split").as_string();
    if (split == "sample") {
      sample++;
      CHECK(j.at("val_windows").as_int() == 2);
    } else {
      all++;
      CHECK(split == "all");
      CHECK(j.at("step").as_int() == 4);
    }
  }
  CHECK(sample == 1);
  CHECK(all == 1);
  // Drawn as SVG, the labels are text to read: the run's name with its underscore (not a subscript:
  // `q4_0` used to render as q4 with a subscript 0), and one label per kind of evaluation.
  const std::string named = b.dir.path + "/run-q4_0";
  remove_tree(named);
  make_dirs(named);
  write_file_atomic(named + "/metrics.jsonl", read_file(b.ckpt + "/metrics.jsonl"));
  const std::string svg = b.dir.path + "/plot.svg";
  ProcResult r = run_proc({"tools/plot", named, svg}, log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  const std::string text = read_file(svg);
  CHECK_THAT(text, Catch::Contains(">qat: run-q4_0<"));
  CHECK_THAT(text, Catch::Contains(">val loss (first 2 windows)<"));
  CHECK_THAT(text, Catch::Contains(">val loss (whole split, final)<"));
  CHECK_THAT(text, Catch::Contains(">train loss<"));
}

TEST_CASE("--resume: every field of state.json within its flag's range, the optimizer's step matching", "[train_options]") {
  const Base& b = base();
  auto resume = [&](const std::string& d) {
    return run_proc({bin_path("train"), "--resume", "--out", d, "--steps", "5", "--threads", "1", "--cache-dir", b.cache,
                     "--quiet", "--no-plot"},
                    log_name());
  };
  struct Case {
    const char* name;
    std::function<void(Json&, Json&)> edit;
    std::vector<std::string> parts;  // besides the state.json path
  };
  const std::vector<Case> cases = {
      {"neg-step", [](Json& st, Json&) { st.set("step", int64_t(-5)); }, {"step is -5", "[0, 100000000]"}},
      {"neg-streak", [](Json& st, Json&) { st.set("nonfinite_streak", int64_t(-1000000)); }, {"nonfinite_streak is -1000000"}},
      {"neg-tokens", [](Json& st, Json&) { st.set("tokens_seen", int64_t(-1)); }, {"tokens_seen is -1"}},
      {"neg-seconds", [](Json& st, Json&) { st.set("train_seconds", -1.0); }, {"train_seconds is -1"}},
      {"big-lr", [](Json&, Json& o) { o.set("lr", 1e9); }, {"options.lr is 1e+09", "--lr [0, 10]"}},
      {"neg-steps", [](Json&, Json& o) { o.set("steps", int64_t(-5)); }, {"options.steps is -5", "--steps"}},
      {"zero-batch", [](Json&, Json& o) { o.set("batch", int64_t(0)); }, {"options.batch is 0", "--batch [1, 65536]"}},
      {"neg-noise", [](Json&, Json& o) { o.set("qat_noise", -2.0); }, {"options.qat_noise is -2", "--qat-noise"}},
      {"max-nonfinite", [](Json&, Json& o) { o.set("max_nonfinite", int64_t(0)); }, {"options.max_nonfinite is 0"}},
      {"bad-preset", [](Json&, Json& o) { o.set("preset", "huge"); }, {"huge"}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string d = b.with_state(c.name, c.edit);
    std::vector<std::string> parts = c.parts;
    parts.push_back(d + "/state.json");
    expect_one_line(resume(d), 1, parts);
  }
  // The step must be the optimizer's: AdamW's bias correction counts its own steps.
  const std::string behind = b.with_state("behind", [](Json& st, Json&) { st.set("step", int64_t(2)); });
  expect_one_line(resume(behind), 1, {behind + "/optimizer.safetensors", "step 4 does not match state.json's step 2"});
  // The untouched copy resumes: the checks pass what training writes.
  ProcResult r = resume(b.with_state("intact", [](Json&, Json&) {}));
  INFO(r.what());
  CHECK(r.code == 0);
}

TEST_CASE("--resume: a cache_dir in state.json does not choose where the run writes", "[train_options]") {
  const Base& b = base();
  ScratchDir cwd("train-options-cache");
  const std::string evil = cwd.path + "/evil";
  const std::string d = b.with_state("cache-dir", [&](Json&, Json& o) { o.set("cache_dir", evil); });
  ProcResult r = run_in(cwd.path, {bin_path("train"), "--resume", "--out", d, "--steps", "5", "--threads", "1", "--quiet",
                                   "--no-plot"},
                        log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_FALSE(file_exists(evil));
  CHECK(file_exists(cwd.path + "/runs/cache"));  // the default, relative to where it runs
}

TEST_CASE("--resume after a skipped non-finite step: the optimizer's step still matches", "[train_options]") {
  const Base& b = base();
  const std::string out = b.dir.path + "/nan-run";
  std::vector<std::string> a = tiny_run(b.corpus, out, b.cache, 3);
  a.insert(a.end(), {"--quiet", "--no-plot"});
  ProcResult r = run_proc(a, log_name(), {"QAT_INJECT_NAN=1"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  Json st = Json::parse(read_file(out + "/state.json"));
  CHECK(st.at("skipped_steps").as_int() == 1);
  r = run_proc({bin_path("train"), "--resume", "--out", out, "--steps", "4", "--threads", "1", "--cache-dir", b.cache,
                "--quiet", "--no-plot"},
               log_name());
  INFO(r.what());
  CHECK(r.code == 0);
}

TEST_CASE("--resume refuses a corpus that changed since the checkpoint", "[train_options]") {
  const Base& b = base();
  const std::string corpus = b.dir.put("changing.txt", synthetic_corpus(120));
  const std::string out = b.dir.path + "/corpus-run";
  std::vector<std::string> a = tiny_run(corpus, out, b.cache, 2);
  a.insert(a.end(), {"--quiet", "--no-plot"});
  ProcResult r = run_proc(a, log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  const std::string recorded = Json::parse(read_file(out + "/state.json")).at("corpus_hash").as_string();
  b.dir.put("changing.txt", synthetic_corpus(121));  // one more document
  r = run_proc({bin_path("train"), "--resume", "--out", out, "--steps", "3", "--threads", "1", "--cache-dir", b.cache,
                "--quiet", "--no-plot"},
               log_name());
  expect_one_line(r, 1, {"--resume: the corpus " + corpus + " has changed", out + "/state.json recorded " + recorded});
  CHECK(Json::parse(read_file(out + "/state.json")).at("step").as_int() == 2);  // the checkpoint is untouched
}

TEST_CASE("--profile-json to an unwritable path fails before the run", "[train_options]") {
  const Base& b = base();
  const std::string file = b.dir.put("a-file", "x\n");
  const std::string out = b.dir.path + "/profile-run";
  std::vector<std::string> a = tiny_run(b.corpus, out, b.cache, 4);
  a.insert(a.end(), {"--quiet", "--no-plot", "--profile-json", file + "/trace.json"});
  expect_one_line(run_proc(a, log_name()), 1, {"--profile-json: cannot write " + file + "/trace.json"});
  CHECK_FALSE(file_exists(out + "/state.json"));  // nothing ran
  a.back() = b.dir.path;                           // a directory
  expect_one_line(run_proc(a, log_name()), 1, {"--profile-json: cannot write " + b.dir.path + ": it is a directory"});
}

TEST_CASE("--out defaults to runs/<preset>, and to <CKPT>-<scheme> with --init", "[train_options]") {
  const Base& b = base();
  ScratchDir cwd("train-options-out");
  std::vector<std::string> a = tiny_run(b.corpus, "", b.cache, 1);
  a.insert(a.end(), {"--quiet", "--no-plot"});
  ProcResult r = run_in(cwd.path, a, log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(file_exists(cwd.path + "/runs/tiny/state.json"));
  CHECK_FALSE(file_exists(cwd.path + "/runs/small"));
  r = run_in(cwd.path, {bin_path("train"), "--init", "runs/tiny/", "--qat", "q8_0", "--data", b.corpus, "--ctx", "16",
                        "--batch", "2", "--steps", "1", "--threads", "1", "--cache-dir", b.cache, "--quiet", "--no-plot"},
             log_name());
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(file_exists(cwd.path + "/runs/tiny-q8_0/state.json"));
}

TEST_CASE("--init without --steps / --lr: the fine-tuning recipe, and a line saying so", "[train_options]") {
  const Base& b = base();
  // A start of 10 steps: fine-tuning defaults to 20% of them (2) at lr 2e-4.
  const std::string start = b.dir.path + "/start10", out = b.dir.path + "/ft";
  std::vector<std::string> a = tiny_run(b.corpus, start, b.cache, 10);
  a.insert(a.end(), {"--quiet", "--no-plot"});
  ProcResult r = run_proc(a, log_name());
  REQUIRE(r.code == 0);
  r = run_proc({bin_path("train"), "--init", start, "--qat", "q4_0", "--data", b.corpus, "--ctx", "16", "--batch", "2",
                "--threads", "1", "--cache-dir", b.cache, "--out", out, "--no-plot"},
               log_name(), {}, 300);
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("defaults: --steps 2 (fine-tuning: 20% of the start's 10 steps), --lr 0.0002"));
  Json options = Json::parse(read_file(out + "/state.json")).at("options");
  CHECK(options.at("steps").as_int() == 2);
  CHECK(options.at("lr").as_double() == 2e-4);
}
