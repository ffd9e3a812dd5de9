// Bytes (see mapped_file.h): mmap with MAP_PRIVATE, or a heap copy.
#include "src/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {

std::shared_ptr<Bytes> Bytes::map_file(const std::string& path) {
  uint64_t size = 0;
  int fd = open_regular_file(path, &size);  // a FIFO is refused, not waited on
  std::shared_ptr<Bytes> b(new Bytes);
  if (size > 0) {
    void* p = ::mmap(nullptr, size_t(size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("cannot read ", path, ": mmap failed: ", std::strerror(e));
    }
    b->data_ = static_cast<uint8_t*>(p);
    b->size_ = size_t(size);
    b->mapped_ = true;
  }
  ::close(fd);  // the mapping keeps the file alive
  return b;
}

std::shared_ptr<Bytes> Bytes::copy(std::string_view data) {
  std::shared_ptr<Bytes> b(new Bytes);
  if (data.empty()) return b;
  size_t padded = (data.size() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded);
  if (!p) throw std::bad_alloc();
  std::memcpy(p, data.data(), data.size());
  b->data_ = static_cast<uint8_t*>(p);
  b->size_ = data.size();
  return b;
}

void Bytes::release(const uint8_t* p, size_t n) const {
  if (!mapped_ || n == 0) return;
  QAT_CHECK(p >= data_ && n <= size_ && size_t(p - data_) <= size_ - n, "Bytes::release: range outside the file");
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (uintptr_t(p) + page - 1) / page * page, hi = (uintptr_t(p) + n) / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // advisory: a failure only costs memory
}

Bytes::~Bytes() {
  if (mapped_) ::munmap(data_, size_);
  else std::free(data_);
}

}  // namespace qat
