// File helpers (see file.h).
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

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
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

int open_regular_file(const std::string& path) {
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
  return fd;
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  int fd = open_regular_file(path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("cannot read ", path, ": ", std::strerror(e));
  }
  if (uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    fail(path, ": larger than ", max_bytes, " bytes");
  }
  std::string data(size_t(st.st_size), '\0');
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

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot write ", path, ": ", std::strerror(errno));
  auto abort_write = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(err));
  };
  for (std::string_view part : parts) {
    size_t done = 0;
    while (done < part.size()) {
      size_t chunk = std::min<size_t>(part.size() - done, size_t(1) << 24);
      int64_t limit = fault_limit();
      if (limit >= 0 && g_written + int64_t(chunk) > limit) {
        chunk = size_t(std::max<int64_t>(0, limit - g_written));
        if (chunk == 0) abort_write(ENOSPC);
      }
      ssize_t n = ::write(fd, part.data() + done, chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) abort_write(n < 0 ? errno : EIO);
      done += size_t(n);
      g_written += n;
    }
  }
  if (::fsync(fd) != 0) abort_write(errno);
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write ", path, ": ", std::strerror(e));
  }
  crash_point("write_file_atomic");  // the temp file is complete, not yet renamed
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write ", path, ": rename failed: ", std::strerror(e));
  }
  fsync_dir(dir_of(path));
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

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        remove_tree(path + "/" + name);
      }
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

bool is_atomic_temp_name(const std::string& name, long* pid) {
  size_t t = name.rfind(".tmp.");
  if (t == std::string::npos || t == 0 || t + 5 == name.size()) return false;
  if (name.find_first_not_of("0123456789", t + 5) != std::string::npos || name.size() - (t + 5) > 9) return false;
  if (pid) *pid = std::atol(name.c_str() + t + 5);
  return true;
}

void remove_stale_temp_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    long pid = 0;
    if (!is_atomic_temp_name(e->d_name, &pid)) continue;
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

void replace_directory(const std::string& src, const std::string& dst) {
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
  std::string old = dst + ".old";
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
  std::string old = dst + ".old";
  if (!file_exists(dst) && is_directory(old)) ::rename(old.c_str(), dst.c_str());
}

}  // namespace qat
