// Bytes: the whole contents of a file (or a buffer), shared by everything that points into it. From a
// path it is a private, copy-on-write memory map: tensors can view the weights without a copy, writes
// to those views stay in this process, and the file is never modified. Our writers replace files by
// rename (file.h), so a mapped file is never truncated under us.
// Read next: gguf.h (its reader returns tensor views into a Bytes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace qat {

class Bytes {
 public:
  // Maps <path> (throws "cannot read <path>: <reason>"). An empty file gives an empty Bytes.
  static std::shared_ptr<Bytes> map_file(const std::string& path);
  // A 64-byte-aligned heap copy of `data` (tests, fuzzing).
  static std::shared_ptr<Bytes> copy(std::string_view data);

  ~Bytes();
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Gives back to the kernel the pages wholly inside [p, p + n) of a mapped file (madvise
  // MADV_DONTNEED): they leave the process's RSS and a later read faults them in again from the file.
  // Only for ranges nobody wrote (a written private page would revert to the file). Heap copies and
  // empty ranges: nothing. A loader calls it once a tensor's bytes have been turned into what is served.
  void release(const uint8_t* p, size_t n) const;
  bool mapped() const { return mapped_; }

 private:
  Bytes() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // else heap (aligned_alloc), or nothing when empty
};

}  // namespace qat
