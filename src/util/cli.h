// Command-line parsing for the binaries: long options (--name value or --name=value), short aliases,
// typed values with ranges, generated --help. Problems throw UsageError ("--steps: expected an integer
// in [1, 10000000], got 'abc'"), which run_main() prints as one line with exit code 2; other
// qat::Errors exit 1. Nothing here crashes on bad input.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qat {

// "a,b,,c" -> {"a", "b", "c"}: the items of a separator-delimited list, empty items dropped.
std::vector<std::string> split(const std::string& s, char sep);

// {"a", "b", "c"}, "or" -> "a, b or c": a list for help and error text.
std::string list_text(const std::vector<std::string>& items, const std::string& last_sep);

class ArgParser {
 public:
  ArgParser(std::string program, std::string summary);

  void option(const std::string& name, std::string* dest, const std::string& help, const std::string& metavar = "S");
  void option(const std::string& name, int64_t* dest, const std::string& help, int64_t min, int64_t max);
  void option(const std::string& name, double* dest, const std::string& help, double min, double max);
  void flag(const std::string& name, bool* dest, const std::string& help);
  // A repeatable option: each occurrence appends its value (--stop A --stop B).
  void repeated(const std::string& name, std::vector<std::string>* dest, const std::string& help,
                const std::string& metavar = "S");
  void alias(const std::string& short_name, const std::string& long_name);  // e.g. alias("-n", "--tokens")
  void positional(std::vector<std::string>* dest, const std::string& metavar);  // allow positional args
  void epilog(const std::string& text) { epilog_ = text; }

  // Parses argv; returns false after printing --help (exit 0). Throws UsageError on bad input.
  bool parse(int argc, char** argv);
  bool given(const std::string& name) const;  // the option appeared on the command line
  std::string help() const;
  const std::string& program() const { return program_; }

 private:
  struct Opt {
    std::string name, help, metavar;
    std::function<void(const std::string&)> set;
    bool is_flag = false;
    std::string default_text;
  };
  std::string program_, summary_, epilog_;
  std::vector<Opt> opts_;
  std::vector<std::pair<std::string, std::string>> aliases_;
  std::vector<std::string> given_;
  std::vector<std::string>* positional_ = nullptr;
  std::string positional_metavar_;
  Opt* find(const std::string& name);
};

// `s` with its control characters written as escapes (\n, \r, \t, \xNN): what a one-line message
// quotes from the user can never split it into several lines. Bytes >= 0x80 (UTF-8) pass unchanged.
std::string one_line(const std::string& s);

// Runs body(), turning errors into one line on stderr: UsageError -> exit 2, other errors -> exit 1.
int run_main(const char* program, const std::function<int()>& body);

}  // namespace qat
