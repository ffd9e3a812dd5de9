// Batches for training and evaluation from a token stream (documents joined, each ending in EOT; or
// one text with no EOT, --documents none).
// Training: the stream is cut into windows of T+1 tokens starting every T tokens; each epoch visits the
// windows in a shuffled order that is a pure function of (seed, epoch), so the loader's whole state is
// (epoch, index) and a resumed run sees exactly the batches an uninterrupted one would.
// Evaluation: consecutive windows from the start of the validation stream, no shuffling.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "src/core/tensor.h"

namespace qat {

struct Batch {
  Tensor ids;      // (B, T) s32: inputs
  Tensor targets;  // (B, T) s32: the next token of each input
};

class TokenLoader {
 public:
  // tokens (a vector or a mapped TokenArray) must outlive the loader.
  TokenLoader(std::span<const int32_t> tokens, int64_t batch, int64_t ctx, uint64_t seed);

  Batch next();  // the next training batch (advances the position)
  void skip(int64_t batches);  // advances as `batches` calls of next() would, without building them
  int64_t windows() const { return n_windows_; }
  int64_t epoch() const { return epoch_; }
  int64_t index() const { return index_; }  // windows consumed in this epoch
  void set_position(int64_t epoch, int64_t index);

 private:
  std::span<const int32_t> tokens_;
  int64_t B_, T_, n_windows_;
  uint64_t seed_;
  int64_t epoch_ = 0, index_ = 0;
  std::vector<int64_t> order_;  // window order of the current epoch
  void shuffle_epoch();
};

// Evaluation batches over the first `max_windows` windows of `tokens` (all if 0 or more than exist).
std::vector<Batch> eval_batches(std::span<const int32_t> tokens, int64_t batch, int64_t ctx, int64_t max_windows);

}  // namespace qat
