// Data-parallel training's transport and the fixed-order gradient sum built on it (DESIGN.md invariant 8:
// N ranks give the bytes of one process accumulating the same micro-batches in the same order).
// Comm is the transport: the single-process one (LocalComm, here) or MPI's (dist_mpi.cpp, linked into
// bin/train only, so the library and every other binary build without MPI). GradSum is the one place
// gradients of micro-batches are added: the same float adds, in micro-batch index order, on one process
// or many. Read next: trainer.cpp (train_step), dist_mpi.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/util/error.h"

namespace qat {

// Thrown on the ranks that learn of an error another rank reports (a fingerprint mismatch): the job
// stops, and only the rank that names the problem prints it.
struct PeerFailed : Error {
  PeerFailed() : Error("a peer rank reported the error") {}
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_size() const { return 1; }  // ranks on this machine (sharing its cores)
  // Seconds a rank waits for the others in any exchange before it stops the job (0: forever).
  virtual void set_timeout(double seconds) = 0;
  // The gradient exchanges are non-blocking: start_* posts one and returns its ticket, test() advances
  // every exchange in flight (MPI moves bytes only inside its calls) and says whether this one is
  // complete, wait() blocks until it is (within the timeout; `what` names it in the message).
  // start_alltoallv: rank k receives send[sdispl[k] .. +counts[k]) from every rank j into
  // recv[rdispl[j] .. +rcounts[j]), i.e. recv holds the ranks' pieces in rank order.
  virtual int start_alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl,
                              float* recv, const std::vector<int64_t>& rcounts, const std::vector<int64_t>& rdispl,
                              const char* what) = 0;
  // start_allgatherv: all[displ[j] .. +counts[j]) = rank j's `mine` (counts[j] floats), on every rank.
  virtual int start_allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                               const std::vector<int64_t>& displ, const char* what) = 0;
  virtual bool test(int ticket) = 0;
  virtual void wait(int ticket) = 0;
  // all (bytes x size) = every rank's `bytes` bytes of `mine`, in rank order.
  virtual void allgather(const void* mine, size_t bytes, void* all, const char* what) = 0;
  // Every rank tells every other that it reached `step`; a rank that says nothing within the timeout
  // (dead or hung) stops the job with one line naming it.
  virtual void heartbeat(int64_t step) = 0;
  virtual void barrier() = 0;
  // Seconds spent inside exchanges so far (waiting included): the communication time per step.
  virtual double comm_seconds() const = 0;
  // Before a rank other than 0 reports an error: under MPI it waits a moment, so that when every rank
  // fails alike (a bad option) rank 0's report and abort come first and the line is printed once.
  virtual void before_error_report() {}
  // Set when an error is known to every rank (they can all finish MPI cleanly instead of aborting).
  bool collective_error = false;
};

// One process, no transport: rank 0 of 1; every exchange is a copy.
class LocalComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void set_timeout(double) override {}
  int start_alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl,
                      float* recv, const std::vector<int64_t>& rcounts, const std::vector<int64_t>& rdispl,
                      const char* what) override;
  int start_allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                       const std::vector<int64_t>& displ, const char* what) override;
  bool test(int) override { return true; }
  void wait(int) override {}
  void allgather(const void* mine, size_t bytes, void* all, const char* what) override;
  void heartbeat(int64_t) override {}
  void barrier() override {}
  double comm_seconds() const override { return 0; }
};

// The sum of a step's micro-batch gradients, g = ((g0 + g1) + g2) + ..., in global micro-batch index order,
// on every rank. Micro-batch i = a * N + r is computed by rank r in its round a (rounds 0..A-1): round a's
// N gradients are consecutive indices, so each round is one exchange that the slice owners fold at once.
//
// Buckets: the P elements are cut into contiguous buckets (at parameter boundaries, by the caller), so
// that a bucket's exchange can start as soon as the backward has finished its gradients, while the
// backward computes the rest. Each bucket is cut into N slices (slice k of bucket [s, e): [s + n*k/N,
// s + n*(k+1)/N), n = e - s) and rank k owns slice k of every bucket. A bucket's exchange is an
// alltoallv (every rank sends slice k to rank k, which receives the N pieces in rank order = index
// order) and a fold; in the last round each folded bucket's allgatherv is posted at once, into the
// gradient buffer. The fold is elementwise, so neither the buckets nor the slices change a bit.
// One process (N = 1): no exchange, the fold alone over the whole buffer.
class GradSum {
 public:
  // bucket_ends: the buckets' ascending end offsets, the last one P (empty: one bucket of all P).
  GradSum(Comm& comm, int64_t P, std::vector<int64_t> bucket_ends = {});
  int buckets() const { return int(ends_.size()); }
  int64_t bucket_begin(int b) const { return b == 0 ? 0 : ends_[size_t(b - 1)]; }
  int64_t bucket_end(int b) const { return ends_[size_t(b)]; }

  // Adds this rank's gradient of round `round` (g: (P,)) at once; round 0 starts the sum.
  void add_round(const float* g, int64_t round);
  // out (P,) = the sum of every round of every rank, identical on all ranks.
  void finish(float* out);

  // The overlapped form of add_round (N > 1): begin_round, then bucket_ready(b) for each bucket whose
  // gradients in g are final (in any order), progress() now and then while the backward runs,
  // end_round() after it. Exchanges are posted from the last bucket to the first, each once it and
  // all after it are ready: one order on every rank, as MPI requires of collectives.
  // gather_into (the last round): each bucket's all-gather is posted into it as soon as the bucket is
  // folded, and finish(gather_into) then only waits for them.
  void begin_round(const float* g, int64_t round, float* gather_into = nullptr);
  void bucket_ready(int b);
  void progress();
  void end_round();  // posts buckets never reported ready (no gradient reached them), waits, folds

 private:
  struct Bucket {
    std::vector<int64_t> counts, displ;    // (N) its slices, relative to the bucket's start
    int64_t acc_off = 0;                   // this rank's slice in acc_, its N pieces at N * acc_off in recv_
    int exchange = -1, gather = -1;        // tickets in flight (-1: none)
    bool ready = false, posted = false, folded = false;
  };
  Comm& comm_;
  int64_t P_;
  std::vector<int64_t> ends_;
  std::vector<Bucket> b_;
  std::vector<float> acc_;   // (sum of this rank's slices) the running sum (N = 1: the whole gradient)
  std::vector<float> recv_;  // (N x that) one round's pieces of this rank's slices
  const float* g_ = nullptr;
  float* gather_into_ = nullptr;
  int64_t round_ = 0;
  std::vector<int> order_;  // this round's buckets in the order their exchanges were posted
  size_t gathered_ = 0;     // order_[0 .. gathered_) have their all-gathers posted
  int next_post_ = -1;      // the next bucket to post (they go out from the last to the first)
  void post(int b);
  void fold(int b);
  void post_gather(int b, float* out);
  void post_gathers();
};

// acc (n) += g (n): the one add of gradient accumulation (elementwise, so any split gives the same bits).
void fold_add(float* acc, const float* g, int64_t n);

// Start-up refusal: every rank's (name, hash) list is compared with rank 0's; the first difference
// stops every rank, rank 0 printing one line that names the rank and the field. `fields` must have
// the same names on every rank.
void agree(Comm& comm, const std::vector<std::pair<std::string, uint64_t>>& fields);

// The test hook QAT_TEST_RANK_FAULT=KIND:R:S: at the start of step S rank R exits with status 3 (exit),
// dies of SIGKILL (kill), both without a word, as a crash would, or sleeps forever (hang); slow: rank R
// sleeps 0.1 s at the start of every step from S on (a run slow enough to be signalled). Tests only.
void test_rank_fault(int rank, int64_t step);

}  // namespace qat
