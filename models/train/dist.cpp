// The single-process transport, the fixed-order gradient sum and the start-up agreement (see dist.h).
#include "models/train/dist.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qat {

void LocalComm::alltoallv(const float* send, const std::vector<int64_t>& counts, const std::vector<int64_t>& sdispl,
                          float* recv, const std::vector<int64_t>&, const std::vector<int64_t>& rdispl, const char*) {
  std::memcpy(recv + rdispl[0], send + sdispl[0], size_t(counts[0]) * sizeof(float));
}

void LocalComm::allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                           const std::vector<int64_t>& displ, const char*) {
  if (all + displ[0] != mine) std::memcpy(all + displ[0], mine, size_t(counts[0]) * sizeof(float));
}

void LocalComm::allgather(const void* mine, size_t bytes, void* all, const char*) { std::memcpy(all, mine, bytes); }

void fold_add(float* acc, const float* g, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] = acc[i] + g[i];
}

// Slice k of P elements over N ranks: [k*P/N, (k+1)*P/N).
GradSum::GradSum(Comm& comm, int64_t P) : comm_(comm), P_(P) {
  const int N = comm.size();
  for (int k = 0; k < N; k++) {
    displ_.push_back(P * k / N);
    counts_.push_back(P * (k + 1) / N - P * k / N);
  }
  const int64_t mine = counts_[size_t(comm.rank())];
  acc_.assign(size_t(mine), 0.0f);
  if (N > 1) recv_.assign(size_t(mine) * size_t(N), 0.0f);
  for (int j = 0; j < N; j++) {
    rcounts_.push_back(mine);
    rdispl_.push_back(mine * j);
  }
}

// Round `round` holds micro-batches round*N .. round*N + N-1, from ranks 0..N-1: folding the received
// pieces in rank order continues the index-order sum. The first piece of round 0 is copied, not added
// to zeros (0 + -0 would be +0: the sum starts as g0 itself, as on one process).
void GradSum::add_round(const float* g, int64_t round) {
  const int N = comm_.size();
  const int64_t n = counts_[size_t(comm_.rank())];
  if (N == 1) {
    if (round == 0) std::memcpy(acc_.data(), g, size_t(n) * sizeof(float));
    else fold_add(acc_.data(), g, n);
    return;
  }
  comm_.alltoallv(g, counts_, displ_, recv_.data(), rcounts_, rdispl_, "the gradient exchange");
  for (int j = 0; j < N; j++) {
    const float* piece = recv_.data() + size_t(j) * size_t(n);
    if (round == 0 && j == 0) std::memcpy(acc_.data(), piece, size_t(n) * sizeof(float));
    else fold_add(acc_.data(), piece, n);
  }
}

void GradSum::finish(float* out) {
  if (comm_.size() == 1) {
    std::memcpy(out, acc_.data(), size_t(P_) * sizeof(float));
    return;
  }
  comm_.allgatherv(acc_.data(), out, counts_, displ_, "the gradient all-gather");
}

// Each field's hash from every rank (size x fields), compared with rank 0's in field order.
void agree(Comm& comm, const std::vector<std::pair<std::string, uint64_t>>& fields) {
  const int N = comm.size();
  if (N == 1) return;
  std::vector<uint64_t> mine, all(fields.size() * size_t(N));
  for (const auto& f : fields) mine.push_back(f.second);
  comm.allgather(mine.data(), mine.size() * sizeof(uint64_t), all.data(), "the start-up agreement");
  for (int r = 1; r < N; r++)
    for (size_t i = 0; i < fields.size(); i++) {
      const uint64_t a = all[i], b = all[size_t(r) * fields.size() + i];
      if (a == b) continue;
      comm.collective_error = true;
      if (comm.rank() != 0) throw PeerFailed();
      char buf[40];
      std::snprintf(buf, sizeof buf, "%016llx vs %016llx", (unsigned long long)b, (unsigned long long)a);
      fail("rank ", r, " differs from rank 0 in its ", fields[i].first, " (", buf,
           "); every rank must run the same binary on the same data with the same options");
    }
}

void test_rank_fault(int rank, int64_t step) {
  const char* e = std::getenv("QAT_TEST_RANK_FAULT");
  if (!e) return;
  char kind[8] = {0};
  int r = -1;
  long long s = -1;
  if (std::sscanf(e, "%7[a-z]:%d:%lld", kind, &r, &s) != 3 || r != rank || s != step) return;
  if (std::strcmp(kind, "exit") == 0) std::_Exit(3);
  if (std::strcmp(kind, "kill") == 0) std::raise(SIGKILL);
  if (std::strcmp(kind, "hang") == 0)
    for (;;) ::pause();
}

}  // namespace qat
