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
  // Rank k receives send[sdispl[k] .. +counts[k]) from every rank j into recv[rdispl[j] .. +rcounts[j]),
  // i.e. recv holds the ranks' pieces in rank order. `what` names the exchange in a timeout message.
  virtual void alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl,
                         float* recv, const std::vector<int64_t>& rcounts, const std::vector<int64_t>& rdispl,
                         const char* what) = 0;
  // all (sum of counts) = every rank's `mine` (counts[rank] floats) in rank order, on every rank.
  virtual void allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                          const std::vector<int64_t>& displ, const char* what) = 0;
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
  void alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl, float* recv,
                 const std::vector<int64_t>& rcounts, const std::vector<int64_t>& rdispl, const char* what) override;
  void allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts, const std::vector<int64_t>& displ,
                  const char* what) override;
  void allgather(const void* mine, size_t bytes, void* all, const char* what) override;
  void heartbeat(int64_t) override {}
  void barrier() override {}
  double comm_seconds() const override { return 0; }
};

// The sum of a step's micro-batch gradients, g = ((g0 + g1) + g2) + ..., in global micro-batch index order,
// on every rank. Micro-batch i = a * N + r is computed by rank r in its round a (rounds 0..A-1): round a's
// N gradients are consecutive indices, so each round is one exchange that the slice owners fold at once.
// Each rank owns a slice of the P elements (slice k: [k*P/N, (k+1)*P/N)); an exchange is an alltoallv
// (every rank sends slice k of its gradient to rank k, which receives the N pieces in rank order = index
// order) and a fold; finish() is an allgatherv of the folded slices. One process (N = 1): the fold alone.
class GradSum {
 public:
  GradSum(Comm& comm, int64_t P);
  // Adds this rank's gradient of round `round` (g: (P,)); round 0 starts the sum.
  void add_round(const float* g, int64_t round);
  // out (P,) = the sum of every round of every rank, identical on all ranks.
  void finish(float* out);

 private:
  Comm& comm_;
  int64_t P_;
  std::vector<int64_t> counts_, displ_;  // (N) the slices
  std::vector<float> acc_;               // (slice) this rank's running sum (N = 1: the whole gradient)
  std::vector<float> recv_;              // (N x slice) one round's pieces of this rank's slice
  std::vector<int64_t> rcounts_, rdispl_;
};

// acc (n) += g (n): the one add of gradient accumulation (elementwise, so any split gives the same bits).
void fold_add(float* acc, const float* g, int64_t n);

// Start-up refusal: every rank's (name, hash) list is compared with rank 0's; the first difference
// stops every rank, rank 0 printing one line that names the rank and the field. `fields` must have
// the same names on every rank.
void agree(Comm& comm, const std::vector<std::pair<std::string, uint64_t>>& fields);

// The test hook QAT_TEST_RANK_FAULT=KIND:R:S: at the start of step S rank R exits with status 3 (exit),
// dies of SIGKILL (kill), both without a word, as a crash would, or sleeps forever (hang). Tests only.
void test_rank_fault(int rank, int64_t step);

}  // namespace qat
