// Faults lose nothing (issue 8): bin/train runs as a child process (tiny preset, synthetic corpus, a
// checkpoint after every step) and dies by SIGKILL, at random moments and at each named point of a
// checkpoint write (the QAT_CRASH_AT hook, src/io/file.h). After every kill the checkpoint directory
// must load (model, optimizer and state of the same step, config matching the tensors, the metrics up
// to that step as in an uninterrupted run); `--resume` then ends bit-identical to the uninterrupted run
// (model.safetensors, optimizer.safetensors, every metrics line) with no temp file or directory left.
// Last, in-process: save_checkpoint refuses a NaN / inf parameter or AdamW moment and keeps the old one.
// Code under test: models/checkpoint.cpp, models/train/trainer.cpp, src/io/file.cpp, data/dataset.cpp.
#include <dirent.h>
#include <signal.h>

#include <random>

#include "data/tokenizer.h"
#include "models/transformer.h"
#include "models/checkpoint.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

constexpr int kSteps = 12;

std::vector<std::string> train_args(const std::string& dir, const std::string& out, bool resume) {
  if (resume)  // the cache directory is machine-local: not taken from state.json, given again
    return {"bin/train", "--resume", "--out", out, "--threads", "1", "--cache-dir", dir + "/cache", "--quiet", "--no-plot"};
  return {"bin/train", "--data", dir + "/corpus.txt", "--preset", "tiny", "--vocab", "300", "--ctx", "16",
          "--batch", "4", "--steps", std::to_string(kSteps), "--lr", "3e-3", "--save-every", "1", "--eval-every", "4",
          "--eval-windows", "2", "--threads", "1", "--seed", "7", "--out", out, "--cache-dir", dir + "/cache",
          "--quiet", "--no-plot"};
}

// metrics.jsonl without the timing fields: "step N loss L lr R grad_norm G" or "step N val_loss V bpb B",
// the numbers as the file prints them (shortest round-trip form, so equal strings = equal bits).
// A torn last line (a process killed inside append_line) is left out when `allow_torn_tail`.
std::vector<std::string> metric_keys(const std::string& path, int64_t max_step = INT64_MAX, bool allow_torn_tail = false) {
  std::vector<std::string> keys;
  if (!file_exists(path)) return keys;
  std::vector<std::string> lines = lines_of(read_file(path));
  for (size_t i = 0; i < lines.size(); i++) {
    Json j;
    try {
      j = Json::parse(lines[i]);
    } catch (const Error& e) {
      if (allow_torn_tail && i + 1 == lines.size()) break;
      FAIL(path << " line " << i + 1 << " is not JSON (" << e.what() << "): " << lines[i]);
    }
    int64_t step = j.at("step").as_int();
    if (step > max_step) continue;
    std::string k = "step " + std::to_string(step);
    for (const char* f : {"loss", "lr", "grad_norm", "val_loss", "bpb", "val_tokens"})
      if (const Json* v = j.find(f)) k += std::string(" ") + f + " " + v->dump();
    keys.push_back(k);
  }
  return keys;
}

// Names in `dir` that a finished run must not leave behind: write_file_atomic's "<name>.tmp.<pid>".
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).find(".tmp.") != std::string::npos) out.push_back(dir + "/" + e->d_name);
    ::closedir(d);
  }
  return out;
}

// The uninterrupted run, made once: its directory and metrics.
struct Reference {
  ScratchDir dir{"faults-ref"};
  std::string model, optimizer;
  std::vector<std::string> metrics;
  double seconds = 0;
  Reference() {
    dir.put("corpus.txt", synthetic_corpus());
    double t0 = monotonic_s();
    ProcResult r = run_proc(train_args(dir.path, dir.path + "/run", false), dir.path + "/log");
    seconds = monotonic_s() - t0;
    if (r.code != 0) fail("the reference run failed: ", r.what());
    model = read_file(dir.path + "/run/model.safetensors");
    optimizer = read_file(dir.path + "/run/optimizer.safetensors");
    metrics = metric_keys(dir.path + "/run/metrics.jsonl");
  }
};
const Reference& reference() {
  static Reference ref;
  return ref;
}

// Checks the checkpoint in `out` after a kill; returns its step (-1: no checkpoint yet, allowed only
// while none was ever completed: `last_step` < 0).
int64_t check_checkpoint(const std::string& out, int64_t last_step) {
  if (!file_exists(out + "/state.json")) {
    REQUIRE(last_step < 0);  // once written, a checkpoint never disappears
    REQUIRE_FALSE(file_exists(out + "/model.safetensors"));
    return -1;
  }
  LoadedCheckpoint ck = load_checkpoint(out);  // every file parses; no non-finite tensor
  REQUIRE(ck.optimizer);
  int64_t step = ck.state.at("step").as_int();
  INFO("checkpoint at step " << step);
  REQUIRE(step >= std::max<int64_t>(last_step, 1));
  REQUIRE(step <= kSteps);
  // model, optimizer and state of the same step (no step is skipped in this run: moments count steps)
  REQUIRE(ck.optimizer->metadata.at("step") == std::to_string(step));
  Transformer model(ck.config);
  load_params(model.params, ck.weights, out + "/model.safetensors");  // config.json matches the tensors
  AdamW adam(model.params, AdamWConfig{});
  load_optimizer(adam, model.params, *ck.optimizer);
  REQUIRE(Tokenizer::load(ck.tokenizer_path).vocab_size() == ck.config.vocab);
  // The history up to the checkpoint is the uninterrupted run's (later lines are dropped on resume).
  std::vector<std::string> ref;
  for (const std::string& k : reference().metrics)
    if (std::stoll(k.substr(5)) <= step) ref.push_back(k);
  REQUIRE(metric_keys(out + "/metrics.jsonl", step, true) == ref);
  return step;
}

// The finished run equals the reference, and nothing temporary is left.
void check_final(const std::string& dir, const std::string& out) {
  const Reference& ref = reference();
  REQUIRE(read_file(out + "/model.safetensors") == ref.model);
  REQUIRE(read_file(out + "/optimizer.safetensors") == ref.optimizer);
  REQUIRE(metric_keys(out + "/metrics.jsonl") == ref.metrics);
  REQUIRE(check_checkpoint(out, kSteps) == kSteps);
  REQUIRE_FALSE(file_exists(out + ".ckpt-tmp"));
  REQUIRE_FALSE(file_exists(out + ".ckpt-old"));
  REQUIRE_FALSE(file_exists(out + ".lock"));  // a killed run's lock file is taken over and removed
  REQUIRE(temp_files(out) == std::vector<std::string>{});
  REQUIRE(temp_files(dir + "/cache") == std::vector<std::string>{});
}

}  // namespace

TEST_CASE("SIGKILL at each point of a checkpoint write: nothing torn, resume bit-identical", "[faults]") {
  (void)reference();
  ScratchDir dir("faults-points");
  dir.put("corpus.txt", synthetic_corpus());
  const std::string out = dir.path + "/run";
  // Each row: the crash point (QAT_CRASH_AT: the n-th time the process reaches it), whether the process
  // resumes, the checkpoint step it must leave (-1: none yet) and what else the crash leaves behind.
  enum Leaves { kCacheTemp, kCkptTmp, kTornMetrics, kOutTemp, kNothing };
  struct Row {
    const char* crash;
    bool resume;
    int64_t step;
    Leaves leaves;
  };
  const Row rows[] = {
      {"write_file_atomic:1", false, -1, kCacheTemp},   // the token cache written, not yet renamed
      {"checkpoint_partial:1", false, -1, kCkptTmp},    // the first checkpoint half built
      {"checkpoint_swap:3", false, 2, kCkptTmp},        // step 3 complete in <out>.ckpt-tmp, not swapped in
      {"replace_directory:2", true, 4, kCkptTmp},       // swapped: <out>.ckpt-tmp holds the old step 3
      {"append_line:2", true, 5, kTornMetrics},         // half of step 6's metrics line written
      {"write_file_atomic:1", true, 5, kOutTemp},       // truncating metrics.jsonl on resume, not renamed
      {"replace_directory:7", true, kSteps, kNothing},  // the final checkpoint swapped in, then killed
  };
  int64_t last = -1;
  for (size_t i = 0; i < std::size(rows); i++) {
    const Row& row = rows[i];
    INFO("row " << i << ": QAT_CRASH_AT=" << row.crash << (row.resume ? " --resume" : " (fresh run)"));
    ProcResult r = run_proc(train_args(dir.path, out, row.resume), dir.path + "/log",
                            {std::string("QAT_CRASH_AT=") + row.crash});
    INFO(r.what());
    REQUIRE(r.signal == SIGKILL);
    int64_t step = check_checkpoint(out, last);
    REQUIRE(step == row.step);
    last = step;
    if (row.leaves == kCacheTemp) REQUIRE(temp_files(dir.path + "/cache").size() == 1);
    if (row.leaves == kCkptTmp) REQUIRE(is_directory(out + ".ckpt-tmp"));
    if (row.leaves == kTornMetrics) REQUIRE(read_file(out + "/metrics.jsonl").back() != '\n');
    if (row.leaves == kOutTemp) REQUIRE(temp_files(out).size() == 1);
  }
  ProcResult r = run_proc(train_args(dir.path, out, true), dir.path + "/log");
  INFO(r.what());
  REQUIRE(r.code == 0);
  check_final(dir.path, out);
}

TEST_CASE("SIGKILL at random moments: the checkpoint always loads, resume bit-identical", "[faults]") {
  const Reference& ref = reference();
  ScratchDir dir("faults-random");
  dir.put("corpus.txt", synthetic_corpus());
  const std::string out = dir.path + "/run";
  // Kill moments spread uniformly over an uninterrupted run's length: startup (tokenizer, cache), steps,
  // evaluations and checkpoint writes (most of a step's time here: every step saves). A resumed run has
  // less left to do, so it often ends before its kill: then a new round starts from scratch, until
  // kKills kills. Seeded, so a failure reproduces (up to the timing of the machine).
  std::mt19937_64 rng(20261125);
  std::uniform_real_distribution<double> delay(0.0, ref.seconds);
  const int kKills = 30;
  int kills = 0, runs = 0, rounds = 0, tmp_seen = 0, none_yet = 0;
  while (kills < kKills) {
    rounds++;
    remove_tree(out);
    remove_tree(out + ".ckpt-tmp");
    remove_tree(dir.path + "/cache");
    for (int64_t last = -1;;) {
      bool resume = last >= 0;
      double d = delay(rng);
      INFO("round " << rounds << ", run " << runs << (resume ? " (--resume)" : " (fresh)") << ", kill after " << d << " s");
      Child c(train_args(dir.path, out, resume), dir.path + "/log");
      runs++;
      sleep_s(d);
      c.kill();
      ProcResult r = c.wait(60);
      INFO(r.what());
      if (r.signal != SIGKILL) {
        REQUIRE(r.code == 0);
        break;
      }
      kills++;
      tmp_seen += is_directory(out + ".ckpt-tmp");
      last = check_checkpoint(out, last);
      none_yet += last < 0;
    }
    check_final(dir.path, out);
  }
  // How the kills fell (shown with -s): before the first checkpoint, and inside a checkpoint write.
  INFO(kills << " kills in " << runs << " runs, " << rounds << " rounds; " << none_yet << " before the first checkpoint, "
             << tmp_seen << " left a .ckpt-tmp directory");
  SUCCEED();
}

TEST_CASE("a non-finite parameter or moment is never written: the previous checkpoint stays", "[faults]") {
  ScratchDir dir("faults-nonfinite");
  const std::string out = dir.path + "/ckpt";
  ModelConfig cfg = ModelConfig::preset_named("tiny");
  cfg.vocab = 300;
  Transformer model(cfg);
  model.init_weights(3);
  AdamW adam(model.params, AdamWConfig{});
  save_checkpoint(out, {&cfg, Json(), &model.params, &adam, "", Json()});
  const std::string good = read_file(out + "/model.safetensors");
  const std::string good_opt = read_file(out + "/optimizer.safetensors");

  model.params[2].f32()[5] = NAN;
  REQUIRE_THROWS_WITH(save_checkpoint(out, {&cfg, Json(), &model.params, &adam, "", Json()}),
                      Catch::Contains("refusing to write a checkpoint") && Catch::Contains(model.params.info(2).name) &&
                          Catch::Contains("1 non-finite values"));
  model.params[2].f32()[5] = 0.5f;
  adam.exp_avg_sq().f32()[7] = INFINITY;
  REQUIRE_THROWS_WITH(save_checkpoint(out, {&cfg, Json(), &model.params, &adam, "", Json()}),
                      Catch::Contains("refusing to write a checkpoint") && Catch::Contains("exp_avg_sq."));
  REQUIRE(read_file(out + "/model.safetensors") == good);
  REQUIRE(read_file(out + "/optimizer.safetensors") == good_opt);
  REQUIRE_FALSE(file_exists(out + ".ckpt-tmp"));
  load_checkpoint(out);
}
