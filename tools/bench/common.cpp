// Helpers shared by the bench subcommands (see bench.h): the common options, thread lists, the parallel check, machine facts, child processes.
#include <fcntl.h>
#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>

#include "src/nn/linear.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "tools/bench/bench.h"
#include "src/util/error.h"

extern char** environ;

namespace qat::bench {

std::vector<int> parse_threads(const std::string& flag, const std::string& list) {
  std::vector<int> v;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != 0 || n < 1 || n > 4096)
      throw UsageError(str(flag, ": expected thread counts like 1,2, got '", list, "'"));
    v.push_back(int(n));
  }
  if (v.empty()) throw UsageError(str(flag, ": expected at least one thread count"));
  return v;
}

void ModelBenchArgs::declare(ArgParser& p, const std::string& quick_help, bool preset_option) {
  if (preset_option) p.option("--preset", &preset, str("model preset: ", ModelConfig::preset_names()), "NAME");
  p.option("--threads", &thread_list, "thread counts", "LIST");
  p.option("--goals", &goals_path, "append the goals (tab-separated) to this file, for `bench all`", "FILE");
  p.flag("--quick", &quick, quick_help);
}

void ModelBenchArgs::resolve() {
  threads = parse_threads("--threads", thread_list);
  if (!preset.empty()) cfg = ModelConfig::preset_named(preset);
}

std::string ParallelCheck::line() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", ratio);
  return str("Parallel check: 2 threads spinning the same fixed loop took ", buf, "x the wall time of 1 (1.00 = two free ",
             "cores, 2.00 = one) -> ", ok ? "passed: 2-thread rows are meaningful"
                                          : str("FAILED (> ", kMaxRatio, "): 2-thread rows are marked unreliable"));
}

ParallelCheck parallel_check() {
  auto spin = [] {
    uint64_t x = 1;
    for (int i = 0; i < 30000000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
  };
  auto run = [&](int threads) {
    std::vector<uint64_t> sink(size_t(threads), 0);
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    sink[size_t(omp_get_thread_num())] = spin();
    const double t = seconds_since(t0);
    if (sink[0] == 42) std::printf(" ");  // keeps the loops
    return t;
  };
  run(2);  // wakes the OpenMP workers
  std::vector<double> r;
  for (int i = 0; i < 3; i++) {
    const double t1 = run(1);
    r.push_back(run(2) / t1);
  }
  ParallelCheck pc;
  pc.ratio = median(r);
  pc.ok = pc.ratio <= ParallelCheck::kMaxRatio;
  return pc;
}

std::string thread_note(int threads, const ParallelCheck& pc) {
  return threads > 1 && !pc.ok ? "unreliable: cores busy (parallel check failed)" : "";
}

std::string load_average() {
  std::string s = "?";
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    char buf[64];
    if (std::fgets(buf, sizeof buf, f)) s = buf;
    std::fclose(f);
  }
  return s.substr(0, s.find(' '));
}

std::string machine_summary() {
  const CpuFeatures& f = cpu_features();
  return str("CPU: ", f.brand, " (", omp_get_num_procs(), " hardware threads); ISA: ", f.flags(), "; kernel table: ",
             kernels().name, "; compiler: g++ ", __VERSION__, "; ", backend_versions(), "; load average: ", load_average());
}

std::string this_machine_key() { return machine_key(cpu_features().brand, kernels().name); }

void append_goals(const std::string& path, const std::vector<Goal>& goals) {
  if (path.empty()) return;
  std::string text;
  for (const Goal& g : goals) text += goal_line(g);
  FILE* f = std::fopen(path.c_str(), "a");
  QAT_CHECK(f, "--goals: cannot open ", path);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  QAT_CHECK(std::fclose(f) == 0 && ok, "--goals: cannot write ", path);
}

// A tokenizer with exactly `vocab` tokens for the GGUF files (the file holds the vocabulary), trained
// on generated text with enough distinct pairs to fill it.
Tokenizer bench_tokenizer(int vocab) {
  std::vector<std::string> docs;
  Rng rng(11);
  for (int d = 0; d < 300; d++) {
    std::string s;
    for (int w = 0; w < 60; w++) {
      const int len = 2 + int(rng.below(7));
      for (int i = 0; i < len; i++) s += char('a' + rng.below(26));
      s += ' ';
    }
    docs.push_back(s);
  }
  Tokenizer t = Tokenizer::train(docs, vocab);
  QAT_CHECK(t.vocab_size() == vocab, "bench: the generated text gave ", t.vocab_size(), " tokens, not ", vocab);
  return t;
}

std::string utc_now() {
  char buf[64];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

int spawn_child(std::vector<std::string> args, const std::string& out, const std::string& err, bool search_path,
                const std::string& what) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out.empty()) posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  else posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err.empty()) posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = search_path ? ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ)
                             : ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  QAT_CHECK(rc == 0, what, ": cannot start ", args[0], ": ", std::strerror(rc));
  return int(pid);
}

int wait_child(int pid) {
  int status = 0;
  while (::waitpid(pid_t(pid), &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

}  // namespace qat::bench
