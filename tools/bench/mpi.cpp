// `bench mpi`: data-parallel training against threads on one machine (issue 18). For each shape, the
// same global batch two ways: one process x 2 threads with --accum 2, and `mpirun -np 2` x 1 thread with
// --accum 1 (models/train/dist.h). Both are bin/train child processes; their metrics.jsonl give each
// step's tokens/s and, for the ranks, the seconds rank 0 spent in exchanges (comm_s: the gradient
// alltoallv + allgatherv, the loss allgather and the heartbeat, waiting included). The two checkpoints
// must be byte-identical (the invariant), and the table says so. Then a scaling model for clusters from
// the measured numbers (print_scaling_model). Read next: models/train/dist.cpp.
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "models/model_size.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

extern char** environ;

namespace qat::bench {

namespace {

struct MpiArgs {
  std::string shapes = "small,15m", tmp_dir = "/tmp";
  int64_t steps = 12, batch = 8, rounds = 2;
  bool quick = false;
};

std::string train_binary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("bin/train") : (self.parent_path() / "train").string();
}

// Runs argv (found on PATH) to the end, stdout and stderr into `log`; an error with the log on failure.
void run_child(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  QAT_CHECK(rc == 0, "bench mpi: cannot start ", args[0], ": ", std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  QAT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bench mpi: ", args[0], " failed: ", read_file(log));
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The median tokens/s and comm_s of the steps after the first two (warm-up) in <out>/metrics.jsonl.
void read_rates(const std::string& out, double* tok_s, double* comm_s) {
  std::vector<double> rates, comm;
  for (const std::string& line : split(read_file(out + "/metrics.jsonl"), '\n')) {
    if (line.empty()) continue;
    Json j = Json::parse(line);
    if (!j.contains("tokens_per_s") || j.at("step").as_int() <= 2) continue;
    rates.push_back(j.at("tokens_per_s").as_double());
    if (const Json* c = j.find("comm_s")) comm.push_back(c->as_double());
  }
  *tok_s = median_of(rates);
  *comm_s = median_of(comm);
}

struct MpiRow {
  std::string shape;
  double threads_tok_s = 0, ranks_tok_s = 0, comm_s = 0;
  bool identical = true;
};

// One round of a shape: the 2-thread process, then the 2 ranks, the same global batch and seed.
void run_round(const MpiArgs& a, const std::string& shape, const std::string& dir, MpiRow* row,
               std::vector<double>* ratios) {
  const std::string bin = train_binary();
  std::vector<std::string> common = {bin, "--preset", shape, "--steps", std::to_string(a.steps), "--batch",
                                     std::to_string(a.batch), "--eval-every", "100000000", "--eval-windows", "1",
                                     "--cache-dir", dir + "/cache", "--quiet", "--no-plot"};
  std::vector<std::string> one = common, two = {"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  one.insert(one.end(), {"--threads", "2", "--accum", "2", "--out", dir + "/threads"});
  two.insert(two.end(), common.begin(), common.end());
  two.insert(two.end(), {"--threads", "1", "--accum", "1", "--out", dir + "/ranks"});
  run_child(one, dir + "/threads.log");
  run_child(two, dir + "/ranks.log");
  double t1 = 0, t2 = 0, c1 = 0, c2 = 0;
  read_rates(dir + "/threads", &t1, &c1);
  read_rates(dir + "/ranks", &t2, &c2);
  row->threads_tok_s = std::max(row->threads_tok_s, t1);
  row->ranks_tok_s = std::max(row->ranks_tok_s, t2);
  row->comm_s = row->comm_s == 0 ? c2 : std::min(row->comm_s, c2);
  ratios->push_back(t2 / t1);
  for (const char* f : {"/model.safetensors", "/optimizer.safetensors"})
    row->identical = row->identical && read_file(dir + "/threads" + f) == read_file(dir + "/ranks" + f);
}

// A model, not a measurement: N ranks, each as fast as this machine's 2-thread process, share the
// measured global batch (compute per step: t1 / N, t1 the 2-thread step time) and exchange gradients
// as dist.h does with one micro-batch per rank: alltoallv + allgatherv, 2 (N-1)/N x 4P bytes per rank
// over a link of B Gb/s, plus 2 (N-1) message latencies of 5 us. Without overlap (this trainer does
// not yet overlap the exchange with the backward) the step takes compute + comm; the table gives the
// speed-up over one rank and the first N where communication exceeds compute.
void print_scaling_model(const std::string& shape, int64_t P, double t1) {
  const int ranks[] = {2, 4, 8, 16, 32, 64, 128};
  std::printf("\nScaling model for %s (P = %lld parameters, 1-rank step %.3f s measured): speed-up over 1 rank\n\n",
              shape.c_str(), (long long)P, t1);
  std::printf("| link | comm s/step at N=2 |");
  for (int n : ranks) std::printf(" N=%d |", n);
  std::printf(" comm > compute from |\n|---|---|");
  for (size_t i = 0; i < std::size(ranks); i++) std::printf("---|");
  std::printf("---|\n");
  for (double gbps : {1.0, 10.0, 100.0}) {
    auto comm = [&](int n) { return 2.0 * (n - 1) / n * 4.0 * double(P) * 8.0 / (gbps * 1e9) + 2.0 * (n - 1) * 5e-6; };
    std::printf("| %.0f Gb/s | %.4f |", gbps, comm(2));
    int cross = 0;
    for (int n : ranks) {
      std::printf(" %.1f |", t1 / (t1 / n + comm(n)));
      if (!cross && comm(n) > t1 / n) cross = n;
    }
    if (cross) std::printf(" N=%d |\n", cross);
    else std::printf(" beyond %d |\n", ranks[std::size(ranks) - 1]);
  }
}

bool parse_mpi_args(int argc, char** argv, MpiArgs* a) {
  ArgParser p("bench mpi", "Data-parallel training on this machine: 2 MPI ranks x 1 thread against 1 process x 2 threads,\n"
                           "the same global batch (mpirun from PATH; bin/train next to bin/bench).");
  p.option("--shapes", &a->shapes, "presets, comma-separated", "LIST");
  p.option("--steps", &a->steps, "optimizer steps per run (the first two are warm-up)", 3, 100000);
  p.option("--batch", &a->batch, "sequences per micro-batch (the global batch is 2 micro-batches)", 1, 4096);
  p.option("--rounds", &a->rounds, "interleaved rounds (best of each, median of the per-round ratios)", 1, 100);
  p.option("--tmp", &a->tmp_dir, "directory for the runs (removed after)", "DIR");
  p.flag("--quick", &a->quick, "small only, 6 steps, 1 round");
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->shapes = "small";
    a->steps = 6;
    a->rounds = 1;
  }
  return true;
}

}  // namespace

int bench_mpi(int argc, char** argv) {
  MpiArgs a;
  if (!parse_mpi_args(argc, argv, &a)) return 0;
  const ParallelCheck pc = parallel_check();
  std::printf("%s\n%s\n\n", machine_summary().c_str(), pc.line().c_str());
  std::vector<MpiRow> rows;
  std::vector<double> ratio_medians;
  for (const std::string& shape : split(a.shapes, ',')) {
    (void)ModelConfig::preset_named(shape);  // a bad name fails before any run
    const std::string dir = a.tmp_dir + "/qat-bench-mpi-" + std::to_string(::getpid());
    remove_tree(dir);
    make_dirs(dir);
    MpiRow row{shape};
    std::vector<double> ratios;
    for (int64_t i = 0; i < a.rounds; i++) run_round(a, shape, dir, &row, &ratios);
    remove_tree(dir);
    QAT_CHECK(row.identical, "bench mpi: the 2-rank checkpoint of ", shape, " differs from the 2-thread one");
    rows.push_back(row);
    ratio_medians.push_back(median_of(ratios));
  }
  std::printf("| shape | batch x ctx x 2 | 1 process x 2 threads tok/s | 2 ranks x 1 thread tok/s | ranks / threads | "
              "comm s/step (rank 0) | checkpoints |\n|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rows.size(); i++) {
    const ModelConfig cfg = ModelConfig::preset_named(rows[i].shape);
    std::printf("| %s | %lld x %lld x 2 | %.0f | %.0f | %.2f | %.4f | byte-identical%s |\n", rows[i].shape.c_str(),
                (long long)a.batch, (long long)cfg.context, rows[i].threads_tok_s, rows[i].ranks_tok_s,
                ratio_medians[i], rows[i].comm_s,
                pc.ok ? "" : ("; " + thread_note(2, pc)).c_str());
  }
  for (const MpiRow& row : rows) {
    ModelConfig cfg = ModelConfig::preset_named(row.shape);
    cfg.vocab = 1024;  // bin/train's default BPE size, which these runs train
    const double t1 = double(a.batch * cfg.context * 2) / row.threads_tok_s;  // the global batch on 2 threads
    print_scaling_model(row.shape, parameter_count(cfg), t1);
  }
  return 0;
}

}  // namespace qat::bench
