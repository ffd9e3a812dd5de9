// Aligned allocation with a size-keyed free cache (see storage.h).
#include "src/core/storage.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

namespace qat {

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kCacheLimit = size_t(2) << 30;  // keep at most 2 GiB of freed buffers

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  size_t bytes = 0;
};
Cache& cache() {
  static Cache* c = new Cache;  // leaked on purpose: outlives static tensors
  return *c;
}
size_t round_size(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void* take(size_t n) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(n);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.bytes -= n;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, n);
  if (!p) throw std::bad_alloc();
  return p;
}

void give(void* p, size_t n) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.bytes + n > kCacheLimit) {
    std::free(p);
    return;
  }
  c.free_blocks.emplace(n, p);
  c.bytes += n;
}
}  // namespace

Storage::Storage(size_t n) : nbytes(n) {
  if (n) data = take(round_size(n));
}

Storage::Storage(void* external, size_t n) : data(external), nbytes(n), owned(false) {}

Storage::~Storage() {
  if (owned && data) give(data, round_size(nbytes));
}

std::shared_ptr<Storage> make_storage(size_t nbytes, bool zero) {
  auto s = std::make_shared<Storage>(nbytes);
  if (zero && nbytes) std::memset(s->data, 0, nbytes);
  return s;
}

void FreeDeleter::operator()(float* p) const { std::free(p); }

HugeFloats alloc_huge_floats(size_t floats) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t bytes = std::max<size_t>(floats * sizeof(float), kAlign);
  const size_t align = bytes >= kHuge ? kHuge : kAlign;
  void* p = std::aligned_alloc(align, (bytes + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) ::madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);  // advisory
  return HugeFloats(static_cast<float*>(p));
}

size_t storage_cache_bytes() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().bytes;
}

void storage_cache_clear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [n, p] : c.free_blocks) std::free(p);
  c.free_blocks.clear();
  c.bytes = 0;
}

}  // namespace qat
