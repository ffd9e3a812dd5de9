// The PyTorch side of the training benchmarks (`bench torch`, `bench shapes`): runs
// tools/torch_train_bench.py in a child process and reads its JSON line, checks that torch imports,
// and pins a 1-thread comparison to one CPU. Read next: tools/torch_train_bench.py.
#pragma once
#include <sched.h>

#include <cstdint>
#include <optional>
#include <string>

#include "src/io/json.h"
#include "src/util/cli.h"

namespace qat::bench {

// The interpreter and the script; declare() adds their options, --python and --script.
struct TorchScript {
  std::string python = "/usr/bin/python3", script = "tools/torch_train_bench.py";
  void declare(ArgParser& p);
};

// PyTorch's version, or nothing after printing why the comparison is skipped (no script, no torch);
// `who` names the subcommand in that line.
std::optional<std::string> torch_version(const TorchScript& ts, const std::string& who);

// One run of the script: `steps` steps of which the first `warmup` are not timed, at its best setting
// for a budget of `threads` threads, on `preset` with the context `ctx`. Its JSON line
// (tokens_per_s, cores_used, best_threads, best_blas_threads, ...); throws with its output on failure.
struct TorchCall {
  std::string preset;
  int threads = 1;
  int64_t batch = 16, vocab = 1024, ctx = 0, steps = 8, warmup = 2;
};
Json run_torch(const TorchScript& ts, const TorchCall& call);

double cpu_seconds();  // this process, all threads: user + system

// One thread: both contenders pinned to the same CPU (PyTorch inherits the mask), since the two vCPUs
// of a shared host can differ in speed by 10% or more at a time (measured here: 6,377 vs 5,732
// tokens/s for our step on cpu 0 and cpu 1) and each process would otherwise land on either.
struct CpuPin {
  cpu_set_t all_cpus;  // the mask before, restored by unpin()
  bool pinned = false;
  int cpu = -1;        // the CPU both ran on; -1: not pinned
};
CpuPin pin_one_cpu(int threads);  // pins only when threads == 1
void unpin(const CpuPin& pin);

}  // namespace qat::bench
