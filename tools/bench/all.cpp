// `bench all` (what `make bench` runs): every benchmark as a child process of this binary (peak, kernels,
// train, serve, serve-load, tokenizer, torch, shapes), their output echoed as it comes and kept; then this machine's section of
// docs/BENCHMARKS.md is replaced (between <!-- bench:begin KEY --> and <!-- bench:end KEY -->, KEY from
// the CPU model and kernel table; everything else in the file is left as it is) and the goals are drawn
// as a bar chart of value / goal (docs/bench-KEY.png, gnuplot pngcairo, as tools/plot draws loss curves).
// Read next: src/util/bench_report.h (the section and goal logic, tested in tests/test_bench.cpp).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

// Runs `cmd`, echoing its stdout line by line as it arrives; returns the exit status, output in *out.
int run_echo(const std::string& cmd, std::string* out) {
  FILE* f = ::popen(cmd.c_str(), "r");
  QAT_CHECK(f, "cannot run '", cmd, "'");
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) {
    std::fputs(buf, stdout);
    std::fflush(stdout);
    *out += buf;
  }
  const int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// Markdown from a subcommand's output: table rows as they are, every other run of text lines fenced
// as code (they are aligned columns and lists that paragraphs would merge).
std::string to_markdown(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  auto text_line = [&](size_t i) { return i < lines.size() && !lines[i].empty() && lines[i][0] != '|'; };
  std::string md;
  for (size_t i = 0; i < lines.size(); i++) {
    if (!text_line(i)) {
      md += lines[i] + "\n";
      continue;
    }
    size_t j = i;
    while (text_line(j)) j++;
    if (j == i + 1 && lines[i][0] != ' ') {  // one sentence: a paragraph
      md += lines[i] + "\n";
      continue;
    }
    md += "```\n";
    for (; i < j; i++) md += lines[i] + "\n";
    md += "```\n";
    i--;
  }
  return md;
}

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s >= 60 ? "%.0f min %02.0f s" : "%.1f s", s >= 60 ? double(int(s) / 60) : s,
                s >= 60 ? double(int(s) % 60) : 0.0);
  return buf;
}

// The goals as bars of value / goal (>= 1: met) with each value written above its bar. Returns "" when
// it drew the chart, else why not.
std::string draw_chart(const std::vector<Goal>& goals, const std::string& png, const std::string& title) {
  if (goals.empty()) return "no goals to draw";
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "gnuplot is not installed (apt-get install gnuplot-nox)";
  auto quote = [](std::string s) {
    for (char& c : s)
      if (c == '"') c = '\'';
    return "\"" + s + "\"";
  };
  std::string data;
  double top = 2, bottom = 0.5;  // a log scale: 2x over the goal and 2x under it look alike
  for (size_t i = 0; i < goals.size(); i++) {
    const Goal& g = goals[i];
    const int color = !g.note.empty() && g.note.rfind("unreliable", 0) == 0 ? 0x999999 : g.met() ? 0x228833 : 0xcc3311;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2fx (%s %.2f)", g.value, g.at_most ? "<=" : ">=", g.goal);
    top = std::max(top, g.attainment() * 1.6);
    bottom = std::min(bottom, std::max(g.attainment(), 1e-3) * 0.7);
    data += str(i, " ", quote(g.label), " ", g.attainment(), " ", color, " ", quote(buf), "\n");
  }
  const std::string script = str(
      "set terminal pngcairo noenhanced size 1100,620 font 'sans,10'\n", "set output ", quote(png), "\n", "set title ",
      quote(title + "\\ngreen: met, red: missed, grey: 2-thread rows after a failed parallel check"), "\n", "set ylabel 'value / goal, log scale (>= 1: goal met; for <= goals, goal / value)'\n",
      "set style fill solid 0.85 border -1\nset style textbox opaque noborder\nset boxwidth 0.7\nset grid ytics\nset key top right\n",
      "set xtics rotate by 30 right font 'sans,9'\n", "set bmargin 11\nset lmargin 10\nset rmargin 4\n", "set xrange [-0.6:", goals.size() - 0.4, "]\n",
      "set logscale y 2\nset yrange [", bottom, ":", top, "]\n", "$d << EOD\n", data, "EOD\n",
      "plot $d using 1:3:4:xtic(2) with boxes lc rgb variable notitle, ",
      "1 with lines lw 2 dt 2 lc rgb '#333333' title 'goal', ",
      "$d using 1:3:5 with labels boxed offset 0,0.8 font 'sans,8' notitle\n");
  FILE* f = ::popen("gnuplot", "w");
  if (!f) return "cannot run gnuplot";
  std::fwrite(script.data(), 1, script.size(), f);
  const int st = ::pclose(f);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : "gnuplot failed (its message is above)";
}

}  // namespace

int bench_all(int argc, char** argv) {
  ArgParser p("bench all", "Runs every benchmark (peak, kernels, train, serve, serve-load, tokenizer, torch, shapes) and replaces this machine's section of\n"
                           "docs/BENCHMARKS.md (between bench:begin/end markers; the rest of the file is kept) and its\n"
                           "chart of the goals. `make bench` runs it; `make bench QUICK=1` runs it with --quick.");
  std::string doc = "docs/BENCHMARKS.md", chart, only = "peak,kernels,train,serve,serve-load,tokenizer,torch,shapes", thread_list = "1,2";
  bool quick = false, no_doc = false;
  p.option("--doc", &doc, "the document to update", "PATH");
  p.option("--chart", &chart, "the chart (default: bench-KEY.png next to --doc)", "PATH");
  p.option("--only", &only, "benchmarks to run, a subset of peak,kernels,train,serve,serve-load,tokenizer,torch,shapes", "LIST");
  p.option("--threads", &thread_list, "thread counts, passed to every benchmark", "LIST");
  p.flag("--quick", &quick, "every benchmark with --quick (few rounds; kernels: the active table only; shapes: small and 15m; ~4 min)");
  p.flag("--no-doc", &no_doc, "print only: leave the document and the chart alone");
  if (!p.parse(argc, argv)) return 0;
  parse_threads("--threads", thread_list);  // validates
  std::vector<std::string> subs;
  {
    std::stringstream ss(only);
    for (std::string s; std::getline(ss, s, ',');) {
      if (s.empty()) continue;
      if (s != "peak" && s != "kernels" && s != "train" && s != "serve" && s != "serve-load" && s != "tokenizer" && s != "torch" && s != "shapes")
        throw UsageError(str("--only: expected names among peak,kernels,train,serve,serve-load,tokenizer,torch,shapes, got '", s, "'"));
      subs.push_back(s);
    }
  }
  const std::string key = this_machine_key();
  if (chart.empty()) {
    const size_t slash = doc.rfind('/');
    chart = (slash == std::string::npos ? std::string() : doc.substr(0, slash + 1)) + "bench-" + key + ".png";
  }
  const std::string self = "/proc/self/exe";
  char exe[4096];
  const ssize_t n = ::readlink(self.c_str(), exe, sizeof exe - 1);
  QAT_CHECK(n > 0, "bench all: cannot find its own binary (", self, ")");
  exe[n] = 0;
  const std::string goals_path = str("/tmp/qat-bench-goals-", ::getpid(), ".tsv");
  write_file_atomic(goals_path, "");

  const std::string started = utc_now(), load_start = load_average();
  std::printf("bench all%s: %s\n%s\nsection key: %s\n\n", quick ? " --quick" : "", started.c_str(), machine_summary().c_str(),
              key.c_str());
  const ParallelCheck pc = parallel_check();
  std::printf("%s\n\n", pc.line().c_str());
  std::fflush(stdout);

  auto t_all = Clock::now();
  std::string sections;
  int failed = 0;
  for (const std::string& s : subs) {
    std::string args = str(" ", s, " --threads ", thread_list);
    if (quick && s != "peak") args += " --quick";
    if (quick && s == "kernels") args += str(" --isa ", kernels().name);  // the table the binaries use, not all
    if (s == "train" || s == "serve" || s == "serve-load" || s == "tokenizer" || s == "torch" || s == "shapes") args += " --goals " + goals_path;
    std::printf("==== bin/bench%s\n", args.c_str());
    std::fflush(stdout);
    std::string out;
    auto t0 = Clock::now();
    const int rc = run_echo(str("'", exe, "'", args), &out);
    const double secs = seconds_since(t0);
    std::printf("==== %s: %s%s\n\n", s.c_str(), fmt_seconds(secs).c_str(), rc ? str(", FAILED (exit ", rc, ")").c_str() : "");
    if (rc) failed++;
    sections += str("### `bin/bench", args.substr(0, args.find(" --goals")), "` (", fmt_seconds(secs), ")\n\n",
                    to_markdown(out), "\n");
  }
  const double total = seconds_since(t_all);
  const std::vector<Goal> goals = parse_goals(read_file(goals_path));
  remove_tree(goals_path);
  std::printf("Goals of the benchmark issue:\n\n%s\nbench all: %s in total\n", goals_table(goals).c_str(),
              fmt_seconds(total).c_str());
  if (failed) {
    std::fprintf(stderr, "bench all: %d benchmark(s) failed; %s left unchanged\n", failed, doc.c_str());
    return 1;
  }
  if (no_doc) return 0;

  std::string why_no_chart = draw_chart(goals, chart, str("qat benchmarks: ", cpu_features().brand, ", ", kernels().name,
                                                          quick ? " (QUICK)" : ""));
  std::printf("%s\n", why_no_chart.empty() ? str("bench all: wrote ", chart).c_str()
                                           : str("bench all: no chart: ", why_no_chart).c_str());
  const std::string chart_name = chart.substr(chart.rfind('/') == std::string::npos ? 0 : chart.rfind('/') + 1);
  std::string body = str(
      "## ", cpu_features().brand, ", kernel table ", kernels().name, "\n\n",
      "Generated by `make bench", quick ? " QUICK=1" : "", "` (`bin/bench all", quick ? " --quick" : "", "`) on ", started,
      " in ", fmt_seconds(total), "; load average ", load_start, " at the start, ", load_average(),
      " at the end. This section (key `", key, "`) is replaced on every run on this machine; do not edit it by hand. ",
      "Medians over interleaved rounds, spread = (max - min) / median, every ratio the median of per-round ratios.",
      quick ? " **QUICK run: few rounds, indicative only.**" : "", "\n\n```\n", machine_summary(), "\nAt the start: ", pc.line(),
      "\n(each benchmark repeats the check right before its own 2-thread rows and marks those rows by its result)\n```\n\n",
      "### Goals\n\n", goals_table(goals), "\n",
      why_no_chart.empty() ? str("![value / goal per goal](", chart_name, ")\n\n") : str("(no chart: ", why_no_chart, ")\n\n"),
      sections);
  const std::string old = file_exists(doc) ? read_file(doc) : std::string("# Benchmarks\n");
  write_file_atomic(doc, replace_section(old, key, body));
  std::printf("bench all: updated the section %s of %s\n", key.c_str(), doc.c_str());
  return 0;
}

}  // namespace qat::bench
