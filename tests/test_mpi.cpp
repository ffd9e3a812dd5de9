// Data-parallel training on MPI (issue 18; models/train/dist.h, trainer.cpp's train_step): `mpirun -np N
// bin/train --accum A` writes model.safetensors and optimizer.safetensors byte-identical to one process
// with --accum N*A, at any thread count per rank; --resume with another rank count stays identical; a
// killed or hung rank stops the job naming it, the last checkpoint intact; a rank with another corpus is
// refused. Without mpirun (or mpicxx) the multi-rank cases WARN and return. The fixed-order sum itself
// (GradSum on one process) and the loader's skip are checked in-process.
#include <signal.h>
#include <unistd.h>

#include "data/loader.h"
#include "src/io/json.h"
#include "models/train/dist.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// True when `name` is an executable on PATH.
bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t c = p.find(':', pos);
    std::string dir = p.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return false;
}

// bin/train is built with MPI when mpicxx is installed (Makefile); mpirun starts the ranks.
bool have_mpi() {
  if (on_path("mpirun") && on_path("mpicxx")) return true;
  WARN("SKIPPED: mpirun or mpicxx not found (install openmpi-bin and libopenmpi-dev); the [mpi] cases did not run");
  return false;
}

// A run of the tiny preset on the synthetic corpus in `dir`; `extra` adds or overrides flags.
std::vector<std::string> train_args(const std::string& dir, const std::string& out, const std::vector<std::string>& extra,
                                    const std::string& corpus = "corpus.txt") {
  std::vector<std::string> a = {"bin/train", "--data", dir + "/" + corpus, "--preset", "tiny", "--vocab", "300",
                                "--ctx", "16", "--batch", "2", "--steps", "5", "--lr", "3e-3", "--eval-windows", "2",
                                "--seed", "7", "--out", dir + "/" + out, "--cache-dir", dir + "/cache", "--quiet",
                                "--no-plot"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::vector<std::string> mpirun(int np, const std::vector<std::string>& args, const std::vector<std::string>& env_names = {}) {
  std::vector<std::string> a = {"/usr/bin/env", "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(np)};
  for (const std::string& e : env_names) {
    a.push_back("-x");
    a.push_back(e);
  }
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

ProcResult run_ok(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& env = {}) {
  ProcResult r = run_proc(argv, log, env, 120);
  INFO(r.what());
  REQUIRE(r.code == 0);
  return r;
}

// Model and optimizer state byte for byte (cmp).
void require_same_checkpoint(const std::string& a, const std::string& b) {
  for (const char* f : {"/model.safetensors", "/optimizer.safetensors"}) {
    const std::string x = read_file(a + f), y = read_file(b + f);
    size_t first = 0;
    while (first < x.size() && first < y.size() && x[first] == y[first]) first++;
    INFO("cmp " << a << f << " " << b << f << ": sizes " << x.size() << " / " << y.size() << ", first difference at byte "
                << first);
    REQUIRE(x == y);
  }
}

// The loss / grad_norm / val_loss / bpb of each metrics line (the losses are summed in index order too;
// the timings differ).
std::string metric_values(const std::string& path) {
  std::string keys;
  for (const std::string& line : lines_of(read_file(path))) {
    Json j = Json::parse(line);
    keys += "step " + j.at("step").dump();
    for (const char* f : {"loss", "grad_norm", "val_loss", "bpb"})
      if (const Json* v = j.find(f)) keys += std::string(" ") + f + " " + v->dump();
    keys += "\n";
  }
  return keys;
}

}  // namespace

TEST_CASE("GradSum on one process: micro-batch gradients added in index order from a copy of the first", "[mpi]") {
  LocalComm one;
  const int64_t P = 37;
  std::vector<std::vector<float>> g(4, std::vector<float>(P));
  for (int a = 0; a < 4; a++)
    for (int64_t i = 0; i < P; i++) g[size_t(a)][size_t(i)] = float((i * 7 + a * 13) % 11 - 5) * 0.1f + 1e-7f * float(a);
  g[0][0] = -0.0f;  // a sum started from zeros would turn g0's -0 into +0
  GradSum sum(one, P);
  for (int a = 0; a < 4; a++) sum.add_round(g[size_t(a)].data(), a);
  std::vector<float> out(P), want = g[0];
  sum.finish(out.data());
  for (int a = 1; a < 4; a++)
    for (int64_t i = 0; i < P; i++) want[size_t(i)] = want[size_t(i)] + g[size_t(a)][size_t(i)];
  want[0] = g[0][0] + g[1][0] + g[2][0] + g[3][0];
  REQUIRE(std::memcmp(out.data(), want.data(), P * sizeof(float)) == 0);
}

TEST_CASE("TokenLoader::skip reaches the position of the same number of next() calls", "[mpi]") {
  std::vector<int32_t> tokens(200);
  for (size_t i = 0; i < tokens.size(); i++) tokens[i] = int32_t(i);
  TokenLoader a(tokens, 3, 8, 5), b(tokens, 3, 8, 5);
  for (int64_t k : {0, 1, 4, 7, 2}) {  // crosses epochs (24 windows, 3 a batch)
    for (int64_t i = 0; i < k; i++) (void)a.next();
    b.skip(k);
    REQUIRE(a.epoch() == b.epoch());
    REQUIRE(a.index() == b.index());
    Batch x = a.next(), y = b.next();
    REQUIRE(std::memcmp(x.ids.data<int32_t>(), y.ids.data<int32_t>(), 24 * 4) == 0);
  }
}

TEST_CASE("mpirun -np 2 and 3 write the bytes of one process with --accum N*A", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-same");
  dir.put("corpus.txt", synthetic_corpus());
  SECTION("FP32, 2 ranks x accum 1 x 1 thread = accum 2") {
    run_ok(train_args(dir.path, "one", {"--accum", "2", "--threads", "2"}), dir.path + "/one");
    run_ok(mpirun(2, train_args(dir.path, "two", {"--accum", "1", "--threads", "1"})), dir.path + "/two");
    require_same_checkpoint(dir.path + "/one", dir.path + "/two");
    REQUIRE(metric_values(dir.path + "/one/metrics.jsonl") == metric_values(dir.path + "/two/metrics.jsonl"));
    // The ranks log rank 0's communication time per step; one process logs no such field.
    REQUIRE(read_file(dir.path + "/two/metrics.jsonl").find("\"comm_s\":") != std::string::npos);
    REQUIRE(read_file(dir.path + "/two/metrics.jsonl").find("\"exposed_s\":") != std::string::npos);
    REQUIRE(read_file(dir.path + "/one/metrics.jsonl").find("comm_s") == std::string::npos);
  }
  SECTION("q4_0 QAT with Quant-Noise, 3 ranks x accum 2 = accum 6") {
    const std::vector<std::string> qat = {"--qat", "q4_0", "--qat-noise", "0.5", "--threads", "1"};
    std::vector<std::string> one = qat, three = qat;
    one.insert(one.end(), {"--accum", "6"});
    three.insert(three.end(), {"--accum", "2"});
    run_ok(train_args(dir.path, "one", one), dir.path + "/one");
    run_ok(mpirun(3, train_args(dir.path, "three", three)), dir.path + "/three");
    require_same_checkpoint(dir.path + "/one", dir.path + "/three");
    REQUIRE(metric_values(dir.path + "/one/metrics.jsonl") == metric_values(dir.path + "/three/metrics.jsonl"));
  }
}

TEST_CASE("distilled QAT with every --qat-* option: 2 ranks write the bytes of one process with --accum 2", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-distill");
  dir.put("corpus.txt", synthetic_corpus());
  run_ok(train_args(dir.path, "teacher", {"--threads", "2"}), dir.path + "/teacher");  // an FP32 teacher
  const std::string teacher = dir.path + "/teacher";
  // Learned weight scales (LSQ, their gradients reduced with the rest), a learned static activation
  // scale (w8a8s), Quant-Noise, dampening, the identity STE; then frozen scales.
  std::vector<std::string> qat = {"--init", teacher, "--distill", teacher, "--distill-weight", "0.7",
                                  "--steps", "4", "--lr", "3e-3", "--threads", "1"};
  SECTION("learned scales") {
    qat.insert(qat.end(), {"--qat", "q4_0", "--qat-keep", "layers.1.mlp=w8a8s,layers.0.q=f32", "--qat-scale-init",
                           "minmax", "--qat-identity-ste", "--qat-scale-lr", "3", "--qat-dampen", "0.5",
                           "--qat-noise", "0.5"});
  }
  SECTION("frozen scales") { qat.insert(qat.end(), {"--qat", "w8a8s", "--qat-freeze-scales"}); }
  std::vector<std::string> one = qat, two = qat;
  one.insert(one.end(), {"--accum", "2"});
  // Buckets of 10 KiB (the tiny model's gradient is ~140 KiB: a dozen buckets, posted as the backward
  // finishes each; the default 1 MiB would make one).
  two.insert(two.end(), {"--accum", "1", "--bucket-mb", "0.01"});
  run_ok(train_args(dir.path, "one", one), dir.path + "/one");
  run_ok(mpirun(2, train_args(dir.path, "two", two)), dir.path + "/two");
  require_same_checkpoint(dir.path + "/one", dir.path + "/two");
  REQUIRE(metric_values(dir.path + "/one/metrics.jsonl") == metric_values(dir.path + "/two/metrics.jsonl"));
  REQUIRE(read_file(dir.path + "/two/metrics.jsonl").find("\"distill_kl\":") != std::string::npos);
}

TEST_CASE("--resume with another rank count (same global batch) stays bit-identical", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-resume");
  dir.put("corpus.txt", synthetic_corpus());
  const std::vector<std::string> x = {"--accum", "3", "--threads", "1", "--save-every", "1"};
  run_ok(mpirun(2, train_args(dir.path, "whole", x)), dir.path + "/whole");  // 2 x 3 = 6 micro-batches
  // 3 ranks x 2 until step 3 (the test hook ends rank 0 like a crash, after step 2's checkpoint), ...
  std::vector<std::string> y = {"--accum", "2", "--threads", "1", "--save-every", "1"};
  ProcResult r = run_proc(mpirun(3, train_args(dir.path, "split", y), {"QAT_TEST_RANK_FAULT"}), dir.path + "/split",
                          {"QAT_TEST_RANK_FAULT=exit:0:3"});
  INFO(r.what());
  REQUIRE(r.code != 0);
  REQUIRE(read_file(dir.path + "/split/state.json").find("\"step\": 3") != std::string::npos);
  // ... then one process (its --accum is the saved global 6) to the end, and 6 ranks refused by a 4.
  run_ok({"bin/train", "--resume", "--out", dir.path + "/split", "--threads", "2", "--cache-dir", dir.path + "/cache",
          "--quiet", "--no-plot"},
         dir.path + "/resume");
  require_same_checkpoint(dir.path + "/whole", dir.path + "/split");
  ProcResult bad = run_proc(mpirun(4, {"bin/train", "--resume", "--out", dir.path + "/split", "--cache-dir",
                                       dir.path + "/cache", "--quiet"}), dir.path + "/bad");
  INFO(bad.what());
  REQUIRE(bad.code != 0);
  REQUIRE(bad.err.find("train: error: --resume: the run's global batch is 6 micro-batches, which 4 ranks cannot share") !=
          std::string::npos);
}

TEST_CASE("a killed rank stops the job, named; the last checkpoint is intact and resumes bit-identically", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-kill");
  dir.put("corpus.txt", synthetic_corpus());
  const std::vector<std::string> x = {"--threads", "1", "--save-every", "2", "--rank-timeout", "20"};
  run_ok(mpirun(2, train_args(dir.path, "whole", x)), dir.path + "/whole");
  ProcResult r = run_proc(mpirun(2, train_args(dir.path, "killed", x), {"QAT_TEST_RANK_FAULT"}), dir.path + "/killed",
                          {"QAT_TEST_RANK_FAULT=kill:1:3"});
  INFO(r.what());
  REQUIRE(r.code != 0);
  REQUIRE(r.err.find("rank 1") != std::string::npos);  // mpirun: "process rank 1 ... exited on signal 9"
  REQUIRE(read_file(dir.path + "/killed/state.json").find("\"step\": 2") != std::string::npos);
  run_ok(mpirun(2, {"bin/train", "--resume", "--out", dir.path + "/killed", "--threads", "1", "--cache-dir",
                    dir.path + "/cache", "--quiet", "--no-plot"}),
         dir.path + "/resume");
  require_same_checkpoint(dir.path + "/whole", dir.path + "/killed");
}

TEST_CASE("a hung rank stops the job within --rank-timeout, named in one line", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-hang");
  dir.put("corpus.txt", synthetic_corpus());
  const std::vector<std::string> x = {"--threads", "1", "--save-every", "2", "--rank-timeout", "2"};
  ProcResult r = run_proc(mpirun(2, train_args(dir.path, "hung", x), {"QAT_TEST_RANK_FAULT"}), dir.path + "/hung",
                          {"QAT_TEST_RANK_FAULT=hang:1:3"}, 60);
  INFO(r.what());
  REQUIRE(!r.timed_out);
  REQUIRE(r.code != 0);
  REQUIRE(r.err.find("train: error: rank 0: rank 1 sent no heartbeat for step 3 within 2 s (--rank-timeout)") !=
          std::string::npos);
  REQUIRE(read_file(dir.path + "/hung/state.json").find("\"step\": 2") != std::string::npos);
}

TEST_CASE("SIGUSR1 to mpirun: every rank stops after the same step, rank 0 saves, --resume is bit-identical", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-sigterm");
  dir.put("corpus.txt", synthetic_corpus());
  const std::vector<std::string> x = {"--steps", "40", "--threads", "1", "--save-every", "1000", "--eval-every", "1000"};
  run_ok(mpirun(2, train_args(dir.path, "whole", x)), dir.path + "/whole");
  // mpirun forwards SIGUSR1 to every rank and lets the job run on (SIGTERM it turns into SIGTERM and
  // SIGKILL 1 s later). Rank 1 sleeps 0.1 s a step (the test hook), so the signal lands mid-run.
  Child job(mpirun(2, train_args(dir.path, "stopped", x), {"QAT_TEST_RANK_FAULT"}), dir.path + "/stopped",
            {"QAT_TEST_RANK_FAULT=slow:1:0"});
  const std::string metrics = dir.path + "/stopped/metrics.jsonl";
  wait_for_lines(job, metrics, 3);
  ::kill(job.pid(), SIGUSR1);
  ProcResult r = job.wait(90);
  INFO(r.what());
  REQUIRE(!r.timed_out);
  REQUIRE(r.err.find("signal 9") == std::string::npos);  // no rank was killed: they stopped on their own
  Json st = Json::parse(read_file(dir.path + "/stopped/state.json"));
  const int64_t stopped_at = st.at("step").as_int();
  INFO("stopped at step " << stopped_at);
  REQUIRE(stopped_at >= 3);
  REQUIRE(stopped_at < 40);
  // Every rank agreed on the step: rank 0's log ends at the checkpoint's step.
  REQUIRE(Json::parse(lines_of(read_file(metrics)).back()).at("step").as_int() == stopped_at);
  run_ok(mpirun(2, {"bin/train", "--resume", "--out", dir.path + "/stopped", "--threads", "1", "--cache-dir",
                    dir.path + "/cache", "--quiet", "--no-plot"}),
         dir.path + "/resume");
  require_same_checkpoint(dir.path + "/whole", dir.path + "/stopped");
}

TEST_CASE("SIGTERM and SIGUSR1 to one process: a checkpoint, status 128 + the signal, --resume bit-identical", "[mpi]") {
  ScratchDir dir("mpi-sigterm-one");
  dir.put("corpus.txt", synthetic_corpus());
  const std::vector<std::string> x = {"--steps", "40", "--threads", "1", "--save-every", "1000", "--eval-every", "1000"};
  run_ok(train_args(dir.path, "whole", x), dir.path + "/whole");
  for (int sig : {SIGTERM, SIGUSR1}) {
    const std::string out = "stopped" + std::to_string(sig);
    Child job(train_args(dir.path, out, x), dir.path + "/" + out, {"QAT_TEST_RANK_FAULT=slow:0:0"});
    const std::string metrics = dir.path + "/" + out + "/metrics.jsonl";
    wait_for_lines(job, metrics, 3);
    ::kill(job.pid(), sig);
    ProcResult r = job.wait(60);
    INFO(r.what());
    REQUIRE(r.code == 128 + sig);
    const int64_t at = Json::parse(read_file(dir.path + "/" + out + "/state.json")).at("step").as_int();
    REQUIRE(at >= 3);
    REQUIRE(at < 40);
    run_ok({"bin/train", "--resume", "--out", dir.path + "/" + out, "--threads", "1", "--cache-dir", dir.path + "/cache",
            "--quiet", "--no-plot"},
           dir.path + "/resume");
    require_same_checkpoint(dir.path + "/whole", dir.path + "/" + out);
  }
}

TEST_CASE("a rank with another corpus is refused at start, named in one line", "[mpi]") {
  if (!have_mpi()) return;
  ScratchDir dir("mpi-corpus");
  dir.put("corpus.txt", synthetic_corpus());
  dir.put("other.txt", synthetic_corpus(301));
  std::vector<std::string> a = mpirun(1, train_args(dir.path, "out", {"--threads", "1"}));
  a.push_back(":");
  for (const std::string& s : mpirun(1, train_args(dir.path, "out", {"--threads", "1"}, "other.txt")))
    if (s != "/usr/bin/env" && s != "mpirun" && s != "--allow-run-as-root" && s != "--oversubscribe") a.push_back(s);
  ProcResult r = run_proc(a, dir.path + "/refused");
  INFO(r.what());
  REQUIRE(r.code != 0);
  REQUIRE(r.err.find("train: error: rank 1 differs from rank 0 in its corpus (content hash)") != std::string::npos);
  REQUIRE(!file_exists(dir.path + "/out/model.safetensors"));
}
