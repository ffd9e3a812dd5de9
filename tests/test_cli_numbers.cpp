// The numbers the binaries print are what they claim to be (issue 15, items 13, 14, 15, 21): bin/qat-study
// reuses a run only when every option that shaped it matches, parses --seeds strictly and ends where a
// signal stopped one of its training runs; bin/eval refuses to report a perplexity over no token,
// measures a checkpoint on its own training data under its own QAT scheme and names both; bin/generate fails when its text cannot be written; an error line stays
// one line whatever the user typed; one model gets one parameter count and one weights figure from eval,
// quantize and generate. Every binary runs as a child process (tests/proc.h).
// Code under test: tools/qat-study.cpp, tools/eval.cpp, tools/generate.cpp, tools/quantize.cpp,
// src/util/cli.cpp (run_main), models/model_size.cpp.
#include <csignal>
#include <cstdio>
#include <regex>
#include <sstream>

#include "src/io/gguf.h"
#include "src/io/json.h"
#include "src/quant/scheme.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// A tiny FP32 checkpoint trained on a corpus of its own, a QAT q4_0 fine-tune of it, and that QAT
// model's GGUF export: made once.
struct Models {
  ScratchDir dir{"numbers"};
  std::string corpus, fp32, qat, gguf;
  Models() {
    corpus = dir.put("own-corpus.txt", synthetic_corpus(150));
    fp32 = dir.path + "/fp32";
    qat = dir.path + "/qat";
    gguf = dir.path + "/qat.gguf";
    const std::vector<std::string> common{"--data", corpus, "--vocab", "280", "--ctx", "16", "--batch", "2",
                                          "--threads", "1", "--cache-dir", dir.path + "/cache", "--quiet", "--no-plot"};
    std::vector<std::vector<std::string>> cmds{
        {"bin/train", "--preset", "tiny", "--steps", "2", "--out", fp32},
        {"bin/train", "--init", fp32, "--qat", "q4_0", "--steps", "2", "--out", qat},
    };
    for (auto& c : cmds) c.insert(c.end(), common.begin(), common.end());
    cmds.push_back({"bin/quantize", "--model", qat, "--to-gguf", gguf, "--threads", "1"});
    for (size_t i = 0; i < cmds.size(); i++) {
      ProcResult r = run_proc(cmds[i], dir.path + "/setup" + std::to_string(i));
      if (r.code != 0) fail("fixture: ", cmds[i][0], " failed: ", r.what());
    }
  }
};
const Models& models() {
  static Models m;
  return m;
}

int g_run = 0;
ProcResult run(const std::vector<std::string>& argv, double timeout_s = 120) {
  return run_proc(argv, models().dir.path + "/run" + std::to_string(g_run++), {}, timeout_s);
}

// Exit `code` with exactly one line on stderr holding every one of `parts`.
void expect_one_line(const ProcResult& r, int code, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  CHECK(r.code == code);
  REQUIRE(!r.err.empty());
  CHECK(r.err.find('\n') == r.err.size() - 1);
  for (const std::string& p : parts) CHECK_THAT(r.err, Catch::Contains(p));
}

// A study's progress lines come first; then exit `code` with one error line, its last, holding `parts`.
void expect_study_error(const ProcResult& r, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  CHECK(r.code == 1);
  const std::vector<std::string> lines = lines_of(r.err);
  REQUIRE(!lines.empty());
  CHECK_THAT(lines.back(), Catch::StartsWith("qat-study: error: "));
  for (const std::string& p : parts) CHECK_THAT(lines.back(), Catch::Contains(p));
  CHECK_THAT(r.err, !Catch::Contains("training "));  // nothing was trained over
}

// The first capture of `re` in `text` ("" when it does not match).
std::string capture(const std::string& text, const std::string& re) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(re)) ? m[1].str() : std::string();
}

}  // namespace

TEST_CASE("bin/qat-study reuses a finished run only when every option that shaped it matches", "[numbers]") {
  const Models& m = models();
  const std::string out = m.dir.path + "/study", doc = m.dir.path + "/RESULTS.md";
  auto study = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv{"bin/qat-study", "--preset", "tiny", "--data", m.corpus, "--seeds", "1", "--schemes",
                                  "q8_0", "--fp32-steps", "2", "--qat-steps", "1", "--eval-windows", "2", "--threads",
                                  "1", "--out", out, "--cache-dir", m.dir.path + "/cache-study"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, 300);
  };
  ProcResult r = study({});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Preset `tiny`"));
  // The agreement table: KL to the FP32 reference (finite, >= 0) and same-top-1 rates (0-100%) per model.
  const std::string kl = capture(r.out, "\\| q8_0 \\| ([0-9.]+) ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| "
                                        "[0-9.]+% ± [0-9.]+ \\| [0-9.]+% ± [0-9.]+ \\| ([0-9.]+)% ± [0-9.]+ \\|");
  CHECK(!kl.empty());

  r = study({});  // the same study again: every run reused
  INFO(r.what());
  REQUIRE(r.code == 0);
  for (const char* run_dir : {"/seed1/fp32:", "/seed1/fp32-cont:", "/seed1/qat-q8_0:"})
    CHECK_THAT(r.err, Catch::Contains(out + run_dir + " done already"));

  // Another preset: the tiny runs must not be reused, nor land in a table under the other heading.
  expect_study_error(study({"--preset", "small", "--write", doc}), {out + "/seed1/fp32", "--preset tiny", "small"});
  CHECK_FALSE(file_exists(doc));
  // Another fine-tuning lr: the pre-training run matches, the continued reference does not.
  expect_study_error(study({"--lr-ft", "0.001"}), {out + "/seed1/fp32-cont", "--lr 0.0002", "0.001"});
  // Another QAT recipe: only the QAT run differs.
  expect_study_error(study({"--qat-scale-init", "minmax"}), {out + "/seed1/qat-q8_0", "--qat-scale-init mse", "minmax"});
  // A --config whose only change is one a flag cannot make (the norm's epsilon, tying): not the runs' shape.
  const std::string eps = m.dir.put("eps.json", "{\"rms_norm_eps\": 1e-6}"), untied = m.dir.put("untied.json", "{\"tie_word_embeddings\": false}");
  expect_study_error(study({"--config", eps}), {out + "/seed1/fp32", "rms_norm_eps", "1e-06"});
  expect_study_error(study({"--config", untied}), {out + "/seed1/fp32", "tie_word_embeddings true, this study's is false"});
}

TEST_CASE("bin/qat-study stopped by a signal mid-run ends there (status 128 + it) and the same command resumes it", "[numbers]") {
  const Models& m = models();
  const std::string out = m.dir.path + "/study-signal";
  const std::vector<std::string> argv{"bin/qat-study", "--preset", "tiny", "--data", m.corpus, "--seeds", "1", "--schemes",
                                      "q8_0", "--fp32-steps", "40", "--qat-steps", "1", "--eval-windows", "2", "--threads",
                                      "1", "--save-every", "1000", "--out", out, "--cache-dir", m.dir.path + "/cache-study"};
  // The trainer's test hook sleeps 0.1 s a step, so the signal lands inside the FP32 run.
  Child job(argv, m.dir.path + "/signal-study", {"QAT_TEST_RANK_FAULT=slow:0:0"});
  const std::string metrics = out + "/seed1/fp32/metrics.jsonl";
  wait_for_lines(job, metrics, 3);
  ::kill(job.pid(), SIGTERM);
  ProcResult r = job.wait(60);
  INFO(r.what());
  REQUIRE(r.code == 128 + SIGTERM);
  CHECK_THAT(r.err, Catch::Contains("qat-study: stopped by signal 15 in " + out + "/seed1/fp32 (checkpoint saved)"));
  // Nothing went on from the half-trained model: no fine-tuning run was started, no table printed.
  CHECK_FALSE(file_exists(out + "/seed1/fp32-cont"));
  CHECK(r.out.empty());
  const int64_t at = Json::parse(read_file(out + "/seed1/fp32/state.json")).at("step").as_int();
  REQUIRE(at >= 3);
  REQUIRE(at < 40);

  r = run(argv, 300);
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("qat-study: resuming " + out + "/seed1/fp32 at step " + std::to_string(at) + " of 40"));
  CHECK_THAT(r.out, Catch::Contains("| q8_0 |"));
}

TEST_CASE("bin/qat-study: ternary and PTQ-only K-quant rows, bits per weight, issue 22's goals, the Pareto plot", "[numbers]") {
  const Models& m = models();
  const std::string out = m.dir.path + "/study-lowbit", plot = m.dir.path + "/pareto.png";
  auto study = [&](const std::string& dim) {
    return run({"bin/qat-study", "--preset", "tiny", "--dim", dim, "--ffn", "256", "--data", m.corpus, "--seeds", "1",
                "--schemes", "q4_0,tq2_0,tq1_0,q4_k_m", "--fp32-steps", "2", "--qat-steps", "1", "--eval-windows", "2",
                "--threads", "1", "--out", out, "--cache-dir", m.dir.path + "/cache-study", "--plot", plot},
               300);
  };
  ProcResult r = study("256");
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Preset `tiny` with `--dim 256 --ffn 256`"));
  // Bits per weight as stored: q4_0 4.5, TQ2_0 2.0625; Q4_K_M between 4.5 (Q4_K) and 6.5625 (Q6_K).
  CHECK(!capture(r.out, "\\| q4_0 \\|[^\\n]*\\| (4\\.5) \\| [^\\n]*\\n").empty());
  CHECK(!capture(r.out, "\\| tq2_0 \\|[^\\n]*\\| (2\\.06) \\| [^\\n]*\\n").empty());
  const std::string km = capture(r.out, "\\| q4_k_m \\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| - \\| - \\| - \\| "
                                        "[0-9.]+ \\([0-9.]+x\\) \\| ([0-9.]+) \\| - \\|");
  REQUIRE(!km.empty());
  CHECK(std::stod(km) > 4.5);
  CHECK(std::stod(km) < 6.5625);
  CHECK_THAT(r.out, Catch::Contains("Ternary tq2_0: QAT recovers"));
  // The q4_0 goal is judged on the seed-by-seed difference (one seed here): it is QAT's loss minus
  // Q4_K_M's as printed, and the verdict follows its sign (q4_0 is the smaller file at this shape).
  std::smatch goal;
  REQUIRE(std::regex_search(r.out, goal,
                            std::regex("QAT q4_0 ([0-9.]+) ± 0\\.0000 against PTQ Q4_K_M \\(llama.cpp's rule\\) ([0-9.]+) ± 0\\.0000 "
                                       "at 4\\.5 against [0-9.]+ bits per weight: \\*\\*(met|missed)\\*\\* \\(QAT − Q4_K_M seed by "
                                       "seed ([-+][0-9.]+), lower beyond the seed spread of the difference: (yes|no); no more bytes: yes")));
  const double qat_q4 = std::stod(goal[1]), km_q4 = std::stod(goal[2]), diff = std::stod(goal[4]);
  CHECK(std::abs(diff - (qat_q4 - km_q4)) < 1.5e-4);
  if (std::abs(diff) >= 1e-4) {
    CHECK(goal[3] == (diff < 0 ? "met" : "missed"));
    CHECK(goal[5] == (diff < 0 ? "yes" : "no"));
  }
  CHECK_FALSE(file_exists(out + "/seed1/qat-q4_k_m"));  // a post-training format trains nothing
  // tq1_0 is served from tq2_0's QAT run (one ternary rule, two layouts): the same losses at 1.69 bits.
  CHECK_FALSE(file_exists(out + "/seed1/qat-tq1_0"));
  CHECK_THAT(r.err, Catch::Contains("tq1_0's QAT model is " + out + "/seed1/qat-tq2_0"));
  const std::string row = "\\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| [0-9.]+ ± [0-9.]+ \\| ([0-9.]+) ± [0-9.]+ \\|";
  const std::string q2 = capture(r.out, "\\| tq2_0 " + row), q1 = capture(r.out, "\\| tq1_0 " + row);
  REQUIRE(!q2.empty());
  CHECK(q1 == q2);
  CHECK(!capture(r.out, "\\| tq1_0 \\|[^\\n]*\\| (1\\.69) \\| [^\\n]*\\n").empty());
  CHECK(read_file(plot).rfind("\x89PNG", 0) == 0);
  // The plot's points (PNG + ".tsv"): bits, loss, spread, label, series, then loss minus FP32's on the
  // same seed and its spread, which the zoomed panel draws (one seed: the loss minus FP32, spread 0).
  double fp32_loss = NAN;
  int paired = 0;
  for (const std::string& line : lines_of(read_file(plot + ".tsv"))) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
    INFO(line);
    REQUIRE(f.size() == 7);
    if (f[4] == "1") {
      fp32_loss = std::stod(f[1]);
      continue;
    }
    REQUIRE(!std::isnan(fp32_loss));
    CHECK(std::abs(std::stod(f[5]) - (std::stod(f[1]) - fp32_loss)) < 2e-5);
    CHECK(std::stod(f[6]) == 0.0);
    paired++;
  }
  CHECK(paired == 7);  // PTQ of q4_0, tq2_0, tq1_0, q4_k_m; QAT of the first three
  // The shape is part of what a reused run must match.
  expect_study_error(study("512"), {out + "/seed1/fp32", "--dim 256, this study's is 512"});
}

TEST_CASE("QAT under tq1_0 and under tq2_0 trains the same weights bit for bit (what lets the study share the run)", "[numbers]") {
  const Models& m = models();
  CHECK(scheme_layer("tq1_0").trains_as(scheme_layer("tq2_0")));
  CHECK(scheme_layer("q4_0").trains_as(scheme_layer("q4_0")));
  CHECK_FALSE(scheme_layer("q8_0").trains_as(scheme_layer("w8a8")));  // per-channel int8: another group
  CHECK_FALSE(scheme_layer("q4_0").trains_as(scheme_layer("w4")));     // no integer kernel, f32 activations
  CHECK_FALSE(scheme_layer("tq2_0").trains_as(scheme_layer("q4_0")));
  std::string weights[2];
  for (int k = 0; k < 2; k++) {
    const std::string dir = m.dir.path + "/ternary-" + std::to_string(k);
    ProcResult r = run({"bin/train", "--preset", "tiny", "--dim", "256", "--ffn", "256", "--qat", k ? "tq1_0" : "tq2_0", "--steps",
                        "3", "--data", m.corpus, "--vocab", "280", "--ctx", "16", "--batch", "2", "--threads", "1",
                        "--cache-dir", m.dir.path + "/cache", "--quiet", "--no-plot", "--out", dir});
    INFO(r.what());
    REQUIRE(r.code == 0);
    weights[k] = read_file(dir + "/model.safetensors");
  }
  CHECK(weights[0].size() > 0);
  CHECK(weights[0] == weights[1]);
}

TEST_CASE("bin/eval --reference: KL and same top-1 against another model on the same tokens", "[numbers]") {
  const Models& m = models();
  auto eval = [&](const std::string& model, const std::string& ref) {
    ProcResult r = run({"bin/eval", "--model", model, "--reference", ref, "--data", m.corpus, "--windows", "3", "--threads", "1",
                        "--cache-dir", m.dir.path + "/cache", "--json"});
    INFO(r.what());
    REQUIRE(r.code == 0);
    return Json::parse(lines_of(r.out).back());
  };
  // A model against itself: the same logits, so KL 0 and the same top-1 everywhere.
  Json self = eval(m.fp32, m.fp32);
  CHECK(self.at("kl").as_double() == 0.0);
  CHECK(self.at("same_top1").as_double() == 1.0);
  // The QAT model (served) and its GGUF export (served): both against the FP32 model, the same numbers.
  Json q = eval(m.qat, m.fp32), g = eval(m.gguf, m.fp32);
  CHECK(q.at("kl").as_double() > 0.0);
  CHECK(q.at("kl").as_double() < 1.0);
  CHECK(q.at("kl_p99").as_double() >= q.at("kl").as_double());
  CHECK(q.at("same_top1").as_double() <= 1.0);
  CHECK(q.at("kl").as_double() == g.at("kl").as_double());
  CHECK(q.at("val_loss").as_double() == g.at("val_loss").as_double());
  expect_one_line(run({"bin/eval", "--model", m.fp32, "--reference", m.fp32, "--score-second-half"}), 2, {"--reference"});
}

TEST_CASE("bin/qat-study --seeds: anything but comma-separated integers is a one-line usage error", "[numbers]") {
  for (const char* bad : {"1,x", "-1", "1,2x", ",", "99999999999999999999"})
    expect_one_line(run({"bin/qat-study", "--seeds", bad, "--out", models().dir.path + "/never"}), 2, {"--seeds"});
  expect_one_line(run({"bin/qat-study", "--seeds", "1,x"}), 2, {"got 'x'"});
}

TEST_CASE("bin/eval --score-second-half below --ctx 3 is an error, not ppl 1.000 over 0 tokens", "[numbers]") {
  const Models& m = models();
  for (const char* ctx : {"1", "2"})
    expect_one_line(run({"bin/eval", "--model", m.gguf, "--data", m.corpus, "--score-second-half", "--ctx", ctx,
                         "--cache-dir", m.dir.path + "/cache"}),
                    2, {"--ctx " + std::string(ctx), "--score-second-half"});
  // At --ctx 3 one token per chunk is scored: a measurement.
  ProcResult r = run({"bin/eval", "--model", m.gguf, "--data", m.corpus, "--score-second-half", "--ctx", "3",
                      "--windows", "4", "--cache-dir", m.dir.path + "/cache"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("over 4 tokens"));
}

TEST_CASE("bin/generate > /dev/full: the text was not written, so generate fails with one line", "[numbers]") {
  const Models& m = models();
  const std::string log = m.dir.path + "/full";
  remove_tree(log + ".out");
  REQUIRE(::symlink("/dev/full", (log + ".out").c_str()) == 0);  // the child's stdout opens /dev/full
  Child c({"bin/generate", "--model", m.gguf, "--prompt", "the cat", "--tokens", "4", "--threads", "1"}, log);
  for (double t_end = monotonic_s() + 120; !c.done() && monotonic_s() < t_end;) sleep_s(0.005);
  REQUIRE(::unlink((log + ".out").c_str()) == 0);  // wait() reads stdout back: not /dev/full's endless zeros
  write_file_atomic(log + ".out", "");
  expect_one_line(c.wait(), 1, {"generate: error: stdout", "No space left on device"});
}

TEST_CASE("an error line escapes the control characters of what the user typed: one line means one line",
          "[numbers][cli]") {
  // A runtime error quoting a path (exit 1) and a usage error quoting a value (exit 2), through run_main.
  expect_one_line(run({"bin/generate", "--model", "no\nsuch\tmodel\x01.gguf"}), 1, {"no\\nsuch\\tmodel\\x01.gguf"});
  expect_one_line(run({"bin/eval", "--windows", "1\r\n2"}), 2, {"--windows", "'1\\r\\n2'"});
  // UTF-8 passes as it is.
  expect_one_line(run({"bin/eval", "--model", "caf\xc3\xa9-missing"}), 1, {"caf\xc3\xa9-missing"});
}

TEST_CASE("bin/eval measures a checkpoint on its own training data under its own scheme, and says so", "[numbers]") {
  const Models& m = models();
  const std::string cache = m.dir.path + "/cache";
  // No --data, no --scheme: the corpus the checkpoint was trained on, the QAT model's integer path.
  ProcResult r = run({"bin/eval", "--model", m.qat, "--windows", "4", "--cache-dir", cache, "--threads", "1"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("QAT q4_0 (integer path), on the val split of " + m.corpus +
                                    " (the checkpoint's training data): loss "));
  // The same number as asking for both explicitly.
  ProcResult e = run({"bin/eval", "--model", m.qat, "--windows", "4", "--cache-dir", cache, "--threads", "1", "--data",
                      m.corpus, "--scheme", "q4_0"});
  INFO(e.what());
  REQUIRE(e.code == 0);
  CHECK_THAT(e.out, Catch::Contains("on the val split of " + m.corpus + " (--data)"));
  const std::string loss = capture(r.out, "loss ([0-9.]+),");
  REQUIRE(!loss.empty());
  CHECK(capture(e.out, "loss ([0-9.]+),") == loss);
  // The latent f32 weights only on request, and named as such.
  r = run({"bin/eval", "--model", m.qat, "--windows", "4", "--cache-dir", cache, "--threads", "1", "--scheme", "f32"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("f32 latent weights, on the val split of " + m.corpus));
  // An FP32 checkpoint: its own data too; the JSON line names the text.
  r = run({"bin/eval", "--model", m.fp32, "--windows", "4", "--cache-dir", cache, "--threads", "1", "--json"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out).at("text").as_string() == "val split of " + m.corpus + " (the checkpoint's training data)");
}

TEST_CASE("one model: one parameter count and one weights figure in bin/eval, bin/quantize and bin/generate",
          "[numbers]") {
  const Models& m = models();
  // The definitions (models/model_size.h), read from the GGUF file itself: parameters = the elements of
  // its tensors, weights = the bytes of its tensor data, in MiB = 2^20 bytes with 3 decimals.
  GgufFile g = read_gguf(m.gguf);
  int64_t elements = 0, bytes = 0;
  for (const GgufTensorInfo& t : g.tensors) {
    elements += t.numel();
    bytes += int64_t(t.nbytes);
  }
  char mib[32];
  std::snprintf(mib, sizeof mib, "%.3f", double(bytes) / (1 << 20));
  const std::string cache = m.dir.path + "/cache";
  const std::string quantized = m.dir.path + "/again.gguf";
  const std::vector<std::vector<std::string>> cmds{
      {"bin/eval", "--model", m.qat, "--windows", "2", "--cache-dir", cache, "--threads", "1"},
      {"bin/eval", "--model", m.gguf, "--data", m.corpus, "--windows", "2", "--cache-dir", cache, "--threads", "1"},
      {"bin/quantize", "--model", m.qat, "--to-gguf", quantized, "--threads", "1"},
      {"bin/generate", "--model", m.qat, "--prompt", "the cat", "--tokens", "2", "--threads", "1"},
      {"bin/generate", "--model", m.gguf, "--prompt", "the cat", "--tokens", "2", "--threads", "1"}};
  for (const auto& cmd : cmds) {
    ProcResult r = run(cmd);
    INFO(cmd[0] << " --model " << cmd[2] << ": " << r.what() << "\nstdout: " << r.out);
    REQUIRE(r.code == 0);
    const std::string text = r.out + r.err;
    CHECK(capture(text, "([0-9]+) parameters") == std::to_string(elements));
    CHECK(capture(text, "weights ([0-9.]+) MiB as stored in GGUF") == mib);
  }
}

TEST_CASE("make demo's table: QAT beside the FP32 model continued for the same steps", "[numbers]") {
  // tools/demo.sh on a tiny preset (DEMO_*): the table must show the FP32 reference trained as many
  // steps as QAT from the same start (docs/RESULTS.md's protocol), not only the shorter-trained start.
  ScratchDir dir("demo");
  const std::string corpus = dir.put("corpus.txt", synthetic_corpus(300)), out = dir.path + "/demo";
  ProcResult r = run_proc({"tools/demo.sh"}, dir.path + "/log",
                          {"DEMO_DIR=" + out, "DEMO_PRESET=tiny", "DEMO_STEPS=4", "DEMO_QAT_STEPS=2",
                           "DEMO_DATA=" + corpus},
                          300);
  INFO(r.what());
  REQUIRE(r.code == 0);
  auto row = [&](const std::string& label) {  // the table line of `label`, "" when there is none
    const size_t at = r.out.find("| " + label);
    return at == std::string::npos ? std::string() : r.out.substr(at, r.out.find('\n', at) - at);
  };
  CHECK(row("FP32 start").find("| 4 ") != std::string::npos);
  CHECK(row("FP32 reference (continued, same recipe)").find("| 4 + 2 ") != std::string::npos);
  CHECK(row("QAT q4_0 (integer path, as served)").find("| 4 + 2 ") != std::string::npos);
  // The reference really trained the QAT run's 2 steps from the same 4-step start.
  auto state = [&](const std::string& run) { return Json::parse(read_file(out + "/" + run + "/state.json")); };
  CHECK(state("fp32").at("step").as_int() == 4);
  CHECK(state("fp32-cont").at("step").as_int() == 2);
  CHECK(state("q4_0").at("step").as_int() == 2);
  CHECK(state("fp32-cont").at("options").at("init").as_string() == state("q4_0").at("options").at("init").as_string());
  CHECK(state("fp32-cont").at("options").at("lr").as_double() == state("q4_0").at("options").at("lr").as_double());
}

TEST_CASE("bin/qat-study continues a run it was stopped in from its last checkpoint, to the same bits", "[numbers]") {
  const Models& m = models();
  auto study = [&](const std::string& out, std::vector<std::string> env) {
    return run_proc({"bin/qat-study", "--preset", "tiny", "--data", m.corpus, "--seeds", "1", "--schemes", "q8_0",
                     "--fp32-steps", "4", "--qat-steps", "2", "--save-every", "2", "--eval-windows", "2", "--threads",
                     "1", "--out", out, "--cache-dir", m.dir.path + "/cache-resume"},
                    m.dir.path + "/resume-log" + std::to_string(g_run++), env, 300);
  };
  const std::string stopped = m.dir.path + "/study-stopped", whole = m.dir.path + "/study-whole";
  // Killed right after the pre-training run's first checkpoint (step 2 of 4) was swapped in.
  ProcResult r = study(stopped, {"QAT_CRASH_AT=replace_directory:1"});
  INFO(r.what());
  REQUIRE(r.signal == SIGKILL);
  REQUIRE(Json::parse(read_file(stopped + "/seed1/fp32/state.json")).at("step").as_int() == 2);
  r = study(stopped, {});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("resuming " + stopped + "/seed1/fp32 at step 2 of 4"));
  r = study(whole, {});
  REQUIRE(r.code == 0);
  for (const char* run_dir : {"/seed1/fp32", "/seed1/fp32-cont", "/seed1/qat-q8_0"})
    for (const char* file : {"/model.safetensors", "/optimizer.safetensors"}) {
      INFO(run_dir << file);
      CHECK(read_file(stopped + run_dir + file) == read_file(whole + run_dir + file));
    }
}
