// Running the built binaries (bin/train, bin/generate, ...) as child processes, for the tests that check
// what a user sees (tests/test_cli.cpp) and what survives SIGKILL (tests/test_faults.cpp): posix_spawn
// with stdin from /dev/null, stdout and stderr captured in files, extra environment variables, a time
// limit, SIGKILL. Binaries are found relative to the repository root, where `make test` runs the suite.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "src/io/file.h"
#include "src/util/error.h"

extern char** environ;

namespace qat::test {

// A directory under /tmp that is removed with everything in it when the object goes.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& name) : path("/tmp/qat-test-" + name + "-" + std::to_string(::getpid())) {
    remove_tree(path);
    make_dirs(path);
  }
  ~ScratchDir() { remove_tree(path); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string put(const std::string& name, const std::string& bytes) const {
    std::string p = path + "/" + name;
    write_file_atomic(p, bytes);
    return p;
  }
};

struct ProcResult {
  int code = -1;       // exit status when the process exited, else -1
  int signal = 0;      // the signal that ended it (0: it exited)
  bool timed_out = false;
  std::string out, err;  // what it wrote to stdout / stderr
  std::string what() const {  // for INFO(): how it ended and its stderr
    return (signal ? "killed by signal " + std::to_string(signal) : "exit " + std::to_string(code)) +
           (timed_out ? " (timed out)" : "") + "; stderr: " + err;
  }
};

inline double monotonic_s() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

inline void sleep_s(double s) {
  if (s <= 0) return;
  timespec ts{time_t(s), long((s - double(time_t(s))) * 1e9)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// One child process. Its stdout / stderr go to "<log_prefix>.out" / ".err".
class Child {
 public:
  // stdin_path: the file standard input reads (bin/generate --chat's turns).
  Child(const std::vector<std::string>& argv, const std::string& log_prefix,
        const std::vector<std::string>& env = {}, const std::string& stdin_path = "/dev/null")
      : out_path_(log_prefix + ".out"), err_path_(log_prefix + ".err") {
    std::vector<std::string> envs;
    for (char** e = environ; *e; e++) {
      std::string kv = *e;
      bool overridden = false;
      for (const std::string& o : env) overridden = overridden || kv.compare(0, o.find('=') + 1, o, 0, o.find('=') + 1) == 0;
      if (!overridden) envs.push_back(kv);
    }
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : envs) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) fail("cannot start ", argv[0], ": ", std::strerror(rc), " (tests run from the repository root)");
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      reap(true);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void kill() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  pid_t pid() const { return pid_; }  // -1 once reaped
  // True once the process has ended (then wait() returns at once).
  bool done() { return pid_ <= 0 || reap(false); }
  // Waits for the end (SIGKILL after timeout_s) and collects the output.
  ProcResult wait(double timeout_s = 120) {
    double t_end = monotonic_s() + timeout_s;
    while (!done()) {
      if (monotonic_s() > t_end) {
        ::kill(pid_, SIGKILL);
        reap(true);
        res_.timed_out = true;
        break;
      }
      sleep_s(0.002);
    }
    res_.out = read_file(out_path_);
    res_.err = read_file(err_path_);
    return res_;
  }

 private:
  bool reap(bool block) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_) return false;
    if (WIFEXITED(status)) res_.code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) res_.signal = WTERMSIG(status);
    pid_ = -1;
    return true;
  }
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  ProcResult res_;
};

// Runs argv to the end (SIGKILL after timeout_s); logs go to "<log_prefix>.out/.err".
inline ProcResult run_proc(const std::vector<std::string>& argv, const std::string& log_prefix,
                           const std::vector<std::string>& env = {}, double timeout_s = 120) {
  Child c(argv, log_prefix, env);
  return c.wait(timeout_s);
}

// The lines of `text` (without their '\n'; a last line without '\n' counts).
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Waits until `path` (a run's metrics.jsonl) holds at least n lines, the child has ended, or timeout_s
// has passed: a signal sent next lands mid-run.
inline void wait_for_lines(Child& job, const std::string& path, size_t n, double timeout_s = 60) {
  for (double t = monotonic_s(); monotonic_s() - t < timeout_s && !job.done();) {
    if (file_exists(path) && lines_of(read_file(path)).size() >= n) return;
    sleep_s(0.01);
  }
}

// The corpus the training tests use: 300 short documents in fortune format, from a fixed generator.
inline std::string synthetic_corpus(int docs = 300) {
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from",
                         "home", "while", "it", "rained", "all", "day", "long", "in", "town", "quietly"};
  std::string text;
  uint64_t x = 12345;
  for (int d = 0; d < docs; d++) {
    int n = 6 + int(x % 9);
    for (int i = 0; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      text += words[(x >> 33) % 22];
      text += i + 1 < n ? " " : ".\n";
    }
    text += "%\n";
  }
  return text;
}

// A tiny model trained 2 steps on synthetic_corpus(docs) with context `ctx`, exported as a q8_0 GGUF
// in `dir` (bin/train then bin/quantize, as a user would); returns the GGUF's path.
inline std::string tiny_q8_0_gguf(const ScratchDir& dir, int docs, int ctx, int batch) {
  std::string corpus = dir.put("corpus.txt", synthetic_corpus(docs)), ckpt = dir.path + "/ckpt";
  ProcResult r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", std::to_string(ctx),
                           "--batch", std::to_string(batch), "--steps", "2", "--threads", "1", "--out", ckpt,
                           "--cache-dir", dir.path + "/cache", "--quiet", "--no-plot"},
                          dir.path + "/train");
  if (r.code != 0) fail("fixture: bin/train failed: ", r.what());
  const std::string gguf = dir.path + "/model.gguf";
  r = run_proc({"bin/quantize", "--model", ckpt, "--scheme", "q8_0", "--to-gguf", gguf, "--threads", "1"}, dir.path + "/quantize");
  if (r.code != 0) fail("fixture: bin/quantize failed: ", r.what());
  return gguf;
}

}  // namespace qat::test
