// File helpers (see file.h): reads, atomic writes, directory swaps, writer locks, temp-file cleanup.
#include "src/io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "src/util/error.h"

namespace qat {

namespace {
int64_t g_fault_after = -2;  // -2: not yet read from the environment
int64_t g_written = 0;

int64_t fault_limit() {
  if (g_fault_after == -2) {
    const char* e = std::getenv("QAT_FAIL_WRITE_AFTER");
    g_fault_after = e ? std::atoll(e) : -1;
  }
  return g_fault_after;
}

std::string dir_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return path.substr(0, s);
}

std::string base_of(const std::string& path) {
  size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// What a non-regular file is, for messages.
const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// The file write_file_atomic replaces for `path`: a symlink's target (so the link stays), refused when
// it exists and is not a regular file (a rename would replace a device or a FIFO by a plain file).
std::string atomic_target(const std::string& path) {
  std::string target = resolve_output_path(path);
  struct stat st;
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("cannot write ", path, ": ", kind_of(st.st_mode), ", not a regular file (give a file name)");
  return target;
}
}  // namespace

bool crash_point_armed(const char* name) {
  static const char* spec = std::getenv("QAT_CRASH_AT");
  static int64_t hits = 0;
  if (!spec) return false;
  const char* colon = std::strrchr(spec, ':');
  size_t n = std::strlen(name);
  if (!colon || size_t(colon - spec) != n || std::strncmp(spec, name, n) != 0) return false;
  return ++hits == std::atoll(colon + 1);
}

void crash_point(const char* name) {
  if (crash_point_armed(name)) ::kill(::getpid(), SIGKILL);
}

void set_write_fault_after(int64_t bytes) {
  g_fault_after = bytes;
  g_written = 0;
}

int open_regular_file(const std::string& path, uint64_t* size) {
  // O_NONBLOCK makes open() of a FIFO return at once; fstat then tells what was opened.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail("cannot read ", path, ": ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("cannot read ", path, ": ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot read ", path, ": ", S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // ordinary blocking reads from here on
  if (size) *size = uint64_t(st.st_size);
  return fd;
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  int fd = open_regular_file(path, &size);
  if (size > max_bytes) {
    ::close(fd);
    fail(path, ": larger than ", max_bytes, " bytes");
  }
  std::string data(size_t(size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      fail("cannot read ", path, ": ", n == 0 ? "file shrank while reading" : std::strerror(e));
    }
    got += size_t(n);
  }
  ::close(fd);
  return data;
}

AtomicWriter::AtomicWriter(const std::string& path_given) : path_(atomic_target(path_given)) {
  remove_stale_temp_files(dir_of(path_), base_of(path_));  // left by a writer of this file that was killed
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot write ", path_, ": ", std::strerror(errno));
}

AtomicWriter::~AtomicWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicWriter::abort_write(int err) {
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  fail("cannot write ", path_, ": ", std::strerror(err));
}

void AtomicWriter::write(std::string_view part) {
  QAT_CHECK(fd_ >= 0 && !committed_, "cannot write ", path_, ": the writer is closed");
  size_t done = 0;
  while (done < part.size()) {
    size_t chunk = std::min<size_t>(part.size() - done, size_t(1) << 24);
    int64_t limit = fault_limit();
    if (limit >= 0 && g_written + int64_t(chunk) > limit) {
      chunk = size_t(std::max<int64_t>(0, limit - g_written));
      if (chunk == 0) abort_write(ENOSPC);
    }
    ssize_t n = ::write(fd_, part.data() + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abort_write(n < 0 ? errno : EIO);
    done += size_t(n);
    g_written += n;
  }
}

void AtomicWriter::write_at(uint64_t offset, std::string_view data) {
  QAT_CHECK(fd_ >= 0 && !committed_, "cannot write ", path_, ": the writer is closed");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) abort_write(n < 0 ? errno : EIO);
    done += size_t(n);
  }
}

void AtomicWriter::commit() {
  QAT_CHECK(fd_ >= 0 && !committed_, "cannot write ", path_, ": the writer is closed");
  if (::fsync(fd_) != 0) abort_write(errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    int e = errno;
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": ", std::strerror(e));
  }
  crash_point("write_file_atomic");  // the temp file is complete, not yet renamed
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": rename failed: ", std::strerror(e));
  }
  committed_ = true;
  fsync_dir(dir_of(path_));
}

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
  AtomicWriter w(path);
  for (std::string_view part : parts) w.write(part);
  w.commit();
}

void append_line(const std::string& path, std::string_view line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write ", path, ": ", std::strerror(errno));
  std::string buf(line);
  buf += '\n';
  if (crash_point_armed("append_line")) {  // a torn line: half of it written, then the process dies
    if (::write(fd, buf.data(), buf.size() / 2) >= 0) ::kill(::getpid(), SIGKILL);
  }
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      fail("cannot write ", path, ": ", std::strerror(e));
    }
    done += size_t(n);
  }
  ::close(fd);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_dirs(const std::string& path) {
  if (path.empty() || is_directory(path)) return;
  std::string parent = dir_of(path);
  if (parent != path && parent != "." && parent != "/") make_dirs(parent);
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create directory ", path, ": ", std::strerror(errno));
  QAT_CHECK(is_directory(path), "cannot create directory ", path, ": a file of that name exists");
}

// Removes `path` if it lies on filesystem `dev`: a filesystem mounted below the tree is left alone.
static void remove_tree_on(const std::string& path, dev_t dev) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || st.st_dev != dev) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        remove_tree_on(path + "/" + name, dev);
      }
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) remove_tree_on(path, st.st_dev);
}

bool is_atomic_temp_name(const std::string& name, long* pid) {
  size_t t = name.rfind(".tmp.");
  if (t == std::string::npos || t == 0 || t + 5 == name.size()) return false;
  if (name.find_first_not_of("0123456789", t + 5) != std::string::npos || name.size() - (t + 5) > 9) return false;
  if (pid) *pid = std::atol(name.c_str() + t + 5);
  return true;
}

void remove_stale_temp_files(const std::string& dir, const std::string& name) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = name.empty() ? "" : name + ".tmp.";
  while (dirent* e = ::readdir(d)) {
    long pid = 0;
    if (!is_atomic_temp_name(e->d_name, &pid)) continue;
    if (!prefix.empty() && (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0 ||
                            std::strchr(e->d_name + prefix.size(), '.') != nullptr))
      continue;
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

std::string resolve_output_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();  // "runs/x/" (tab completion) is "runs/x"
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return p;  // not there yet: created under the name given
  std::string base = base_of(p);
  if (!S_ISLNK(st.st_mode) && base != "." && base != "..") return p;
  char* real = ::realpath(p.c_str(), nullptr);
  if (!real) fail(path, ": cannot resolve the symbolic link: ", std::strerror(errno));
  std::string r = real;
  std::free(real);
  return r;
}

bool is_mount_point(const std::string& dir) {
  struct statx a, b;
  const std::string parent = dir + "/..";
  if (::statx(AT_FDCWD, dir.c_str(), 0, STATX_MNT_ID, &a) != 0) return false;
  if (::statx(AT_FDCWD, parent.c_str(), 0, STATX_MNT_ID, &b) != 0) return false;
  if (a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor) return true;
  // A bind mount of the same filesystem keeps the device: the mount id tells it apart (Linux 5.8+).
  if ((a.stx_mask & b.stx_mask & STATX_MNT_ID) && a.stx_mnt_id != b.stx_mnt_id) return true;
  return a.stx_ino == b.stx_ino;  // "/": its own parent
}

// Refuses a `dst` that a rename would not replace in place: a symlink (the link would be replaced, not
// its target) or a mount point (EBUSY, and the fallback would be left half done).
static void check_swappable(const std::string& dst) {
  struct stat st;
  if (::lstat(dst.c_str(), &st) != 0) return;
  if (S_ISLNK(st.st_mode)) fail("cannot replace ", dst, ": a symbolic link (resolve_output_path first)");
  if (is_mount_point(dst)) fail("cannot replace ", dst, ": a mount point cannot be renamed; use a directory inside it");
}

void replace_directory(const std::string& src, const std::string& dst) {
  check_swappable(dst);
  if (!file_exists(dst)) {
    if (::rename(src.c_str(), dst.c_str()) != 0) fail("cannot create ", dst, ": ", std::strerror(errno));
    fsync_dir(dir_of(dst));
    return;
  }
  // One atomic step: swap the two directories (Linux renameat2 RENAME_EXCHANGE), then drop the old one.
  if (::renameat2(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), RENAME_EXCHANGE) == 0) {
    crash_point("replace_directory");  // swapped; the old contents still in src
    fsync_dir(dir_of(dst));
    remove_tree(src);
    return;
  }
  // Filesystems without RENAME_EXCHANGE: two renames; recover_directory() repairs the gap after a crash.
  // The name is the project's own ("<dst>.ckpt-old"), so a user's "<dst>.old" is never taken for it.
  std::string old = dst + ".ckpt-old";
  remove_tree(old);
  if (::rename(dst.c_str(), old.c_str()) != 0) fail("cannot replace ", dst, ": ", std::strerror(errno));
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    int e = errno;
    ::rename(old.c_str(), dst.c_str());
    fail("cannot replace ", dst, ": ", std::strerror(e));
  }
  fsync_dir(dir_of(dst));
  remove_tree(old);
}

void recover_directory(const std::string& dst) {
  std::string old = dst + ".ckpt-old";
  struct stat st;
  if (::lstat(dst.c_str(), &st) != 0 && errno == ENOENT && is_directory(old)) ::rename(old.c_str(), dst.c_str());
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    lock_path_ = std::move(o.lock_path_);
    o.fd_ = -1;
  }
  return *this;
}

// Unlinked while still held, so that no other writer can lock the name in between; a writer that
// opened the old file meanwhile sees that the name no longer leads to it and opens the new one.
void FileLock::release() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

// The pid holding a POSIX write lock on `fd` (0: none now, or unknown).
static long lock_holder(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) return 0;
  return long(fl.l_pid);
}

FileLock lock_for_writing(const std::string& path, const std::string& what) {
  FileLock lock;
  lock.lock_path_ = path + ".lock";
  const char* lp = lock.lock_path_.c_str();
  for (;;) {
    int fd = ::open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) fail(what, ": cannot create the lock file ", lock.lock_path_, ": ", std::strerror(errno));
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_SETLK, &fl) != 0) {
      int e = errno;
      long pid = (e == EAGAIN || e == EACCES) ? lock_holder(fd) : 0;
      ::close(fd);
      if (e != EAGAIN && e != EACCES) fail(what, ": cannot lock ", lock.lock_path_, ": ", std::strerror(e));
      if (pid == 0) continue;  // released between the two calls: try again
      fail(what, ": in use by another process (pid ", pid, " holds ", lock.lock_path_,
           "); wait for it to end or use another path");
    }
    struct stat held, named;
    if (::fstat(fd, &held) == 0 && ::stat(lp, &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino) {
      lock.fd_ = fd;
      break;
    }
    ::close(fd);  // the holder released and removed it after our open: lock the file now at that name
  }
  // The pid in the file is for people looking at it; the lock holds without it.
  std::string pid = std::to_string(::getpid()) + "\n";
  bool noted = ::ftruncate(lock.fd_, 0) == 0 && ::pwrite(lock.fd_, pid.data(), pid.size(), 0) == ssize_t(pid.size());
  (void)noted;
  return lock;
}

}  // namespace qat
