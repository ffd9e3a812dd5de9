// loss.png: tools/plot started without a shell (see run_state.h).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "models/train/run_state.h"
#include "src/util/error.h"

extern char** environ;

namespace qat {

namespace {
// tools/plot of the tree this binary was built in (<repo>/bin/<exe> -> <repo>/tools/plot), so that the
// plot does not depend on the working directory; "" when /proc/self/exe cannot be read.
std::string plot_script() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  const std::string exe(buf, size_t(n));
  return exe.substr(0, exe.rfind('/') + 1) + "../tools/plot";
}

}  // namespace

// Runs tools/plot on `dir` with an argument vector (no shell: the directory name is data, whatever it
// holds). Returns "" when loss.png was drawn, else one line saying why not.
std::string draw_plot(const std::string& dir) {
  const std::string script = plot_script();
  if (script.empty()) return "cannot find tools/plot (/proc/self/exe is unreadable)";
  if (::access(script.c_str(), X_OK) != 0) return str(script, ": ", std::strerror(errno));
  int fds[2];
  if (::pipe(fds) != 0) return str("pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);  // its stderr: the reason, when it fails
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::string a0 = script, a1 = dir;
  char* argv[] = {a0.data(), a1.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, script.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  std::string err;
  char chunk[512];
  for (ssize_t k; rc == 0 && ((k = ::read(fds[0], chunk, sizeof chunk)) > 0 || (k < 0 && errno == EINTR));)
    if (k > 0) err.append(chunk, size_t(k));
  ::close(fds[0]);
  if (rc != 0) return str("cannot start ", script, ": ", std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  const std::string first = err.substr(0, err.find('\n'));
  return first.empty() ? str(script, " failed") : first;
}

}  // namespace qat
