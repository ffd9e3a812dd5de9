// Profiler (see profile.h). Scopes are opened on the main thread (ops are called from it; OpenMP
// threads live inside them), so the bookkeeping needs no locks; a scope opened on another thread is
// ignored.
#include "src/util/profile.h"

#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <thread>

#include "src/io/file.h"
#include "src/io/json.h"

namespace qat::prof {

bool g_on = false;

namespace {
using Clock = std::chrono::steady_clock;
struct Frame {
  const char* name;
  Phase phase;
  double flops, bytes;
  Clock::time_point start;
  double child = 0;  // seconds spent in nested scopes
};
struct Event {
  const char* name;
  Phase phase;
  double start_us, dur_us;
};
bool g_trace = false;
std::thread::id g_owner;
std::vector<Frame> g_stack;
std::map<std::pair<std::string, Phase>, Row> g_rows;
// Rows by the scope's name pointer (string literals: stable), so that closing a scope costs a hash
// lookup rather than building a std::string key and searching the map (which cost ~0.2 us a scope,
// 15% of a decoded token's 130 scopes). Equal names at different addresses share the row of g_rows.
struct FastKey {
  const char* name;
  Phase phase;
  bool operator==(const FastKey& o) const { return name == o.name && phase == o.phase; }
};
struct FastHash {
  size_t operator()(const FastKey& k) const { return std::hash<const void*>()(k.name) ^ size_t(k.phase); }
};
std::unordered_map<FastKey, Row*, FastHash> g_fast;
std::vector<Event> g_events;
Clock::time_point g_t0;
std::vector<double> g_thread_cpu;   // each thread's CPU clock at the open interval's start
std::vector<double> g_thread_busy;  // CPU seconds per thread over the closed intervals
double g_wall_start = 0, g_wall_busy = 0;
int64_t g_intervals = 0;
constexpr size_t kMaxEvents = 2'000'000;

double wall_now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double thread_cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::forward: return "fwd";
    case Phase::backward: return "bwd";
    case Phase::other: return "-";
  }
  return "?";
}

void enable(bool on, bool trace) {
  g_on = on;
  g_trace = on && trace;
  g_owner = std::this_thread::get_id();
  g_t0 = Clock::now();
  reset();
}

void reset() {
  g_thread_busy.clear();
  g_wall_busy = 0;
  g_intervals = 0;
  g_fast.clear();
  g_rows.clear();
  g_events.clear();
  g_stack.clear();
}

void Scope::begin(const char* name, Phase phase, double flops, double bytes) {
  if (std::this_thread::get_id() != g_owner) return;
  g_stack.push_back({name, phase, flops, bytes, Clock::now()});
  active_ = true;
}

void Scope::end() {
  Frame f = g_stack.back();
  g_stack.pop_back();
  Clock::time_point now = Clock::now();
  double total = std::chrono::duration<double>(now - f.start).count();
  if (!g_stack.empty()) g_stack.back().child += total;
  Row*& rp = g_fast[{f.name, f.phase}];
  if (!rp) {
    rp = &g_rows[{f.name, f.phase}];  // std::map nodes never move
    rp->name = f.name;
    rp->phase = f.phase;
  }
  Row& r = *rp;
  r.calls++;
  r.seconds += total - f.child;
  r.flops += f.flops;
  r.bytes += f.bytes;
  if (g_trace && g_events.size() < kMaxEvents)
    g_events.push_back({f.name, f.phase, std::chrono::duration<double, std::micro>(f.start - g_t0).count(), total * 1e6});
}

std::vector<Row> rows() {
  std::vector<Row> v;
  for (auto& [k, r] : g_rows) v.push_back(r);
  std::sort(v.begin(), v.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
  return v;
}

double total_seconds() {
  double s = 0;
  for (auto& [k, r] : g_rows) s += r.seconds;
  return s;
}

std::string table(const Peaks& pk, int64_t steps, double wall) {
  std::vector<Row> v = rows();
  double total = total_seconds();
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-24s %-4s %8s %10s %6s %9s %8s %9s %9s\n", "op", "ph", "calls/st", "ms/step", "%",
                "GFLOP/s", "GB/s", "flop/B", "%roofline");
  out += buf;
  double n = double(std::max<int64_t>(1, steps));
  for (const Row& r : v) {
    double gf = r.flops > 0 && r.seconds > 0 ? r.flops / r.seconds * 1e-9 : 0;
    double gb = r.bytes > 0 && r.seconds > 0 ? r.bytes / r.seconds * 1e-9 : 0;
    double ai = r.bytes > 0 ? r.flops / r.bytes : 0;
    // Roofline: min(compute peak, intensity x bandwidth); int8 ops use the int8 peak.
    bool int8 = r.name == "quantized_linear" || r.name.rfind("qgemm", 0) == 0;
    double peak = int8 ? pk.int8_gops : pk.f32_gflops;
    double roof = ai > 0 && pk.dram_gbs > 0 ? std::min(peak, ai * pk.dram_gbs) : peak;
    char gfs[16] = "-", gbs[16] = "-", ais[16] = "-", roofs[16] = "-";
    if (gf > 0) std::snprintf(gfs, sizeof gfs, "%.1f", gf);
    if (gb > 0) std::snprintf(gbs, sizeof gbs, "%.1f", gb);
    if (ai > 0) std::snprintf(ais, sizeof ais, "%.1f", ai);
    if (gf > 0 && roof > 0) std::snprintf(roofs, sizeof roofs, "%.0f%%", 100 * gf / roof);
    std::snprintf(buf, sizeof buf, "%-24s %-4s %8.1f %10.3f %5.1f%% %9s %8s %9s %9s\n", r.name.c_str(), phase_name(r.phase),
                  double(r.calls) / n, r.seconds / n * 1e3, total > 0 ? 100 * r.seconds / total : 0.0, gfs, gbs, ais, roofs);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "rows add up to %.3f ms/step; measured %.3f ms/step (%.1f%% unattributed)\n",
                total / n * 1e3, wall / n * 1e3, wall > 0 ? 100 * (wall - total) / wall : 0.0);
  out += buf;
  std::snprintf(buf, sizeof buf, "ceilings: f32 %.0f GFLOP/s, int8 %.0f GOP/s, DRAM read %.1f GB/s (all threads; the "
                "roofline uses DRAM, so cache-resident work can exceed 100%%)\n",
                pk.f32_gflops, pk.int8_gops, pk.dram_gbs);
  out += buf;
  return out;
}

bool trace_path_writable(const std::string& path, std::string* why) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    *why = "it is a directory";
    return false;
  }
  // The probe is the temp file write_file_atomic would create: the same directory, the same permission.
  const std::string probe = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    *why = std::strerror(errno);
    return false;
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

void write_trace(const std::string& path) {
  Json events = Json::array();
  for (const Event& e : g_events) {
    Json j = Json::object();
    j.set("name", e.name);
    j.set("cat", phase_name(e.phase));
    j.set("ph", "X");
    j.set("ts", e.start_us);
    j.set("dur", e.dur_us);
    j.set("pid", 1);
    j.set("tid", 1);
    events.push(j);
  }
  Json root = Json::object();
  root.set("traceEvents", events);
  root.set("displayTimeUnit", "ms");
  write_file_atomic(path, root.dump());
}

int process_threads() {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec))
    n++;
  return n;
}

void thread_times_begin() {
  int n = omp_get_max_threads();
  g_thread_cpu.assign(size_t(n), 0.0);
  if (g_thread_busy.size() < size_t(n)) g_thread_busy.resize(size_t(n), 0.0);
  g_wall_start = wall_now();  // the wall interval encloses the CPU clock readings: CPU <= wall per thread
#pragma omp parallel num_threads(n)
  g_thread_cpu[size_t(omp_get_thread_num())] = thread_cpu_now();
}

void thread_times_end() {
  int n = int(g_thread_cpu.size());
  std::vector<double> cpu(size_t(n), 0.0);
#pragma omp parallel num_threads(n)
  {
    int t = omp_get_thread_num();
    if (t < n) cpu[size_t(t)] = thread_cpu_now() - g_thread_cpu[size_t(t)];
  }
  for (int t = 0; t < n; t++) g_thread_busy[size_t(t)] += cpu[size_t(t)];
  g_wall_busy += wall_now() - g_wall_start;
  g_intervals++;
}

std::vector<double> thread_busy_seconds() { return g_thread_busy; }
double thread_wall_seconds() { return g_wall_busy; }

std::string thread_busy_line(const std::string& intervals) {
  std::string out =
      "thread busy (CPU s in the " + std::to_string(g_intervals) + " profiled " + intervals + ", spin-waits included):";
  char buf[48];
  for (size_t t = 0; t < g_thread_busy.size(); t++) {
    std::snprintf(buf, sizeof buf, " t%zu=%.3f", t, g_thread_busy[t]);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, " of %.3f s wall", g_wall_busy);
  return out + buf;
}

}  // namespace qat::prof
