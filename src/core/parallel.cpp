#include "src/core/parallel.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <exception>
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

// ---- WorkerPool ----

namespace {
std::atomic<int> g_live_workers{0};
thread_local WorkerPool* t_pool = nullptr;
}  // namespace

WorkerPool::WorkerPool(int threads) : n_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < n_; t++) {
    g_live_workers.fetch_add(1);  // counted from creation, so a just-built pool already reports its workers
    threads_.emplace_back([this, t] { worker(t); });
  }
}

WorkerPool::~WorkerPool() {
  stop_.store(true);
  gen_.fetch_add(1);
  gen_.notify_all();
  for (std::thread& th : threads_) th.join();
}

int WorkerPool::live_workers() { return g_live_workers.load(); }

// Spins until gen_ moves past `seen` (checking the clock every 256 loads), then parks until it does.
void WorkerPool::worker(int t) {
  uint64_t seen = 0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t g;
    for (int i = 1; (g = gen_.load(std::memory_order_acquire)) == seen; i++) {
      if (i % 256 != 0 || std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(kSpinMicros)) continue;
      sleeping_.fetch_add(1);  // seq_cst with run()'s bump: either it sees us asleep or wait() sees the bump
      gen_.wait(seen);
      sleeping_.fetch_sub(1);
    }
    seen = g;
    if (stop_.load()) break;
    call_(ctx_, t);
    pending_.fetch_sub(1, std::memory_order_release);
  }
  g_live_workers.fetch_sub(1);  // the last thing a worker does: 0 after the destructor's joins
}

void WorkerPool::run_impl(void* ctx, void (*call)(void*, int)) {
  if (n_ == 1) return call(ctx, 0);
  ctx_ = ctx;
  call_ = call;
  pending_.store(n_ - 1, std::memory_order_relaxed);
  gen_.fetch_add(1);  // seq_cst: publishes ctx_, call_ and pending_
  if (sleeping_.load() > 0) gen_.notify_all();  // a futex wake only when someone is parked
  call(ctx, 0);
  while (pending_.load(std::memory_order_acquire) != 0) {
  }
}

WorkerPool* current_pool() { return t_pool; }
PoolScope::PoolScope(WorkerPool* pool) : prev_(t_pool) { t_pool = pool; }
PoolScope::~PoolScope() { t_pool = prev_; }

void run_on_own_thread(int threads, const std::function<void()>& f) {
  std::exception_ptr failed;
  std::thread t([&] {
    try {
      set_num_threads(threads);
      f();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  t.join();
  if (failed) std::rethrow_exception(failed);
}

}  // namespace qat
