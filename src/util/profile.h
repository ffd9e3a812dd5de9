// The per-op profiler behind --profile and --profile-json. Ops open a Scope (forward), the autograd
// engine opens one per node (backward), and the training loop opens scopes for the optimizer, data and
// evaluation. Times are exclusive (a scope's time minus the scopes nested in it), so the rows add up to
// the measured total. When profiling is off a Scope is one predictable branch. Read next: profile.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qat::prof {

enum class Phase : uint8_t { forward, backward, other };
const char* phase_name(Phase p);

extern bool g_on;  // set by enable(); read by every Scope

// trace: also keep every event for a Chrome trace-event file (write_trace).
void enable(bool on, bool trace = false);
inline bool on() { return g_on; }

class Scope {
 public:
  // flops / bytes: the work this scope does (0 when unknown), for GFLOP/s, GB/s and intensity.
  Scope(const char* name, Phase phase, double flops = 0, double bytes = 0) {
    if (g_on) begin(name, phase, flops, bytes);
  }
  ~Scope() {
    if (active_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void begin(const char* name, Phase phase, double flops, double bytes);
  void end();
  bool active_ = false;
};

struct Row {
  std::string name;
  Phase phase;
  int64_t calls = 0;
  double seconds = 0;  // exclusive
  double flops = 0, bytes = 0;
};
std::vector<Row> rows();  // sorted by time, descending
double total_seconds();   // sum of all rows
void reset();

// Machine ceilings for the roofline columns (measured by the caller, e.g. from kernels' peak loops).
struct Peaks {
  double f32_gflops = 0, int8_gops = 0, dram_gbs = 0;
};
// The table: op | phase | calls | ms | % | GFLOP/s | GB/s | flop/byte | % of roofline. `steps`
// divides the totals (per-step numbers); `wall` (s) is the measured time the rows should add up to.
std::string table(const Peaks& peaks, int64_t steps, double wall);
// Chrome trace-event JSON (open in Perfetto or about://tracing).
void write_trace(const std::string& path);
// Whether write_trace(path) can write there (it writes "<path>.tmp.<pid>" and renames it): false, with
// the reason in *why, for a missing or read-only directory or a path that is a directory. Lets a run
// refuse a bad --profile-json before it starts instead of failing after it.
bool trace_path_writable(const std::string& path, std::string* why);

// The threads this process is running now (/proc/self/task; 0 where there is no /proc): after
// set_num_threads() that is the OpenMP team and nothing else (OpenBLAS's workers are stopped).
int process_threads();

// Per-thread busy time over the profiled intervals only (a training step each): thread_times_begin()
// and thread_times_end() around each interval add every OpenMP worker's CPU time and the wall time of
// the same intervals, so the two compare (evaluation between steps is in neither). reset() clears them.
void thread_times_begin();
void thread_times_end();
std::vector<double> thread_busy_seconds();  // CPU seconds per thread, summed over the intervals
double thread_wall_seconds();               // wall seconds of the same intervals
// "thread busy (CPU s in the 6 profiled steps, spin-waits included): t0=0.245 t1=0.239 of 0.250 s wall",
// `intervals` naming what an interval is ("steps").
std::string thread_busy_line(const std::string& intervals);

}  // namespace qat::prof

#define QAT_PROF_CAT2(a, b) a##b
#define QAT_PROF_CAT(a, b) QAT_PROF_CAT2(a, b)
// QAT_PROF("linear", forward, flops, bytes): times the rest of the enclosing block.
#define QAT_PROF(name, phase, ...) \
  ::qat::prof::Scope QAT_PROF_CAT(qat_prof_, __LINE__)(name, ::qat::prof::Phase::phase, ##__VA_ARGS__)
