// Command-line parsing (see cli.h).
#include "src/util/cli.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <sstream>

#include "src/util/error.h"

namespace qat {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t e = s.find(sep, pos);
    std::string item = s.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
    if (!item.empty()) out.push_back(item);
    if (e == std::string::npos) break;
    pos = e + 1;
  }
  return out;
}

std::string list_text(const std::vector<std::string>& items, const std::string& last_sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); i++)
    out += (i == 0 ? "" : i + 1 == items.size() ? " " + last_sep + " " : ", ") + items[i];
  return out;
}

ArgParser::ArgParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

static std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void ArgParser::option(const std::string& name, std::string* dest, const std::string& help, const std::string& metavar) {
  opts_.push_back({name, help, metavar, [dest](const std::string& v) { *dest = v; }, false,
                   dest->empty() ? "" : *dest});
}

void ArgParser::option(const std::string& name, int64_t* dest, const std::string& help, int64_t min, int64_t max) {
  opts_.push_back({name, help, "N",
                   [name, dest, min, max](const std::string& v) {
                     errno = 0;
                     char* end = nullptr;
                     long long x = std::strtoll(v.c_str(), &end, 10);
                     if (v.empty() || *end != '\0' || errno != 0 || x < min || x > max)
                       throw UsageError(str(name, ": expected an integer in [", min, ", ", max, "], got '", v, "'"));
                     *dest = x;
                   },
                   false, std::to_string(*dest)});
}

void ArgParser::option(const std::string& name, double* dest, const std::string& help, double min, double max) {
  opts_.push_back({name, help, "X",
                   [name, dest, min, max](const std::string& v) {
                     char* end = nullptr;
                     double x = std::strtod(v.c_str(), &end);
                     if (v.empty() || *end != '\0' || !std::isfinite(x) || x < min || x > max)
                       throw UsageError(str(name, ": expected a number in [", fmt_double(min), ", ", fmt_double(max),
                                            "], got '", v, "'"));
                     *dest = x;
                   },
                   false, fmt_double(*dest)});
}

void ArgParser::flag(const std::string& name, bool* dest, const std::string& help) {
  opts_.push_back({name, help, "", [dest](const std::string&) { *dest = true; }, true, ""});
}

void ArgParser::repeated(const std::string& name, std::vector<std::string>* dest, const std::string& help,
                         const std::string& metavar) {
  opts_.push_back({name, help + " (repeatable)", metavar, [dest](const std::string& v) { dest->push_back(v); }, false, ""});
}

void ArgParser::alias(const std::string& short_name, const std::string& long_name) {
  aliases_.push_back({short_name, long_name});
}

void ArgParser::positional(std::vector<std::string>* dest, const std::string& metavar) {
  positional_ = dest;
  positional_metavar_ = metavar;
}

ArgParser::Opt* ArgParser::find(const std::string& name) {
  for (auto& [s, l] : aliases_)
    if (s == name) return find(l);
  for (Opt& o : opts_)
    if (o.name == name) return &o;
  return nullptr;
}

bool ArgParser::given(const std::string& name) const {
  for (const std::string& g : given_)
    if (g == name) return true;
  return false;
}

bool ArgParser::parse(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "--") {
      if (!positional_) throw UsageError(str("unexpected argument '", arg, "' (see --help)"));
      positional_->push_back(arg);
      continue;
    }
    std::string value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    Opt* o = find(arg);
    if (!o) throw UsageError(str("unknown option '", arg, "' (see --help)"));
    if (o->is_flag) {
      if (has_value) throw UsageError(str(o->name, ": takes no value"));
    } else if (!has_value) {
      if (i + 1 >= argc) throw UsageError(str(o->name, ": missing value (expected ", o->metavar, ")"));
      value = argv[++i];
    }
    o->set(value);
    given_.push_back(o->name);
  }
  return true;
}

std::string ArgParser::help() const {
  std::ostringstream os;
  os << "usage: " << program_ << " [options]" << (positional_ ? " " + positional_metavar_ : "") << "\n\n"
     << summary_ << "\n\noptions:\n";
  for (const Opt& o : opts_) {
    std::string left = "  " + o.name;
    for (auto& [s, l] : aliases_)
      if (l == o.name) left = "  " + s + ", " + o.name;
    if (!o.is_flag) left += " " + o.metavar;
    os << left;
    if (left.size() < 26) os << std::string(26 - left.size(), ' ');
    else os << "\n" << std::string(26, ' ');
    os << o.help;
    if (!o.default_text.empty()) os << " (default: " << o.default_text << ")";
    os << "\n";
  }
  os << "  -h, --help                show this help\n";
  if (!epilog_.empty()) os << "\n" << epilog_ << "\n";
  return os.str();
}

std::string one_line(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += str("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    else out += ch;  // printable ASCII and the bytes of UTF-8 sequences
  }
  return out;
}

// The one place a binary reports an error: messages often quote what the user typed (a path, a
// prompt, a flag value), so they pass through one_line() and stay one line on stderr.
static void report(const char* program, const char* kind, const std::string& message) {
  std::fprintf(stderr, "%s: %s%s\n", program, kind, one_line(message).c_str());
}

int run_main(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    report(program, "", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    report(program, "error: ", "out of memory");
    return 1;
  } catch (const std::exception& e) {  // qat::Error and the standard library's own
    report(program, "error: ", e.what());
    return 1;
  }
}

}  // namespace qat
