// Errors are values the user can act on: one line naming the thing, what was found and what was
// expected. Everything in the library throws qat::Error; the binaries catch it, print one line and
// exit 1 (runtime) or 2 (usage). Read next: src/core/tensor.h.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace qat {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Usage errors (a bad flag or value) exit with code 2 in the binaries.
struct UsageError : Error {
  using Error::Error;
};

template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class T>
std::string shape_str(const std::vector<T>& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); i++) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ",";
  os << ")";
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str(args...));
}

}  // namespace qat

// QAT_CHECK(cond, message parts...): throws qat::Error with the parts joined when cond is false.
#define QAT_CHECK(cond, ...)                  \
  do {                                        \
    if (!(cond)) ::qat::fail(__VA_ARGS__);    \
  } while (0)
