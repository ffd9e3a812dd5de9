// gnuplot -c without a shell (see gnuplot.h).
#include "src/util/gnuplot.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>

#include "src/util/error.h"

extern char** environ;

namespace qat {

std::string run_gnuplot(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> a{"gnuplot", "-c", script};
  a.insert(a.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return str("cannot run gnuplot (", std::strerror(rc), "; apt-get install gnuplot-nox)");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : "gnuplot failed (its message is above)";
}

}  // namespace qat
