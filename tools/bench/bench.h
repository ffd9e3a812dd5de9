// bin/bench's subcommands beyond `kernels` and `peak` (those live in tools/bench.cpp), one file each:
//   train.cpp   `bench train` (FP32 vs QAT step time) and `bench torch` (our FP32 step vs PyTorch's)
//   shapes.cpp  `bench shapes` (training tokens/s, GFLOP/s, MFU, QAT / FP32 and PyTorch per model shape)
//   serve.cpp   `bench serve` (prefill / decode tokens/s per backend, GGUF file sizes)
//   serve_load.cpp  `bench serve-load` (bin/serve and llama-server under 1-64 concurrent streaming clients)
//   tokenizer.cpp  `bench tokenizer` (BPE training and encoding MB/s per vocab size, peak RSS)
//   mpi.cpp     `bench mpi` (2 MPI ranks x 1 thread against 1 process x 2 threads, comm time per step)
//   llama.cpp   `bench llama` (against llama.cpp's llama-bench on the same GGUF files, a ladder of shapes)
//   all.cpp     `bench all` (every subcommand, then the machine's section of docs/BENCHMARKS.md + chart)
// and the helpers they share (common.cpp; the timed training step: train_step.h; the PyTorch child
// process: torch_side.h). Pure report logic: src/util/bench_report.h.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "models/config.h"
#include "src/util/bench_report.h"
#include "src/util/cli.h"

namespace qat::bench {

int bench_train(int argc, char** argv);
int bench_torch(int argc, char** argv);
int bench_shapes(int argc, char** argv);
int bench_serve(int argc, char** argv);
int bench_tokenizer(int argc, char** argv);
int bench_mpi(int argc, char** argv);
int bench_serve_load(int argc, char** argv);
int bench_all(int argc, char** argv);
int bench_llama(int argc, char** argv);

// The command-line options every model benchmark (train, torch, serve, shapes) shares: declare() adds
// --preset (unless preset_option is false: `bench shapes` takes a list of shapes), --threads, --goals
// and --quick to a parser; resolve(), after parsing, fills `threads` and `cfg` (the latter when a
// preset is set; UsageError on a bad list or preset). Each subcommand's Args derives from it.
struct ModelBenchArgs {
  std::string preset, thread_list = "1,2", goals_path;
  bool quick = false;
  std::vector<int> threads;  // from thread_list
  ModelConfig cfg;           // the preset's
  void declare(ArgParser& p, const std::string& quick_help, bool preset_option = true);
  void resolve();
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// "1,2" -> {1, 2}; UsageError naming `flag` on anything but positive integers.
std::vector<int> parse_threads(const std::string& flag, const std::string& list);

// Both cores really run in parallel: a fixed integer loop on 1 thread, then on 2 threads at once (each
// thread the whole loop), median of 3 tries of t(2) / t(1). Near 1.0 when two cores are free; near 2.0
// when the threads share one core (a busy host, or one vCPU).
struct ParallelCheck {
  double ratio = 0;
  bool ok = false;  // ratio <= kMaxRatio
  static constexpr double kMaxRatio = 1.3;
  std::string line() const;  // "Parallel check: 2 threads took 1.04x the time of 1 ... (passed)"
};
ParallelCheck parallel_check();
// The note on rows at `threads` when the check failed ("unreliable: ..."), else "".
std::string thread_note(int threads, const ParallelCheck& pc);

// The machine: "CPU ...; ISA ...; kernel table ...; load average ..." and the docs section key.
std::string machine_summary();
std::string this_machine_key();
std::string load_average();
// A tokenizer with exactly `vocab` tokens (a GGUF file holds its vocabulary), trained on generated
// text with enough distinct pairs to fill it: what the random-weight benchmark models are written with.
Tokenizer bench_tokenizer(int vocab);
// "2026-12-05 22:49 UTC"
std::string utc_now();
// printf-formats one number (table cells).
std::string fmt(const char* f, double v);

// Appends goals to `path` (goal_line per goal; nothing when path is empty).
void append_goals(const std::string& path, const std::vector<Goal>& goals);

// ---- child processes (nothing goes through a shell) ----

// Starts args[0] (a path; with `search_path`, looked up on PATH) with stdin from /dev/null, stdout into
// the file `out` ("" : /dev/null) and stderr into `err` ("" : where stdout goes). Returns its pid; an
// Error "<what>: cannot start <program>: <reason>" when it cannot start.
int spawn_child(std::vector<std::string> args, const std::string& out, const std::string& err, bool search_path,
                const std::string& what);
// Waits for the child to end (EINTR retried) and returns its wait status.
int wait_child(int pid);
// Whether a wait status is a normal exit with status 0.
bool exited_ok(int status);

}  // namespace qat::bench
