// What the machine and this process hold in memory (see sysmem.h).
#include "src/util/sysmem.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace qat {

std::string human_bytes(double b) {
  const char* unit[] = {"MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = b / double(1 << 20);
  int u = 0;
  while (v >= 1024 && u < 4) { v /= 1024; u++; }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, unit[u]);
  return buf;
}

// The value of `key` in a "Key:   123 kB" file (/proc/meminfo, /proc/self/status), in bytes; -1 if absent.
static double proc_kb(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      std::istringstream rest(line.substr(key.size() + 1));
      double kb = -1;
      rest >> kb;
      return kb < 0 ? -1 : kb * 1024;
    }
  return -1;
}

// A number in a one-line cgroup file ("max" or unreadable: -1).
static double cgroup_value(const char* path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return -1;
  try { return std::stod(s); } catch (...) { return -1; }
}

double available_memory_bytes(std::string* source) {
  double avail = proc_kb("/proc/meminfo", "MemAvailable");
  *source = "MemAvailable";
  const double limit = cgroup_value("/sys/fs/cgroup/memory.max"), used = cgroup_value("/sys/fs/cgroup/memory.current");
  if (limit > 0 && used >= 0 && (avail < 0 || limit - used < avail)) {
    avail = std::max(0.0, limit - used);
    *source = "the cgroup's memory.max";
  }
  return std::max(avail, 0.0);
}

double current_rss_bytes() { return std::max(proc_kb("/proc/self/status", "VmRSS"), 0.0); }

double peak_rss_bytes() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) * 1024;  // Linux: kilobytes
}

}  // namespace qat
