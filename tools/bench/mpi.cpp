// `bench mpi`: data-parallel training against threads on one machine (issue 18). For each shape, the
// same global batch three ways: one process x 2 threads with --accum 2, and `mpirun -np 2` x 1 thread
// with --accum 1 (models/train/dist.h), once with the gradient exchange overlapping the backward (the
// default buckets) and once after it (--bucket-mb 0). All are bin/train child processes; their
// metrics.jsonl give each step's tokens/s and, for the ranks, the seconds rank 0 spent in exchanges
// exposed_s: the seconds rank 0 waited for the gradient sum after its backward ended, i.e. the part of
// the exchange the backward did not hide, fold included; with --bucket-mb 0 that is the whole exchange)
// and in the backward (backward_s). comm_s (every second inside an exchange call, the polls made during
// the backward included) is not used: with overlap it counts time the backward was also running. The three checkpoints must be
// byte-identical (the invariant), and the table says so. Then a scaling model for clusters from the
// measured numbers, as a table and a PNG (print_scaling_model, draw_scaling_plot). Read next:
// models/train/dist.cpp.
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

namespace qat::bench {

namespace {

struct MpiArgs {
  std::string shapes = "small,15m", tmp_dir = "/tmp", plot = "docs/bench-mpi-scaling.png";
  int64_t steps = 12, batch = 8, rounds = 2;
  bool quick = false;
};

std::string train_binary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("bin/train") : (self.parent_path() / "train").string();
}

// Runs argv (found on PATH) to the end, stdout and stderr into `log`; an error with the log on failure.
void run_child(const std::vector<std::string>& args, const std::string& log) {
  const int status = wait_child(spawn_child(args, log, "", true, "bench mpi"));
  QAT_CHECK(exited_ok(status), "bench mpi: ", args[0], " failed: ", read_file(log));
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The median tokens/s, exposed_s and backward_s of the steps after the first two (warm-up) in
// <out>/metrics.jsonl.
struct Rates {
  double tok_s = 0, exposed_s = 0, backward_s = 0;
};
Rates read_rates(const std::string& out) {
  std::vector<double> rates, exposed, backward;
  for (const std::string& line : split(read_file(out + "/metrics.jsonl"), '\n')) {
    if (line.empty()) continue;
    Json j = Json::parse(line);
    if (!j.contains("tokens_per_s") || j.at("step").as_int() <= 2) continue;
    rates.push_back(j.at("tokens_per_s").as_double());
    if (const Json* c = j.find("exposed_s")) exposed.push_back(c->as_double());
    if (const Json* c = j.find("backward_s")) backward.push_back(c->as_double());
  }
  return {median_of(rates), median_of(exposed), median_of(backward)};
}

struct MpiRow {
  std::string shape;
  double threads_tok_s = 0, ranks_tok_s = 0, after_tok_s = 0;  // best of the rounds
  double exposed_s = 0, total_s = 0;  // rank 0's wait for the gradient sum after the backward, s/step: with
                                      // the overlap, and with the whole exchange after the backward
  double backward_s = 0, step_s = 0;          // rank 0's backward and whole step (overlapped run), s/step
  bool identical = true;
};

// The smallest of the rounds (a busy host only adds time).
void keep_min(double* slot, double v) { *slot = *slot == 0 ? v : std::min(*slot, v); }

// One round of a shape: the 2-thread process, then the 2 ranks with and without overlap, the same
// global batch and seed.
void run_round(const MpiArgs& a, const std::string& shape, const std::string& dir, MpiRow* row,
               std::vector<double>* ratios) {
  const std::string bin = train_binary();
  std::vector<std::string> common = {bin, "--preset", shape, "--steps", std::to_string(a.steps), "--batch",
                                     std::to_string(a.batch), "--eval-every", "100000000", "--eval-windows", "1",
                                     "--cache-dir", dir + "/cache", "--quiet", "--no-plot"};
  std::vector<std::string> one = common, two = {"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  one.insert(one.end(), {"--threads", "2", "--accum", "2", "--out", dir + "/threads"});
  two.insert(two.end(), common.begin(), common.end());
  two.insert(two.end(), {"--threads", "1", "--accum", "1"});
  std::vector<std::string> overlap = two, after = two;
  overlap.insert(overlap.end(), {"--out", dir + "/ranks"});
  after.insert(after.end(), {"--bucket-mb", "0", "--out", dir + "/after"});
  run_child(one, dir + "/threads.log");
  run_child(overlap, dir + "/ranks.log");
  run_child(after, dir + "/after.log");
  const Rates t = read_rates(dir + "/threads"), r = read_rates(dir + "/ranks"), n = read_rates(dir + "/after");
  const ModelConfig cfg = ModelConfig::preset_named(shape);
  row->threads_tok_s = std::max(row->threads_tok_s, t.tok_s);
  row->ranks_tok_s = std::max(row->ranks_tok_s, r.tok_s);
  row->after_tok_s = std::max(row->after_tok_s, n.tok_s);
  keep_min(&row->exposed_s, r.exposed_s);
  keep_min(&row->total_s, n.exposed_s);
  keep_min(&row->backward_s, r.backward_s);
  keep_min(&row->step_s, double(a.batch * cfg.context * 2) / r.tok_s);
  ratios->push_back(r.tok_s / t.tok_s);
  for (const char* f : {"/model.safetensors", "/optimizer.safetensors"}) {
    const std::string want = read_file(dir + "/threads" + f);
    row->identical = row->identical && want == read_file(dir + "/ranks" + f) && want == read_file(dir + "/after" + f);
  }
}

// A model, not a measurement. N ranks, each as fast as this machine's 2-thread process, share the
// measured global batch: compute per step c(N) = t1 / N (t1: the 2-thread step time), of which the
// backward is b(N) = beta x c(N) (beta: rank 0's backward share of its compute, measured). The
// exchange is dist.h's with one micro-batch per rank, alltoallv + allgatherv: 2 (N-1)/N x 4P bytes per
// rank over a link of B Gb/s, plus 2 (N-1) message latencies of 5 us: comm(N). It overlaps the
// backward, so what a step pays is exposed(N) = max((1 - phi) comm(N), comm(N) - b(N)): phi is the
// share of the exchange the overlap hid here (measured: 1 - exposed / total at N = 2), and beyond
// comm(N) > b(N) the backward is too short to hide it. Step time c(N) + exposed(N).
struct ScalingModel {
  std::string shape;
  int64_t P = 0;
  double t1 = 0, beta = 0, phi = 0;
  double compute(int n) const { return t1 / n; }
  double backward(int n) const { return beta * compute(n); }
  static double comm(int n, int64_t P, double gbps) {
    return 2.0 * (n - 1) / n * 4.0 * double(P) * 8.0 / (gbps * 1e9) + 2.0 * (n - 1) * 5e-6;
  }
  double exposed(int n, double gbps) const {
    const double c = comm(n, P, gbps);
    return std::max((1.0 - phi) * c, c - backward(n));
  }
  // The first rank count (of `ranks`) where the backward no longer covers the exchange; 0: none.
  int stops_hiding(double gbps) const;
};
constexpr int kRanks[] = {2, 4, 8, 16, 32, 64, 128, 256};
constexpr double kLinks[] = {1.0, 10.0, 100.0};

int ScalingModel::stops_hiding(double gbps) const {
  for (int n : kRanks)
    if (comm(n, P, gbps) > backward(n)) return n;
  return 0;
}

void print_scaling_model(const ScalingModel& m) {
  std::printf("\nScaling model for %s (P = %lld parameters; measured: 1-rank step %.3f s, backward %.0f%% of compute, "
              "%.0f%% of the exchange hidden): speed-up over 1 rank\n\n",
              m.shape.c_str(), (long long)m.P, m.t1, 100 * m.beta, 100 * m.phi);
  std::printf("| link | comm s/step at N=2 |");
  for (int n : kRanks) std::printf(" N=%d |", n);
  std::printf(" comm > backward from |\n|---|---|");
  for (size_t i = 0; i < std::size(kRanks); i++) std::printf("---|");
  std::printf("---|\n");
  for (double gbps : kLinks) {
    std::printf("| %.0f Gb/s | %.4f |", gbps, ScalingModel::comm(2, m.P, gbps));
    for (int n : kRanks) std::printf(" %.1f |", m.t1 / (m.compute(n) + m.exposed(n, gbps)));
    const int cross = m.stops_hiding(gbps);
    if (cross) std::printf(" N=%d |\n", cross);
    else std::printf(" beyond %d |\n", kRanks[std::size(kRanks) - 1]);
  }
}

// The model as a PNG (gnuplot pngcairo, as bench all draws its chart): one panel per shape, seconds
// per step against the rank count, log-log: compute and backward per step, and the exchange at each
// link speed. Returns "" when drawn, else why not.
std::string draw_scaling_plot(const std::vector<ScalingModel>& models, const std::string& png) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "gnuplot is not installed (apt-get install gnuplot-nox)";
  std::string script = str("set terminal pngcairo noenhanced size ", 560 * models.size(), ",460 font 'sans,10'\n",
                           "set output '", png, "'\nset multiplot layout 1,", models.size(), "\n",
                           "set logscale xy 2\nset logscale y 10\nset grid\nset key bottom left font 'sans,8'\n",
                           "set xlabel 'ranks N'\nset ylabel 'seconds per step'\nset xrange [2:256]\n");
  for (const ScalingModel& m : models) {
    std::string data;
    for (int n : kRanks) {
      data += str(n, " ", m.compute(n), " ", m.backward(n));
      for (double gbps : kLinks) data += str(" ", ScalingModel::comm(n, m.P, gbps));
      data += "\n";
    }
    script += str("set title '", m.shape, ": P = ", m.P, ", 1-rank step ", m.t1, " s (measured)'\n$d_", m.shape,
                  " << EOD\n", data, "EOD\n", "plot $d_", m.shape, " using 1:2 with linespoints lw 2 lc rgb '#222222' "
                  "title 'compute per step (t1 / N)', $d_", m.shape, " using 1:3 with linespoints lw 2 dt 2 lc rgb "
                  "'#222222' title 'backward (hides the exchange)'");
    const char* colors[] = {"#cc3311", "#ee7733", "#0077bb"};
    for (size_t i = 0; i < std::size(kLinks); i++)
      script += str(", $d_", m.shape, " using 1:", 4 + i, " with linespoints lw 2 lc rgb '", colors[i],
                    "' title 'exchange at ", kLinks[i], " Gb/s'");
    script += "\n";
  }
  script += "unset multiplot\n";
  FILE* f = ::popen("gnuplot", "w");
  if (!f) return "cannot run gnuplot";
  std::fwrite(script.data(), 1, script.size(), f);
  const int st = ::pclose(f);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : "gnuplot failed (its message is above)";
}

bool parse_mpi_args(int argc, char** argv, MpiArgs* a) {
  ArgParser p("bench mpi", "Data-parallel training on this machine: 2 MPI ranks x 1 thread against 1 process x 2 threads,\n"
                           "the same global batch (mpirun from PATH; bin/train next to bin/bench).");
  p.option("--shapes", &a->shapes, "presets, comma-separated", "LIST");
  p.option("--steps", &a->steps, "optimizer steps per run (the first two are warm-up)", 3, 100000);
  p.option("--batch", &a->batch, "sequences per micro-batch (the global batch is 2 micro-batches)", 1, 4096);
  p.option("--rounds", &a->rounds, "interleaved rounds (best of each, median of the per-round ratios)", 1, 100);
  p.option("--tmp", &a->tmp_dir, "directory for the runs (removed after)", "DIR");
  p.option("--plot", &a->plot, "the scaling model's PNG (\"\": none)", "PATH");
  p.flag("--quick", &a->quick, "small only, 6 steps, 1 round");
  if (!p.parse(argc, argv)) return false;
  // The path goes into a gnuplot script inside single quotes: a quote or a line break could end it.
  if (a->plot.find_first_of("'\n\r\\") != std::string::npos)
    throw UsageError("--plot: the path may not hold a quote, a backslash or a line break");
  if (a->quick) {
    a->shapes = "small";
    a->steps = 6;
    a->rounds = 1;
  }
  return true;
}

// The share of the exchange the overlap hid: 1 - exposed / total (0 when nothing was measured).
double hidden_share(const MpiRow& w) {
  return w.total_s > 0 ? std::clamp(1.0 - w.exposed_s / w.total_s, 0.0, 1.0) : 0.0;
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
  std::printf("| shape | batch x ctx x 2 | 1 process x 2 threads tok/s | 2 ranks x 1 thread tok/s, overlapped | "
              "2 ranks, exchange after the backward | overlapped ranks / threads | gradient-sum wait s/step "
              "overlapped / after (hidden) | backward s/step | checkpoints |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < rows.size(); i++) {
    const MpiRow& w = rows[i];
    const ModelConfig cfg = ModelConfig::preset_named(w.shape);
    std::printf("| %s | %lld x %lld x 2 | %.0f | %.0f | %.0f | %.2f | %.4f / %.4f (%.0f%%) | %.3f | byte-identical%s |\n",
                w.shape.c_str(), (long long)a.batch, (long long)cfg.context, w.threads_tok_s, w.ranks_tok_s,
                w.after_tok_s, ratio_medians[i], w.exposed_s, w.total_s, 100 * hidden_share(w), w.backward_s,
                pc.ok ? "" : ("; " + thread_note(2, pc)).c_str());
  }
  std::vector<ScalingModel> models;
  for (const MpiRow& row : rows) {
    ModelConfig cfg = ModelConfig::preset_named(row.shape);
    cfg.vocab = 1024;  // bin/train's default BPE size, which these runs train
    ScalingModel m{row.shape, parameter_count(cfg)};
    m.t1 = double(a.batch * cfg.context * 2) / row.threads_tok_s;  // the global batch on 2 threads
    m.beta = std::clamp(row.backward_s / std::max(1e-9, row.step_s - row.exposed_s), 0.0, 1.0);
    m.phi = hidden_share(row);
    print_scaling_model(m);
    models.push_back(m);
  }
  if (!a.plot.empty()) {
    const std::string why = draw_scaling_plot(models, a.plot);
    if (why.empty()) std::printf("\nplot: %s\n", a.plot.c_str());
    else std::printf("\nplot: not drawn: %s\n", why.c_str());
  }
  return 0;
}

}  // namespace qat::bench
