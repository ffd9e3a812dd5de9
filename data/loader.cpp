// Training and evaluation batches (see loader.h).
#include "data/loader.h"

#include <cstring>

#include "src/core/rng.h"

namespace qat {

TokenLoader::TokenLoader(std::span<const int32_t> tokens, int64_t batch, int64_t ctx, uint64_t seed)
    : tokens_(tokens), B_(batch), T_(ctx), seed_(seed) {
  QAT_CHECK(batch > 0 && ctx > 0, "loader: batch and context must be positive");
  int64_t n = int64_t(tokens.size());
  n_windows_ = n > ctx ? (n - 1) / ctx : 0;
  QAT_CHECK(n_windows_ >= 1, "loader: the training data has ", n, " tokens, fewer than one context window of ",
            ctx + 1, " (use a larger corpus or a smaller --ctx)");
  shuffle_epoch();
}

void TokenLoader::shuffle_epoch() {
  // Fisher-Yates with a generator keyed on (seed, epoch).
  order_.resize(size_t(n_windows_));
  for (int64_t i = 0; i < n_windows_; i++) order_[size_t(i)] = i;
  Rng rng(mix64(seed_ ^ 0x6c6f61646572ull) ^ uint64_t(epoch_));
  for (int64_t i = n_windows_ - 1; i > 0; i--) std::swap(order_[size_t(i)], order_[size_t(rng.below(uint64_t(i + 1)))]);
}

void TokenLoader::set_position(int64_t epoch, int64_t index) {
  QAT_CHECK(epoch >= 0 && index >= 0 && index <= n_windows_, "loader: position (", epoch, ", ", index,
            ") is out of range for ", n_windows_, " windows");
  epoch_ = epoch;
  index_ = index;
  shuffle_epoch();
}

// The position next() would reach: the same epoch turns, at the same windows.
void TokenLoader::skip(int64_t batches) {
  for (int64_t i = 0; i < batches * B_; i++) {
    if (index_ == n_windows_) {
      epoch_++;
      index_ = 0;
      shuffle_epoch();
    }
    index_++;
  }
}

Batch TokenLoader::next() {
  Batch b{Tensor::empty({B_, T_}, DType::s32), Tensor::empty({B_, T_}, DType::s32)};
  int32_t* ids = b.ids.data<int32_t>();
  int32_t* tg = b.targets.data<int32_t>();
  for (int64_t r = 0; r < B_; r++) {
    if (index_ == n_windows_) {
      epoch_++;
      index_ = 0;
      shuffle_epoch();
    }
    const int32_t* w = tokens_.data() + order_[size_t(index_++)] * T_;
    std::memcpy(ids + r * T_, w, size_t(T_) * 4);
    std::memcpy(tg + r * T_, w + 1, size_t(T_) * 4);
  }
  return b;
}

std::vector<Batch> eval_batches(std::span<const int32_t> tokens, int64_t batch, int64_t ctx, int64_t max_windows) {
  int64_t n = int64_t(tokens.size());
  int64_t windows = n > ctx ? (n - 1) / ctx : 0;
  QAT_CHECK(windows >= 1, "eval: the validation data has ", n, " tokens, fewer than one context window of ", ctx + 1);
  if (max_windows > 0 && max_windows < windows) windows = max_windows;
  std::vector<Batch> out;
  for (int64_t w0 = 0; w0 < windows; w0 += batch) {
    int64_t rows = std::min(batch, windows - w0);
    Batch b{Tensor::empty({rows, ctx}, DType::s32), Tensor::empty({rows, ctx}, DType::s32)};
    for (int64_t r = 0; r < rows; r++) {
      const int32_t* w = tokens.data() + (w0 + r) * ctx;
      std::memcpy(b.ids.data<int32_t>() + r * ctx, w, size_t(ctx) * 4);
      std::memcpy(b.targets.data<int32_t>() + r * ctx, w + 1, size_t(ctx) * 4);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace qat
