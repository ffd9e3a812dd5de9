// Training runs in-process on a small synthetic corpus: resume is bit-identical to an uninterrupted run,
// the whole run is bit-identical at 1, 2, 3 and 4 threads, non-finite steps are skipped then abort, and
// a failed checkpoint write leaves the previous checkpoint intact.
#include <unistd.h>

#include <cstdlib>

#include "src/io/file.h"
#include "models/checkpoint.h"
#include "models/train/trainer.h"
#include "tests/helpers.h"

using namespace qat;

namespace {
std::string test_dir(const std::string& name) {
  std::string d = "/tmp/qat-test-" + name + "-" + std::to_string(::getpid());
  remove_tree(d);
  make_dirs(d);
  return d;
}

// A corpus of 300 short documents in fortune format.
std::string write_corpus(const std::string& dir) {
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from",
                         "home", "while", "it", "rained", "all", "day", "long", "in", "town", "quietly"};
  std::string text;
  uint64_t x = 12345;
  for (int d = 0; d < 300; d++) {
    int n = 6 + int(x % 9);
    for (int i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      text += words[(x >> 33) % 22];
      text += i + 1 < n ? " " : ".\n";
    }
    text += "%\n";
  }
  std::string path = dir + "/corpus.txt";
  write_file_atomic(path, text);
  return path;
}

TrainOptions small_run(const std::string& dir) {
  TrainOptions o;
  o.data = write_corpus(dir);
  o.preset = "tiny";
  o.vocab = 300;
  o.ctx = 16;
  o.batch = 4;
  o.accum = 2;
  o.steps = 8;
  o.lr = 3e-3;
  o.eval_every = 4;
  o.eval_windows = 4;
  o.out = dir + "/run";
  o.cache_dir = dir + "/cache";
  o.quiet = true;
  o.plot = false;
  o.threads = 1;
  return o;
}

std::string file_bytes(const std::string& p) { return read_file(p); }
}  // namespace

TEST_CASE("resume continues bit-identically", "[training][resume]") {
  std::string dir = test_dir("resume");
  TrainOptions o = small_run(dir);
  TrainSummary full = train(o);
  REQUIRE(full.losses.size() == 8);
  std::string full_model = file_bytes(o.out + "/model.safetensors");
  std::string full_opt = file_bytes(o.out + "/optimizer.safetensors");

  o.out = dir + "/run2";
  set_stop_after(3);
  TrainSummary first = train(o);
  REQUIRE(first.interrupted);
  REQUIRE(first.losses.size() == 3);
  o.resume = true;
  TrainSummary rest = train(o);
  REQUIRE(rest.losses.size() == 5);
  for (size_t i = 0; i < 8; i++) {
    float resumed = i < 3 ? first.losses[i] : rest.losses[i - 3];
    INFO("step " << i << ": " << resumed << " vs " << full.losses[i]);
    REQUIRE(f32_bits(resumed) == f32_bits(full.losses[i]));
  }
  REQUIRE(file_bytes(o.out + "/model.safetensors") == full_model);
  REQUIRE(file_bytes(o.out + "/optimizer.safetensors") == full_opt);
  // metrics.jsonl holds each step once, even though steps after the checkpoint were not lost.
  std::string metrics = file_bytes(o.out + "/metrics.jsonl");
  REQUIRE(metrics.find("{\"step\":3,\"loss\"") != std::string::npos);
  REQUIRE(metrics.find("{\"step\":3,\"loss\"") == metrics.rfind("{\"step\":3,\"loss\""));
  remove_tree(dir);
}

TEST_CASE("a training run is bit-identical at 1, 2, 3 and 4 threads", "[training][determinism]") {
  std::string dir = test_dir("threads");
  TrainOptions o = small_run(dir);
  o.steps = 4;
  o.batch = 8;
  std::string ref;
  std::vector<float> ref_losses;
  for (int threads : {1, 2, 3, 4}) {
    o.threads = threads;
    o.out = dir + "/run" + std::to_string(threads);
    TrainSummary s = train(o);
    std::string model = file_bytes(o.out + "/model.safetensors");
    if (threads == 1) {
      ref = model;
      ref_losses = s.losses;
      continue;
    }
    INFO("threads " << threads);
    for (size_t i = 0; i < s.losses.size(); i++) REQUIRE(f32_bits(s.losses[i]) == f32_bits(ref_losses[i]));
    REQUIRE(model == ref);
  }
  set_num_threads(0);
  remove_tree(dir);
}

TEST_CASE("non-finite steps are skipped, then training aborts with the checkpoint intact", "[training][nan]") {
  std::string dir = test_dir("nan");
  TrainOptions o = small_run(dir);
  o.steps = 6;
  o.save_every = 2;
  ::setenv("QAT_INJECT_NAN", "2", 1);
  TrainSummary s = train(o);  // one bad step: skipped with a warning
  REQUIRE(s.steps == 6);
  LoadedCheckpoint ck = load_checkpoint(o.out);  // rejects non-finite tensors: none were written
  REQUIRE(ck.state.at("step").as_int() == 6);

  o.out = dir + "/run2";
  ::setenv("QAT_INJECT_NAN", "3,4,5", 1);
  o.max_nonfinite = 3;
  REQUIRE_THROWS_WITH(train(o), Catch::Contains("training diverged") && Catch::Contains("3 non-finite steps"));
  ::unsetenv("QAT_INJECT_NAN");
  // The last checkpoint (after step 4, itself skipped: the weights stayed finite) loads.
  LoadedCheckpoint last = load_checkpoint(o.out);
  REQUIRE(last.state.at("step").as_int() == 4);
  REQUIRE(last.state.at("nonfinite_streak").as_int() == 1);
  remove_tree(dir);
}

TEST_CASE("a disk-full checkpoint write keeps the previous checkpoint", "[training][faults]") {
  std::string dir = test_dir("diskfull");
  TrainOptions o = small_run(dir);
  o.steps = 4;
  train(o);
  std::string before = file_bytes(o.out + "/model.safetensors");
  o.resume = true;
  o.steps = 8;
  set_write_fault_after(20000);  // the next checkpoint fails part-way
  REQUIRE_THROWS_WITH(train(o), Catch::Contains("No space left on device"));
  set_write_fault_after(-1);
  REQUIRE(file_bytes(o.out + "/model.safetensors") == before);
  REQUIRE(load_checkpoint(o.out).state.at("step").as_int() == 4);
  REQUIRE_FALSE(file_exists(o.out + ".ckpt-tmp"));
  remove_tree(dir);
}

TEST_CASE("QAT with knowledge distillation: wired into the loss, resumes bit-identically", "[training][distill]") {
  std::string dir = test_dir("distill");
  TrainOptions o = small_run(dir);
  train(o);  // the FP32 teacher, also the QAT starting point
  const std::string teacher = o.out;

  TrainOptions s = small_run(dir);
  s.init = teacher;
  s.qat = "q4_0";
  s.steps = 6;
  s.distill = teacher;
  s.out = dir + "/kd";
  TrainSummary kd = train(s);
  // The student starts as the quantized teacher: a small but non-zero KL on the first step.
  Json first = Json::parse(file_bytes(s.out + "/metrics.jsonl").substr(0, file_bytes(s.out + "/metrics.jsonl").find('\n')));
  double kl0 = first.at("distill_kl").as_double();
  INFO("first-step KL " << kl0);
  REQUIRE(kl0 > 0.0);
  REQUIRE(kl0 < 0.05);

  // Weight 0 is plain cross-entropy: the same bits as a run without a teacher; weight 1 is not.
  s.out = dir + "/ce";
  s.distill = "";
  TrainSummary ce = train(s);
  s.out = dir + "/kd0";
  s.distill = teacher;
  s.distill_weight = 0.0;
  train(s);
  REQUIRE(file_bytes(dir + "/kd0/model.safetensors") == file_bytes(dir + "/ce/model.safetensors"));
  REQUIRE(file_bytes(dir + "/kd/model.safetensors") != file_bytes(dir + "/ce/model.safetensors"));
  REQUIRE(f32_bits(kd.losses[0]) == f32_bits(ce.losses[0]));  // the logged loss is the data loss

  // Interrupted after 2 steps and resumed: bit-identical to the uninterrupted distilled run.
  s.out = dir + "/kd-resumed";
  s.distill_weight = 1.0;
  set_stop_after(2);
  train(s);
  s.resume = true;
  TrainSummary rest = train(s);
  REQUIRE(rest.losses.size() == 4);
  for (size_t i = 0; i < 4; i++) REQUIRE(f32_bits(rest.losses[i]) == f32_bits(kd.losses[i + 2]));
  REQUIRE(file_bytes(s.out + "/model.safetensors") == file_bytes(dir + "/kd/model.safetensors"));

  // A teacher with another tokenizer is refused with one line naming it.
  TrainOptions other = small_run(dir);
  other.vocab = 280;
  other.steps = 1;
  other.out = dir + "/other";
  other.cache_dir = dir + "/cache2";
  train(other);
  s = small_run(dir);
  s.init = teacher;
  s.qat = "q4_0";
  s.distill = other.out;
  s.out = dir + "/bad";
  REQUIRE_THROWS_WITH(train(s), Catch::Contains("--distill: the teacher " + other.out + " has another tokenizer"));
  remove_tree(dir);
}
