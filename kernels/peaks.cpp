// Peak measurement (see peaks.h). Plain C++: the loops themselves are the table's peak kernels.
#include "kernels/peaks.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace qat {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double best_rate(double (*fn)(int64_t), int threads, double budget) {
  int64_t iters = 1 << 10;
  for (;;) {  // calibrate one run to ~2 ms
    auto t0 = Clock::now();
    fn(iters);
    if (since(t0) > 0.002) break;
    iters *= 2;
  }
  double best = 0;
  auto start = Clock::now();
  do {
    double ops = 0;
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    ops += fn(iters);
    best = std::max(best, ops / since(t0));
  } while (since(start) < budget);
  return best;
}
}  // namespace

MachinePeaks measure_peaks(int threads, double seconds, const Kernels& t) {
  MachinePeaks p;
  p.f32_gflops = best_rate(t.peak.f32_fma, threads, seconds / 3) * 1e-9;
  p.int8_gops = best_rate(t.peak.int8_exact, threads, seconds / 3) * 1e-9;
  const int64_t per_thread = int64_t(64) << 20;  // 64 MiB per thread: beyond any L3 here
  std::vector<uint8_t> buf(size_t(per_thread * threads));
  std::memset(buf.data(), 1, buf.size());
  double best = 0;
  auto start = Clock::now();
  do {
    uint64_t sum = 0;
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    sum += t.peak.read(buf.data() + int64_t(omp_get_thread_num()) * per_thread, per_thread);
    best = std::max(best, double(per_thread * threads) / since(t0) * 1e-9);
    if (sum == 1) best += 0;  // keep the reads
  } while (since(start) < seconds / 3);
  p.dram_gbs = best;
  return p;
}

}  // namespace qat
