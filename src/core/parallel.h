// Threads. OpenMP runs our loops and splits GEMMs into panels; OpenBLAS (its own pthread pool) is kept
// at one thread, which also stops the two pools oversubscribing the cores. Determinism rule: work is split over independent
// outputs; a reduction over many elements uses fixed-size chunks (independent of the thread count)
// summed in a fixed order, so results are bitwise identical at any thread count.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <type_traits>
#include <vector>

namespace qat {

void set_num_threads(int n);  // n <= 0: all hardware threads
int num_threads();
// OpenBLAS at one thread, its worker threads stopped (parallel.cpp says why). Every path that could
// change OpenBLAS's thread count goes through here: openblas_set_num_threads() restarts the workers.
void blas_single_threaded();

// Runs f on a thread of its own and waits for it (f's exception is rethrown here). The OpenMP threads
// that f's parallel regions create end with that thread: libgomp keeps a team's idle threads for the
// life of the thread that made them, and once more are kept than there are CPUs, every barrier sleeps
// in a futex instead of spinning (bin/serve: a model loaded on main left its team beside the engine's,
// 4 threads on 2 CPUs, and one stream's decode step took 2x as long). Threads set here: n (set_num_threads).
void run_on_own_thread(int threads, const std::function<void()>& f);

// Elements per chunk of the deterministic reductions below.
constexpr int64_t kReduceChunk = 4096;

// Sum / sum of squares of x[0..n): each fixed chunk summed sequentially in double (in parallel), then
// the chunk sums added in index order.
double det_sum(const float* x, int64_t n);
double det_sum_squares(const float* x, int64_t n);

// A persistent pool for work too short for an OpenMP region: a decode token's matvecs take 10-500 us
// each, and a region costs 2.4-4 us here. size() - 1 worker threads; the calling thread is thread 0.
// Between run() calls a worker spins on a generation counter for kSpinMicros (a token's matvecs follow
// each other within microseconds), then parks in a futex wait (std::atomic::wait), costing nothing; the
// destructor stops and joins them. run(fn) calls fn(t) once for each t in [0, size()) and returns when
// all have returned; callers give thread t its own independent outputs, so the bits never depend on size().
// fn must not throw. One run at a time: a pool belongs to one caller (a DecodeSession).
class WorkerPool {
 public:
  static constexpr int64_t kSpinMicros = 200;
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  int size() const { return n_; }
  template <class F>
  void run(F&& fn) {
    run_impl(&fn, [](void* c, int t) { (*static_cast<std::remove_reference_t<F>*>(c))(t); });
  }
  // Worker threads of every pool alive in the process now (tests: stopped when their owner ends).
  static int live_workers();

 private:
  void run_impl(void* ctx, void (*call)(void*, int));
  void worker(int t);
  int n_;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> gen_{0};   // bumped by run() (and by the destructor, with stop_ set)
  std::atomic<int> pending_{0};    // workers still running the current generation
  std::atomic<int> sleeping_{0};   // workers parked in gen_.wait: run() wakes them only if > 0
  std::atomic<bool> stop_{false};
  void* ctx_ = nullptr;
  void (*call_)(void*, int) = nullptr;
};

// The pool the calling thread's decode matvecs may use (nullptr: none, run them as before). A
// DecodeSession installs its pool for the length of a forward with PoolScope.
WorkerPool* current_pool();
class PoolScope {
 public:
  explicit PoolScope(WorkerPool* pool);
  ~PoolScope();
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;

 private:
  WorkerPool* prev_;
};

}  // namespace qat
