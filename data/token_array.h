// Token ids of a split: either owned (a vector, when tokenized without a cache) or a view into the
// memory-mapped token cache file (data/dataset.cpp), kept alive by the array. A mapped corpus is read
// from the page cache: the training process holds no copy of it, so its size is not bounded by memory.
// Copies are cheap and share the ids. Consumers take std::span<const int32_t> (a vector converts too).
// Read next: data/dataset.h.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace qat {

class TokenArray {
 public:
  TokenArray() = default;
  TokenArray(std::vector<int32_t> ids)  // NOLINT: implicit, so `split.tokens = tok.encode(text)` reads plainly
      : keep_(std::make_shared<const std::vector<int32_t>>(std::move(ids))) {
    const auto& v = *static_cast<const std::vector<int32_t>*>(keep_.get());
    data_ = v.data();
    size_ = v.size();
  }
  // n ids at `ids`, which `owner` (a mapped file) keeps valid.
  TokenArray(std::shared_ptr<const void> owner, const int32_t* ids, size_t n, bool mapped)
      : keep_(std::move(owner)), data_(ids), size_(n), mapped_(mapped) {}

  const int32_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const int32_t* begin() const { return data_; }
  const int32_t* end() const { return data_ + size_; }
  int32_t operator[](size_t i) const { return data_[i]; }
  int32_t back() const { return data_[size_ - 1]; }
  bool mapped() const { return mapped_; }  // a view into the cache file
  operator std::span<const int32_t>() const { return {data_, size_}; }
  std::span<const int32_t> span() const { return {data_, size_}; }
  std::vector<int32_t> to_vector() const { return {begin(), end()}; }

  friend bool operator==(const TokenArray& a, std::span<const int32_t> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator==(const TokenArray& a, const TokenArray& b) { return a == b.span(); }
  friend bool operator==(const TokenArray& a, const std::vector<int32_t>& b) { return a == std::span<const int32_t>(b); }

 private:
  std::shared_ptr<const void> keep_;  // what owns the ids: a vector or a mapped file
  const int32_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace qat
