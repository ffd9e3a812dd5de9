#include "src/core/parallel.h"

#include <cblas.h>
#include <omp.h>

#include <vector>

// OpenBLAS's pthread build starts its worker threads when the library loads (and again whenever
// openblas_set_num_threads() is called), and they spin, yielding, for ~2^28 cycles before they sleep:
// for ~90 ms one of them occupies a core. We never give OpenBLAS more than one thread, so the workers are
// shut down; on this 2-vCPU machine they had held up the first OpenMP regions of `bin/generate
// --threads 2` (time to first token 90-120 ms against 0.5 ms). Weak: builds without a thread server lack it.
extern "C" void blas_thread_shutdown_(void) __attribute__((weak));

namespace qat {

namespace {
int g_threads = 0;
}

void blas_single_threaded() {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();  // after the set: setting the count restarts them
}

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  g_threads = n;
  omp_set_num_threads(n);
  // OpenBLAS always runs single-threaded inside our OpenMP panels (src/ops/matmul.cpp says why).
  blas_single_threaded();
}

int num_threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

template <bool kSquares>
static double chunked_sum(const float* x, int64_t n) {
  int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  if (chunks <= 1) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += kSquares ? double(x[i]) * x[i] : double(x[i]);
    return s;
  }
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    int64_t lo = c * kReduceChunk, hi = lo + kReduceChunk < n ? lo + kReduceChunk : n;
    double s = 0;
    for (int64_t i = lo; i < hi; i++) s += kSquares ? double(x[i]) * x[i] : double(x[i]);
    part[c] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

double det_sum(const float* x, int64_t n) { return chunked_sum<false>(x, n); }
double det_sum_squares(const float* x, int64_t n) { return chunked_sum<true>(x, n); }

}  // namespace qat
