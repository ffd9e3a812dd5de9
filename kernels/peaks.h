// The machine's ceilings, measured with the peak loops of the active kernel table: f32 FMA GFLOP/s,
// exact int8 GOP/s, and read bandwidth from memory (a buffer far beyond the caches). All threads at
// once. The profiler's roofline (src/util/profile.h) uses these; bin/bench peak prints them per ISA.
#pragma once
#include <cstdint>

#include "kernels/kernels.h"

namespace qat {

struct MachinePeaks {
  double f32_gflops = 0, int8_gops = 0, dram_gbs = 0;
};

// Measures the three ceilings on `threads` threads in roughly `seconds` (the best of short runs, so a
// noisy shared host reports its capability, not its load).
MachinePeaks measure_peaks(int threads, double seconds = 0.5, const Kernels& t = kernels());

}  // namespace qat
