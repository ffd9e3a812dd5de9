// Files: whole-file reads with a size cap, atomic writes, directory swaps and writer locks. Nothing is
// ever half-written: an atomic write goes to "<path>.tmp.<pid>", is fsynced, renamed over <path>, and
// the directory is fsynced, so a crash leaves either the old file or the new one (DESIGN.md, invariant
// 5). Write errors (disk full, I/O error) throw qat::Error naming the file and leave the old file
// untouched. Nothing is ever renamed over what is not a regular file (a device, a FIFO), a symbolic
// link is written through (the link stays), and read-only code never renames anything.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qat {

// Reads a whole file; throws "cannot read <path>: <reason>" or "<path>: larger than <max> bytes".
std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t(1) << 34);
// Opens a regular file for reading (O_CLOEXEC) and returns its descriptor. Throws "cannot read <path>:
// not a regular file" for a FIFO, device, socket or directory, without blocking: opening a FIFO for
// reading would otherwise wait for a writer forever. *size (when not null): the file's size in bytes.
int open_regular_file(const std::string& path, uint64_t* size = nullptr);

// Writes `parts` one after another into <path> atomically (temp file, fsync, rename, fsync dir).
// A symlink <path> is followed (its target is replaced, the link stays); an existing <path> that is not
// a regular file (a device, a FIFO, a directory) is refused. Temp files of <path> left by killed
// processes ("<path>.tmp.<dead pid>") are removed first.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);
inline void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, std::vector<std::string_view>{data});
}

// The same protocol for a file written in pieces (a token cache larger than memory): write() appends,
// write_at() overwrites bytes already written (a header whose counts are known only at the end),
// commit() fsyncs and renames. Destroyed before commit() (an exception), the temp file is removed.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(std::string_view data);
  void write_at(uint64_t offset, std::string_view data);
  void commit();

 private:
  [[noreturn]] void abort_write(int err);
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Appends one line (adds '\n') and flushes it to the kernel; used for metrics.jsonl.
void append_line(const std::string& path, std::string_view line);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dirs(const std::string& path);  // mkdir -p; throws naming the path
// The path an output is written at: trailing '/' dropped, and a symlink (or a last component "." or
// "..") resolved to the real path, so that a swap or rename replaces the target and keeps the link.
// Throws for a dangling symlink. A path that does not exist yet is returned as given.
std::string resolve_output_path(const std::string& path);
// True when `dir` is the root of a mounted filesystem (it cannot be renamed: EBUSY).
bool is_mount_point(const std::string& dir);
// Atomically replaces directory `dst` by directory `src` (renameat2 RENAME_EXCHANGE; the old contents
// are removed after). Where the filesystem lacks it, two renames via "<dst>.ckpt-old", and
// recover_directory(dst) undoes a crash between them: only a writer calls it, at its start (a reader
// never renames anything). `dst` must not be a symlink or a mount point (resolve_output_path first).
void replace_directory(const std::string& src, const std::string& dst);
void recover_directory(const std::string& dst);
// Removes `path` and everything below it; never follows a symlink, never enters another filesystem.
void remove_tree(const std::string& path);
// True for the temp names write_file_atomic uses, "<name>.tmp.<pid>" (sets *pid when not null).
bool is_atomic_temp_name(const std::string& name, long* pid = nullptr);
// Removes the temp files of write_file_atomic in `dir` whose process no longer runs (killed before its
// rename); those of a running process (another run sharing a cache directory) are left alone. With a
// `name`, only the temp files of that one file ("<name>.tmp.<pid>") are candidates.
void remove_stale_temp_files(const std::string& dir, const std::string& name = "");

// An exclusive lock that one writer of `path` holds for its lifetime: a POSIX record lock on
// "<path>.lock", a file beside `path` (not inside: a directory swap would move it) holding the
// holder's pid. lock_for_writing() refuses with "<what>: in use by another process (pid N, ...)". The
// lock file is removed on release; a writer killed by SIGKILL leaves it behind, unlocked (the kernel
// drops the lock with the process), and the next writer takes it over. Fork children do not inherit it.
class FileLock {
 public:
  FileLock() = default;
  FileLock(FileLock&& o) noexcept : fd_(o.fd_), lock_path_(std::move(o.lock_path_)) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() { release(); }
  const std::string& lock_path() const { return lock_path_; }
  void release();

 private:
  friend FileLock lock_for_writing(const std::string& path, const std::string& what);
  int fd_ = -1;
  std::string lock_path_;
};
FileLock lock_for_writing(const std::string& path, const std::string& what);

// Test hook for fault injection: when set, write_file_atomic fails with "No space left on device"
// after this many bytes have been written in the current process (-1: off). Also QAT_FAIL_WRITE_AFTER.
void set_write_fault_after(int64_t bytes);

// Test hook for crash tests (tests/test_faults.cpp): with QAT_CRASH_AT="<name>:<n>" in the environment,
// the n-th call of crash_point_armed("<name>") in this process returns true and crash_point("<name>")
// kills the process there with SIGKILL, as a power cut or an OOM kill would. Unset: both do nothing.
bool crash_point_armed(const char* name);
void crash_point(const char* name);

}  // namespace qat
