// The single-process transport, the fixed-order gradient sum and the start-up agreement (see dist.h).
#include "models/train/dist.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qat {

int LocalComm::start_alltoallv(const float* send, const std::vector<int64_t>& counts,
                               const std::vector<int64_t>& sdispl, float* recv, const std::vector<int64_t>&,
                               const std::vector<int64_t>& rdispl, const char*) {
  std::memcpy(recv + rdispl[0], send + sdispl[0], size_t(counts[0]) * sizeof(float));
  return 0;
}

int LocalComm::start_allgatherv(const float* mine, float* all, const std::vector<int64_t>& counts,
                                const std::vector<int64_t>& displ, const char*) {
  if (all + displ[0] != mine) std::memcpy(all + displ[0], mine, size_t(counts[0]) * sizeof(float));
  return 0;
}

void LocalComm::allgather(const void* mine, size_t bytes, void* all, const char*) { std::memcpy(all, mine, bytes); }

void fold_add(float* acc, const float* g, int64_t n) {
  for (int64_t i = 0; i < n; i++) acc[i] = acc[i] + g[i];
}

// Slice k of each bucket [s, e) over N ranks: [s + n*k/N, s + n*(k+1)/N), n = e - s.
GradSum::GradSum(Comm& comm, int64_t P, std::vector<int64_t> bucket_ends)
    : comm_(comm), P_(P), ends_(std::move(bucket_ends)) {
  if (ends_.empty()) ends_.push_back(P);
  QAT_CHECK(ends_.back() == P, "GradSum: the buckets end at ", ends_.back(), ", not at P = ", P);
  const int N = comm.size(), me = comm.rank();
  int64_t mine = 0;
  for (int b = 0; b < buckets(); b++) {
    const int64_t n = bucket_end(b) - bucket_begin(b);
    QAT_CHECK(n > 0, "GradSum: bucket ", b, " is empty");
    Bucket k;
    for (int j = 0; j < N; j++) {
      k.displ.push_back(n * j / N);
      k.counts.push_back(n * (j + 1) / N - n * j / N);
    }
    k.acc_off = mine;
    mine += N == 1 ? n : k.counts[size_t(me)];
    b_.push_back(std::move(k));
  }
  acc_.assign(size_t(mine), 0.0f);
  if (N > 1) recv_.assign(size_t(mine) * size_t(N), 0.0f);
}

void GradSum::add_round(const float* g, int64_t round) {
  if (comm_.size() == 1) {  // no exchange: the fold over the whole buffer
    if (round == 0) std::memcpy(acc_.data(), g, size_t(P_) * sizeof(float));
    else fold_add(acc_.data(), g, P_);
    return;
  }
  begin_round(g, round);
  for (int b = 0; b < buckets(); b++) bucket_ready(b);
  end_round();
}

void GradSum::begin_round(const float* g, int64_t round, float* gather_into) {
  g_ = g;
  round_ = round;
  gather_into_ = gather_into;
  for (Bucket& k : b_) k.posted = k.folded = k.ready = false;
  next_post_ = buckets() - 1;
  order_.clear();
  gathered_ = 0;
}

// Bucket b's exchange: slice j of every rank's bucket to rank j, whose pieces land in rank order.
void GradSum::post(int b) {
  Bucket& k = b_[size_t(b)];
  const int N = comm_.size();
  const int64_t mine = k.counts[size_t(comm_.rank())];
  std::vector<int64_t> rcounts(size_t(N), mine), rdispl;
  for (int j = 0; j < N; j++) rdispl.push_back(mine * j);
  k.exchange = comm_.start_alltoallv(g_ + bucket_begin(b), k.counts, k.displ, recv_.data() + N * k.acc_off, rcounts,
                                     rdispl, "the gradient exchange");
  k.posted = true;
  order_.push_back(b);
}

// Round `round` holds micro-batches round*N .. round*N + N-1, from ranks 0..N-1: folding the received
// pieces in rank order continues the index-order sum. The first piece of round 0 is copied, not added
// to zeros (0 + -0 would be +0: the sum starts as g0 itself, as on one process).
void GradSum::fold(int b) {
  Bucket& k = b_[size_t(b)];
  const int N = comm_.size();
  const int64_t n = k.counts[size_t(comm_.rank())];
  float* acc = acc_.data() + k.acc_off;
  for (int j = 0; j < N; j++) {
    const float* piece = recv_.data() + N * k.acc_off + size_t(j) * size_t(n);
    if (round_ == 0 && j == 0) std::memcpy(acc, piece, size_t(n) * sizeof(float));
    else fold_add(acc, piece, n);
  }
  k.exchange = -1;
  k.folded = true;
  post_gathers();
}

// All-gathers are collectives too, and every rank must post all its collectives in one order: so they
// start only once every exchange of the round is posted, in the exchanges' order, never in the order
// the exchanges happened to complete on this rank.
void GradSum::post_gathers() {
  while (gather_into_ && next_post_ < 0 && gathered_ < order_.size() && b_[size_t(order_[gathered_])].folded)
    post_gather(order_[gathered_++], gather_into_);
}

void GradSum::post_gather(int b, float* out) {
  Bucket& k = b_[size_t(b)];
  k.gather = comm_.start_allgatherv(acc_.data() + k.acc_off, out + bucket_begin(b), k.counts, k.displ,
                                    "the gradient all-gather");
}

// Collectives must be posted in the same order on every rank, and the order in which a backward
// finishes buckets may depend on the batch (the graph's shape can): so buckets go out in one fixed
// order, from the last (the last layers, finished first) to the first, each as soon as it and every
// bucket after it are ready.
void GradSum::bucket_ready(int b) {
  b_[size_t(b)].ready = true;
  while (next_post_ >= 0 && b_[size_t(next_post_)].ready) post(next_post_--);
  post_gathers();
  progress();
}

// Folds every bucket whose exchange has completed (MPI advances them all inside test()).
void GradSum::progress() {
  for (int b = 0; b < buckets(); b++) {
    Bucket& k = b_[size_t(b)];
    if (k.exchange >= 0 && comm_.test(k.exchange)) fold(b);
  }
}

void GradSum::end_round() {
  while (next_post_ >= 0) post(next_post_--);
  post_gathers();
  for (int b = 0; b < buckets(); b++) {
    Bucket& k = b_[size_t(b)];
    if (k.folded) continue;
    comm_.wait(k.exchange);
    fold(b);
  }
}

void GradSum::finish(float* out) {
  if (comm_.size() == 1) {
    std::memcpy(out, acc_.data(), size_t(P_) * sizeof(float));
    return;
  }
  QAT_CHECK(!gather_into_ || gather_into_ == out, "GradSum::finish: the all-gathers went to another buffer");
  if (!gather_into_)
    for (int b = 0; b < buckets(); b++) post_gather(b, out);
  for (Bucket& k : b_) {
    comm_.wait(k.gather);
    k.gather = -1;
  }
  gather_into_ = nullptr;
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
  if (std::sscanf(e, "%7[a-z]:%d:%lld", kind, &r, &s) != 3 || r != rank) return;
  if (std::strcmp(kind, "slow") == 0 && step >= s) {
    timespec ts{0, 100000000};  // 0.1 s
    ::nanosleep(&ts, nullptr);
  }
  if (s != step) return;
  if (std::strcmp(kind, "exit") == 0) std::_Exit(3);
  if (std::strcmp(kind, "kill") == 0) std::raise(SIGKILL);
  if (std::strcmp(kind, "hang") == 0)
    for (;;) ::pause();
}

}  // namespace qat
