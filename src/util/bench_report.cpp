// bin/bench's report logic (see bench_report.h): stats, goals, and per-machine document sections.
#include "src/util/bench_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "src/util/error.h"

namespace qat::bench {

double median(std::vector<double> v) {
  QAT_CHECK(!v.empty(), "median of no samples");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Stats stats(const std::vector<double>& v) {
  Stats s;
  s.median = median(v);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

Stats ratio_stats(const std::vector<double>& num, const std::vector<double>& den) {
  QAT_CHECK(num.size() == den.size(), "ratio of ", num.size(), " and ", den.size(), " rounds");
  std::vector<double> r(num.size());
  for (size_t i = 0; i < r.size(); i++) r[i] = num[i] / den[i];
  return stats(r);
}

double Goal::attainment() const {
  if (at_most) return value > 0 ? goal / value : 0;
  return goal > 0 ? value / goal : 0;
}

std::string goal_line(const Goal& g) {
  auto clean = [](std::string s) {  // the file is tab- and line-separated
    for (char& c : s)
      if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return s;
  };
  char num[64];
  std::snprintf(num, sizeof num, "%.6g\t%.6g", g.value, g.goal);
  return str(clean(g.label), "\t", num, "\t", g.at_most ? "<=" : ">=", "\t", clean(g.note), "\n");
}

std::vector<Goal> parse_goals(const std::string& text) {
  std::vector<Goal> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); n++) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    size_t pos = 0;
    for (;;) {
      size_t tab = line.find('\t', pos);
      f.push_back(line.substr(pos, tab == std::string::npos ? std::string::npos : tab - pos));
      if (tab == std::string::npos) break;
      pos = tab + 1;
    }
    QAT_CHECK(f.size() == 5 && (f[3] == "<=" || f[3] == ">="), "goals line ", n,
              ": expected label, value, goal, <= or >=, note (tab-separated), got '", line, "'");
    Goal g;
    g.label = f[0];
    char* end = nullptr;
    g.value = std::strtod(f[1].c_str(), &end);
    QAT_CHECK(end && *end == 0 && !f[1].empty(), "goals line ", n, ": value '", f[1], "' is not a number");
    g.goal = std::strtod(f[2].c_str(), &end);
    QAT_CHECK(end && *end == 0 && !f[2].empty(), "goals line ", n, ": goal '", f[2], "' is not a number");
    g.at_most = f[3] == "<=";
    g.note = f[4];
    out.push_back(g);
  }
  return out;
}

std::string goals_table(const std::vector<Goal>& goals) {
  std::string s = "| goal | value | target | result | note |\n|---|---|---|---|---|\n";
  char buf[128];
  for (const Goal& g : goals) {
    std::snprintf(buf, sizeof buf, "%.2fx | %s %.2fx | %s", g.value, g.at_most ? "<=" : ">=", g.goal,
                  g.met() ? "met" : "MISSED");
    s += str("| ", g.label, " | ", buf, " | ", g.note, " |\n");
  }
  return s;
}

std::string machine_key(const std::string& cpu_brand, const std::string& isa) {
  std::string key;
  for (char c : cpu_brand + " " + isa) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      key += char(std::tolower(static_cast<unsigned char>(c)));
    else if (!key.empty() && key.back() != '-')
      key += '-';
  }
  while (!key.empty() && key.back() == '-') key.pop_back();
  return key.empty() ? "unknown" : key;
}

std::string section_begin(const std::string& key) { return "<!-- bench:begin " + key + " -->"; }
std::string section_end(const std::string& key) { return "<!-- bench:end " + key + " -->"; }

std::string replace_section(const std::string& doc, const std::string& key, const std::string& body) {
  const std::string b = section_begin(key), e = section_end(key);
  std::string block = b + "\n" + body;
  if (block.back() != '\n') block += '\n';
  block += e;
  const size_t bpos = doc.find(b), epos = doc.find(e);
  if (bpos == std::string::npos) {
    QAT_CHECK(epos == std::string::npos, "docs: '", e, "' without its '", b, "'");
    std::string out = doc;
    if (!out.empty() && out.back() != '\n') out += '\n';
    if (!out.empty()) out += '\n';
    return out + block + "\n";
  }
  QAT_CHECK(epos != std::string::npos && epos > bpos, "docs: '", b, "' without a following '", e, "'");
  QAT_CHECK(doc.find(b, bpos + 1) == std::string::npos, "docs: the section '", key, "' appears twice");
  return doc.substr(0, bpos) + block + doc.substr(epos + e.size());
}

}  // namespace qat::bench
