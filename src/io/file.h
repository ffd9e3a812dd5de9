// Files: whole-file reads with a size cap, and atomic writes. Nothing is ever half-written: an atomic
// write goes to "<path>.tmp.<pid>", is fsynced, renamed over <path>, and the directory is fsynced, so
// a crash leaves either the old file or the new one (DESIGN.md, invariant 5). Write errors (disk full,
// I/O error) throw qat::Error naming the file and leave the old file untouched.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qat {

// Reads a whole file; throws "cannot read <path>: <reason>" or "<path>: larger than <max> bytes".
std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t(1) << 34);
// Opens a regular file for reading (O_CLOEXEC) and returns its descriptor. Throws "cannot read <path>:
// not a regular file" for a FIFO, device, socket or directory, without blocking: opening a FIFO for
// reading would otherwise wait for a writer forever.
int open_regular_file(const std::string& path);

// Writes `parts` one after another into <path> atomically (temp file, fsync, rename, fsync dir).
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);
inline void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, std::vector<std::string_view>{data});
}

// Appends one line (adds '\n') and flushes it to the kernel; used for metrics.jsonl.
void append_line(const std::string& path, std::string_view line);

bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
void make_dirs(const std::string& path);  // mkdir -p; throws naming the path
// Atomically replaces directory `dst` by directory `src` (renameat2 RENAME_EXCHANGE; the old contents
// are removed after). Where the filesystem lacks it, two renames via "<dst>.old", and
// recover_directory(dst) (call it before reading dst) undoes a crash between them.
void replace_directory(const std::string& src, const std::string& dst);
void recover_directory(const std::string& dst);
void remove_tree(const std::string& path);
// True for the temp names write_file_atomic uses, "<name>.tmp.<pid>" (sets *pid when not null).
bool is_atomic_temp_name(const std::string& name, long* pid = nullptr);
// Removes the temp files of write_file_atomic in `dir` whose process no longer runs (killed before its
// rename); those of a running process (another run sharing a cache directory) are left alone.
void remove_stale_temp_files(const std::string& dir);

// Test hook for fault injection: when set, write_file_atomic fails with "No space left on device"
// after this many bytes have been written in the current process (-1: off). Also QAT_FAIL_WRITE_AFTER.
void set_write_fault_after(int64_t bytes);

// Test hook for crash tests (tests/test_faults.cpp): with QAT_CRASH_AT="<name>:<n>" in the environment,
// the n-th call of crash_point_armed("<name>") in this process returns true and crash_point("<name>")
// kills the process there with SIGKILL, as a power cut or an OOM kill would. Unset: both do nothing.
bool crash_point_armed(const char* name);
void crash_point(const char* name);

}  // namespace qat
