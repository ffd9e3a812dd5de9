// The PyTorch child process of the training benchmarks (see torch_side.h).
#include "tools/bench/torch_side.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>

#include "src/io/file.h"
#include "src/util/error.h"

namespace qat::bench {
namespace {

// Runs `cmd` through the shell; returns its exit status and (in *out) stdout and stderr together.
int run_capture(const std::string& cmd, std::string* out) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  QAT_CHECK(f, "cannot run '", cmd, "'");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The script's JSON line (its last line starting with '{').
Json torch_result(const std::string& out, const std::string& cmd) {
  size_t pos = out.rfind("\n{");
  pos = pos == std::string::npos ? (out.rfind('{', 0) == 0 ? 0 : std::string::npos) : pos + 1;
  QAT_CHECK(pos != std::string::npos, "'", cmd, "' printed no JSON line; its output:\n", out);
  return Json::parse(out.substr(pos, out.find('\n', pos) - pos));
}

}  // namespace

void TorchScript::declare(ArgParser& p) {
  p.option("--python", &python, "the Python interpreter (Debian's, where python3-torch installs)", "PATH");
  p.option("--script", &script, "the PyTorch side", "PATH");
}

std::optional<std::string> torch_version(const TorchScript& ts, const std::string& who) {
  std::string out;
  if (!file_exists(ts.script)) {
    std::printf("%s: skipped: %s does not exist (run from the repository root)\n", who.c_str(), ts.script.c_str());
    return std::nullopt;
  }
  if (run_capture(shell_quote(ts.python) + " -c 'import torch; print(torch.__version__)'", &out) != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::printf("%s: skipped: %s cannot import torch (apt-get install python3-torch): %s\n", who.c_str(), ts.python.c_str(),
                out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1).c_str());
    return std::nullopt;
  }
  return out.substr(0, out.find('\n'));
}

Json run_torch(const TorchScript& ts, const TorchCall& c) {
  const std::string cmd = str(shell_quote(ts.python), " ", shell_quote(ts.script), " --preset ", c.preset, " --threads ",
                              c.threads, " --batch ", c.batch, " --vocab ", c.vocab, " --ctx ", c.ctx, " --steps ", c.steps,
                              " --warmup ", c.warmup);
  std::string out;
  QAT_CHECK(run_capture(cmd, &out) == 0, "'", cmd, "' failed:\n", out);
  return torch_result(out, cmd);
}

double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

CpuPin pin_one_cpu(int threads) {
  CpuPin pin;
  CPU_ZERO(&pin.all_cpus);
  pin.pinned = threads == 1 && sched_getaffinity(0, sizeof pin.all_cpus, &pin.all_cpus) == 0;
  if (pin.pinned) {
    cpu_set_t one;
    CPU_ZERO(&one);
    pin.cpu = sched_getcpu();
    CPU_SET(pin.cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) pin.cpu = -1;
  }
  return pin;
}

void unpin(const CpuPin& pin) {
  if (pin.pinned) sched_setaffinity(0, sizeof pin.all_cpus, &pin.all_cpus);
}

}  // namespace qat::bench
