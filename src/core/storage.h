// Storage: one 64-byte-aligned, reference-counted byte buffer that tensors (and their views) share.
// Freed buffers go to a small cache keyed by size, because a training step allocates the same sizes
// every step and fresh large allocations cost page faults. Read next: tensor.h.
#pragma once
#include <cstddef>
#include <memory>

namespace qat {

struct Storage {
  void* data = nullptr;  // 64-byte aligned; nullptr when nbytes == 0
  size_t nbytes = 0;
  bool owned = true;     // false: wraps memory the caller keeps alive (e.g. an mmap'd file)

  explicit Storage(size_t nbytes);        // uninitialised
  Storage(void* external, size_t nbytes);  // not owned
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

std::shared_ptr<Storage> make_storage(size_t nbytes, bool zero);

// Bytes currently cached for reuse, and a way to give them back to the system.
size_t storage_cache_bytes();
void storage_cache_clear();

// A buffer of `floats` floats (uninitialised) that the kernel may back with 2 MiB pages when it is that
// large (2 MiB-aligned, madvise(MADV_HUGEPAGE)): on the VMs measured a first touch of 20 MB cost 60 ms
// in 4 KiB pages and 2 ms in 2 MiB ones. For buffers that grow with the tokens served (KV caches).
struct FreeDeleter {
  void operator()(float* p) const;
};
using HugeFloats = std::unique_ptr<float[], FreeDeleter>;
HugeFloats alloc_huge_floats(size_t floats);

}  // namespace qat
