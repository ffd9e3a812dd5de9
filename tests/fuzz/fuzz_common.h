// Shared by the libFuzzer targets added for the tokenizer, the token cache, config.json and the GGUF
// model loader: the invariant check that aborts (libFuzzer saves the input), and a scratch file for
// loaders that take a path (in /dev/shm when there is one, so that no disk I/O limits the rate).
#pragma once
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define FUZZ_CHECK(ok, what)                                               \
  do {                                                                     \
    if (!(ok)) {                                                           \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, what); \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

// Scratch paths are removed when the fuzzer exits normally (-max_total_time, -runs); a crash leaves
// them, next to its saved input. A directory's files are removed, then the directory (one level).
inline std::vector<std::string>& fuzz_scratch_paths() {
  static std::vector<std::string> paths;
  return paths;
}
inline void fuzz_scratch_remove() {
  for (const std::string& p : fuzz_scratch_paths()) {
    if (DIR* d = ::opendir(p.c_str())) {
      while (dirent* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ::unlink((p + "/" + e->d_name).c_str());
      ::closedir(d);
      ::rmdir(p.c_str());
    } else {
      ::unlink(p.c_str());
    }
  }
}

// "<dir>/qat-fuzz-<name>-<pid><suffix>" in /dev/shm (or /tmp); the caller creates it (a file or a
// directory).
inline std::string fuzz_scratch(const std::string& name, const std::string& suffix = "") {
  struct stat st;
  std::string base = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  std::string path = base + "/qat-fuzz-" + name + "-" + std::to_string(::getpid()) + suffix;
  if (fuzz_scratch_paths().empty()) std::atexit(fuzz_scratch_remove);
  fuzz_scratch_paths().push_back(path);
  return path;
}
