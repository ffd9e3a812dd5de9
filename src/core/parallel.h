// Threads. OpenMP runs our loops and splits GEMMs into panels; OpenBLAS (its own pthread pool) is kept
// at one thread, which also stops the two pools oversubscribing the cores. Determinism rule: work is split over independent
// outputs; a reduction over many elements uses fixed-size chunks (independent of the thread count)
// summed in a fixed order, so results are bitwise identical at any thread count.
#pragma once
#include <cstdint>

namespace qat {

void set_num_threads(int n);  // n <= 0: all hardware threads
int num_threads();
// OpenBLAS at one thread, its worker threads stopped (parallel.cpp says why). Every path that could
// change OpenBLAS's thread count goes through here: openblas_set_num_threads() restarts the workers.
void blas_single_threaded();

// Elements per chunk of the deterministic reductions below.
constexpr int64_t kReduceChunk = 4096;

// Sum / sum of squares of x[0..n): each fixed chunk summed sequentially in double (in parallel), then
// the chunk sums added in index order.
double det_sum(const float* x, int64_t n);
double det_sum_squares(const float* x, int64_t n);

}  // namespace qat
