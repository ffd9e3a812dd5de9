// The pure logic of bin/bench's report, kept in the library so tests can check it: median and spread of
// repeated measurements, per-round ratios, the goals of the benchmark issue (value, goal, met or not),
// and the generated per-machine sections of docs/BENCHMARKS.md. A section lives between
//   <!-- bench:begin KEY -->  and  <!-- bench:end KEY -->
// and replacing one leaves every other byte of the document (other machines, hand-written notes) as it
// was. Read next: tools/bench/all.cpp (the driver that writes the document).
#pragma once
#include <string>
#include <vector>

namespace qat::bench {

// Median, min and max of repeated samples; spread = (max - min) / median, the relative range.
struct Stats {
  double median = 0, min = 0, max = 0;
  double spread() const { return median != 0 ? (max - min) / median : 0; }
};
double median(std::vector<double> v);  // throws qat::Error on an empty list
Stats stats(const std::vector<double>& v);
// Ratios taken round by round (num[i] / den[i], runs made back to back), then their stats: on a shared,
// noisy host the load mostly cancels within a round.
Stats ratio_stats(const std::vector<double>& num, const std::vector<double>& den);

// One goal of the issue: `value` against `goal`, where at_most means value <= goal is met (QAT step time
// ratio, file size ratio) and otherwise value >= goal (speedups).
struct Goal {
  std::string label;  // short, for tables and the chart ("q4_0 decode / openblas, 1 thr")
  double value = 0, goal = 0;
  bool at_most = false;
  std::string note;   // e.g. "unreliable: cores busy"
  bool met() const { return at_most ? value <= goal : value >= goal; }
  // >= 1 when met, whichever the direction (goal / value for at_most goals): the chart's bar height.
  double attainment() const;
};
// One goal per line, tab-separated (label, value, goal, "<=" or ">=", note): how the subcommands hand
// their goals to `bench all` through a file.
std::string goal_line(const Goal& g);
std::vector<Goal> parse_goals(const std::string& text);  // skips blank lines; throws on a malformed one
// A markdown table of goals: | goal | value | target | result | note |.
std::string goals_table(const std::vector<Goal>& goals);

// A section key from the CPU model and the kernel table: lower case, runs of other characters -> '-'
// ("AMD EPYC 7763 64-Core Processor", "avx2" -> "amd-epyc-7763-64-core-processor-avx2").
std::string machine_key(const std::string& cpu_brand, const std::string& isa);
std::string section_begin(const std::string& key);  // "<!-- bench:begin KEY -->"
std::string section_end(const std::string& key);    // "<!-- bench:end KEY -->"
// doc with the section KEY replaced by `body` (markers kept, body ends with a newline); a document
// without that section gets it appended at the end. Idempotent: the same body gives the same document.
// Throws qat::Error when the markers are unbalanced (a begin without its end, or the end first).
std::string replace_section(const std::string& doc, const std::string& key, const std::string& body);

}  // namespace qat::bench
