// MPI's transport (see dist_mpi.h): OpenMPI's collectives, started non-blocking and polled against a
// deadline, so that a rank that dies or hangs stops the job in bounded time with one line naming it
// (heartbeat) or the exchange that stalled. The order of a sum never depends on MPI: collectives here
// only move bytes; GradSum (dist.cpp) adds them in micro-batch index order.
#include "models/train/dist_mpi.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#ifdef QAT_HAVE_MPI
#include <mpi.h>
#endif

namespace qat {

#ifdef QAT_HAVE_MPI
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

// MPI counts are int: a gradient of 2^31 elements or more needs another transport.
std::vector<int> ints(const std::vector<int64_t>& v) {
  std::vector<int> out;
  for (int64_t x : v) {
    QAT_CHECK(x >= 0 && x <= INT32_MAX, "MPI transport: a count of ", x, " elements exceeds MPI's int counts");
    out.push_back(int(x));
  }
  return out;
}

class MpiComm : public Comm {
 public:
  MpiComm() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  int local_size() const override { return local_size_; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void set_timeout(double s) override { timeout_ = s; }
  double comm_seconds() const override { return seconds_; }

  int start_alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl,
                      float* recv, const std::vector<int64_t>& rcounts, const std::vector<int64_t>& rdispl,
                      const char* what) override {
    const double t0 = now_s();
    Pending& p = open_ticket(what);  // it keeps the count arrays: MPI reads them until completion
    p.a = ints(counts), p.b = ints(sdispl), p.c = ints(rcounts), p.d = ints(rdispl);
    MPI_Ialltoallv(send, p.a.data(), p.b.data(), MPI_FLOAT, recv, p.c.data(), p.d.data(), MPI_FLOAT, MPI_COMM_WORLD,
                   &p.req);
    seconds_ += now_s() - t0;
    return p.ticket;
  }
  int start_allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                       const std::vector<int64_t>& displ, const char* what) override {
    const double t0 = now_s();
    Pending& p = open_ticket(what);
    p.a = ints(counts), p.b = ints(displ);
    MPI_Iallgatherv(mine, p.a[size_t(rank_)], MPI_FLOAT, all, p.a.data(), p.b.data(), MPI_FLOAT, MPI_COMM_WORLD, &p.req);
    seconds_ += now_s() - t0;
    return p.ticket;
  }
  // MPI_Test advances every request in flight (OpenMPI's progress engine), not only this one.
  bool test(int ticket) override {
    const double t0 = now_s();
    Pending& p = find_ticket(ticket);
    int done = 0;
    MPI_Test(&p.req, &done, MPI_STATUS_IGNORE);
    seconds_ += now_s() - t0;
    return done != 0;
  }
  void wait(int ticket) override {
    Pending& p = find_ticket(ticket);
    wait(&p.req, 1, p.what, now_s());
  }
  void allgather(const void* mine, size_t bytes, void* all, const char* what) override {
    MPI_Request req;
    const double t0 = now_s();
    MPI_Iallgather(mine, int(bytes), MPI_BYTE, all, int(bytes), MPI_BYTE, MPI_COMM_WORLD, &req);
    wait(&req, 1, what, t0);
  }
  void barrier() override {
    MPI_Request req;
    const double t0 = now_s();
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait(&req, 1, "a barrier", t0);
  }
  void heartbeat(int64_t step) override;
  void before_error_report() override {
    if (rank_ == 0) return;
    timespec ts{2, 0};
    ::nanosleep(&ts, nullptr);
  }

 private:
  // A non-blocking exchange in flight; tickets count up, and the few in flight at once sit in a ring.
  struct Pending {
    int ticket = -1;
    MPI_Request req = MPI_REQUEST_NULL;
    const char* what = "";
    std::vector<int> a, b, c, d;  // the counts and displacements, alive until the exchange completes
  };
  Pending ring_[256];
  int next_ticket_ = 0;
  Pending& open_ticket(const char* what) {
    Pending& p = ring_[next_ticket_ % 256];
    QAT_CHECK(p.req == MPI_REQUEST_NULL, "MPI transport: more than 256 exchanges in flight");
    p.ticket = next_ticket_++;
    p.what = what;
    return p;
  }
  Pending& find_ticket(int ticket) {
    Pending& p = ring_[ticket % 256];
    QAT_CHECK(p.ticket == ticket, "MPI transport: exchange ", ticket, " is not in flight");
    return p;
  }
  int rank_ = 0, size_ = 1, local_size_ = 1;
  double timeout_ = 0, seconds_ = 0;
  bool poll(std::vector<MPI_Request>& reqs, double deadline);
  void wait(MPI_Request* reqs, int n, const char* what, double t0);
  [[noreturn]] void stop_job(const std::string& why);
};

// Tests the requests until all complete (true) or the deadline passes (false). It spins briefly, then
// yields the core (ranks may share cores with each other and with OpenMP threads).
bool MpiComm::poll(std::vector<MPI_Request>& reqs, double deadline) {
  for (int spins = 0;; spins++) {
    int done = 0;
    MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE);
    if (done) return true;
    if (timeout_ > 0 && now_s() > deadline) return false;
    if (spins > 2000) {
      timespec ts{0, 100000};  // 0.1 ms
      ::nanosleep(&ts, nullptr);
    } else {
      sched_yield();
    }
  }
}

void MpiComm::wait(MPI_Request* reqs, int n, const char* what, double t0) {
  std::vector<MPI_Request> v(reqs, reqs + n);
  if (!poll(v, t0 + timeout_))
    stop_job(std::string(what) + " did not complete within " + std::to_string(int64_t(timeout_)) +
             " s (--rank-timeout): a rank died or hangs");
  std::copy(v.begin(), v.end(), reqs);  // completed requests read MPI_REQUEST_NULL
  seconds_ += now_s() - t0;
}

[[noreturn]] void MpiComm::stop_job(const std::string& why) {
  std::fprintf(stderr, "train: error: rank %d: %s; stopping the job\n", rank_, why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

// Each rank sends its step to every other and waits for theirs: those that say nothing within the
// timeout are named (a rank at another step is a bug, named too).
void MpiComm::heartbeat(int64_t step) {
  const double t0 = now_s();
  std::vector<MPI_Request> sends, recvs(size_t(size_), MPI_REQUEST_NULL);
  std::vector<long long> got(size_t(size_), -1);
  long long mine = step;
  for (int j = 0; j < size_; j++) {
    if (j == rank_) continue;
    MPI_Irecv(&got[size_t(j)], 1, MPI_LONG_LONG, j, 7, MPI_COMM_WORLD, &recvs[size_t(j)]);
    sends.emplace_back();
    MPI_Isend(&mine, 1, MPI_LONG_LONG, j, 7, MPI_COMM_WORLD, &sends.back());
  }
  if (!poll(recvs, t0 + timeout_)) {
    std::string missing;
    for (int j = 0; j < size_; j++) {
      int done = 1;
      if (recvs[size_t(j)] != MPI_REQUEST_NULL) MPI_Test(&recvs[size_t(j)], &done, MPI_STATUS_IGNORE);
      if (!done) missing += (missing.empty() ? "" : ", ") + std::to_string(j);
    }
    stop_job("rank " + missing + " sent no heartbeat for step " + std::to_string(step) + " within " +
             std::to_string(int64_t(timeout_)) + " s (--rank-timeout): dead or hung");
  }
  for (int j = 0; j < size_; j++)
    if (j != rank_ && got[size_t(j)] != step)
      stop_job("rank " + std::to_string(j) + " is at step " + std::to_string(got[size_t(j)]) + ", not " +
               std::to_string(step));
  wait(sends.data(), int(sends.size()), "the heartbeat", t0);
}

}  // namespace

std::unique_ptr<Comm> open_comm(int* argc, char*** argv) {
  if (!launched_by_mpi()) return std::make_unique<LocalComm>();
  int provided = 0;  // only the main thread calls MPI (OpenMP threads never do)
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  return std::make_unique<MpiComm>();
}

int close_comm(std::unique_ptr<Comm> comm, int status) {
  if (comm->size() == 1 && !dynamic_cast<MpiComm*>(comm.get())) return status;
  // 128 + a signal: every rank stopped after the same step on a stop signal (trainer.cpp StopSignals).
  if (status == 0 || status > 128 || comm->collective_error || comm->size() == 1) {
    MPI_Finalize();
    return status;
  }
  MPI_Abort(MPI_COMM_WORLD, status);
  return status;
}

#else  // built without MPI: always one process

std::unique_ptr<Comm> open_comm(int*, char***) { return std::make_unique<LocalComm>(); }
int close_comm(std::unique_ptr<Comm>, int status) { return status; }

#endif

}  // namespace qat
