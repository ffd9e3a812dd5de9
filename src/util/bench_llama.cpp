// bin/bench llama's report logic (see bench_llama.h): llama-bench's JSON, the goals, the plot script.
#include "src/util/bench_llama.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "src/io/json.h"
#include "src/util/error.h"

namespace qat::bench {

LlamaBenchRun parse_llama_bench_json(const std::string& text, int64_t n_prompt, int64_t n_gen) {
  const Json j = Json::parse(text);
  QAT_CHECK(j.is_array(), "llama-bench output: expected a JSON array of tests (-o json)");
  LlamaBenchRun r;
  bool pp = false, tg = false;
  for (const Json& t : j.items()) {
    QAT_CHECK(t.is_object(), "llama-bench output: a test is not an object");
    const int64_t p = t.at("n_prompt").as_int(), g = t.at("n_gen").as_int();
    const double ts = t.at("avg_ts").as_double();
    QAT_CHECK(ts > 0, "llama-bench output: avg_ts ", ts, " is not positive");
    r.model_size = t.at("model_size").as_int();
    if (p == n_prompt && g == 0) { r.pp_ts = ts; pp = true; }
    if (p == 0 && g == n_gen) { r.tg_ts = ts; tg = true; }
  }
  QAT_CHECK(pp, "llama-bench output: no prompt test with n_prompt ", n_prompt, " and n_gen 0");
  QAT_CHECK(tg, "llama-bench output: no generation test with n_prompt 0 and n_gen ", n_gen);
  return r;
}

double decode_gbs(const LadderRow& r, bool ours) {
  return stats(ours ? r.ours_tg : r.llama_tg).median * double(r.weight_bytes) * 1e-9;
}

namespace {

// The note of a goal decided by row r: its own note first (the chart greys notes starting "unreliable").
std::string worst_note(const LadderRow& r) {
  const std::string where = str("worst: ", r.shape);
  return r.note.empty() ? where : str(r.note, "; ", where);
}

// The worst value(row) over rows with `format` and `threads` selected by `pick`; nullptr when none.
template <class Pick, class Value>
const LadderRow* worst_row(const std::vector<LadderRow>& rows, const std::string& format, int threads, Pick pick,
                           Value value, double* worst) {
  const LadderRow* w = nullptr;
  for (const LadderRow& r : rows)
    if (r.format == format && r.threads == threads && pick(r) && (!w || value(r) < *worst)) {
      w = &r;
      *worst = value(r);
    }
  return w;
}

// The same shape and format at another thread count (nullptr when not measured).
const LadderRow* partner(const std::vector<LadderRow>& rows, const LadderRow& r, int threads) {
  for (const LadderRow& o : rows)
    if (o.shape == r.shape && o.format == r.format && o.threads == threads) return &o;
  return nullptr;
}

}  // namespace

std::vector<Goal> ladder_goals(const std::vector<LadderRow>& rows, const std::vector<double>& dram_gbs,
                               int64_t llc_bytes, std::vector<std::string>* missing) {
  std::vector<std::string> formats;
  std::set<int> threads;
  for (const LadderRow& r : rows) {
    if (std::find(formats.begin(), formats.end(), r.format) == formats.end()) formats.push_back(r.format);
    threads.insert(r.threads);
  }
  auto all = [](const LadderRow&) { return true; };
  auto dram = [&](const LadderRow& r) { return r.weight_bytes > llc_bytes; };
  auto tg_x = [](const LadderRow& r) { return ratio_stats(r.ours_tg, r.llama_tg).median; };
  auto pp_x = [](const LadderRow& r) { return ratio_stats(r.ours_pp, r.llama_pp).median; };
  auto roof = [&](const LadderRow& r) {
    const double bw = size_t(r.threads) < dram_gbs.size() ? dram_gbs[size_t(r.threads)] : 0;
    return bw > 0 ? decode_gbs(r, true) / bw : 0;
  };
  auto two_over_one = [&](const LadderRow& r) {
    const LadderRow* one = partner(rows, r, 1);
    return one ? ratio_stats(r.ours_tg, one->ours_tg).median : 0;
  };
  auto has_one = [&](const LadderRow& r) { return dram(r) && partner(rows, r, 1) != nullptr; };
  std::vector<Goal> goals;
  double v = 0;
  for (const std::string& f : formats) {
    for (int t : threads)
      if (const LadderRow* w = worst_row(rows, f, t, all, tg_x, &v))
        goals.push_back({str(f, " decode / llama.cpp, ", t, " thr"), v, 1.2, false, worst_note(*w)});
    for (int t : threads)
      if (const LadderRow* w = worst_row(rows, f, t, all, pp_x, &v))
        goals.push_back({str(f, " prefill / llama.cpp, ", t, " thr"), v, 1.0, false, worst_note(*w)});
    if (const LadderRow* w = worst_row(rows, f, 2, dram, roof, &v))
      goals.push_back({str(f, " decode GB/s / DRAM read, 2 thr"), v, 0.85, false, worst_note(*w)});
    else
      missing->push_back(str(f, " decode GB/s / DRAM read: no 2-thread row with weights beyond the LLC (", llc_bytes >> 20, " MiB)"));
    if (const LadderRow* w = worst_row(rows, f, 2, has_one, two_over_one, &v))
      goals.push_back({str(f, " decode 2 thr / 1 thr, beyond the LLC"), v, 1.5, false, worst_note(*w)});
    else
      missing->push_back(str(f, " decode 2 thr / 1 thr: no shape beyond the LLC measured at 1 and 2 threads"));
  }
  return goals;
}

std::string ladder_plot_script(const std::vector<LadderRow>& rows, const std::vector<double>& dram_gbs,
                               const std::string& png, const std::string& title) {
  // One data block per (engine, format, threads): "MiB tok/s" lines sorted by size.
  // Colour: engine (qat blue, llama.cpp red) and thread count (darker: more); point: format.
  struct Series {
    std::vector<std::pair<double, double>> pts;
    bool ours;
    int threads;
    std::string format;
  };
  std::map<std::string, Series> series;
  std::set<int> threads;
  for (const LadderRow& r : rows) {
    const double mib = double(r.weight_bytes) / (1 << 20);
    for (bool ours : {true, false}) {
      Series& se = series[str(ours ? "qat " : "llama.cpp ", r.format, " ", r.threads, " thr")];
      se.pts.push_back({mib, stats(ours ? r.ours_tg : r.llama_tg).median});
      se.ours = ours;
      se.threads = r.threads;
      se.format = r.format;
    }
    threads.insert(r.threads);
  }
  std::string s = str("set terminal pngcairo noenhanced size 1000,640 font 'sans,10'\nset output '", png, "'\n",
                      "set title '", title, "'\nset logscale xy\nset grid\nset key top right\n",
                      "set xlabel 'weights streamed per token, MiB'\nset ylabel 'decode tokens/s'\n");
  std::string plot = "plot ";
  int i = 0;
  for (auto& [name, se] : series) {
    std::sort(se.pts.begin(), se.pts.end());
    s += str("$d", i, " << EOD\n");
    for (auto [x, y] : se.pts) s += str(x, " ", y, "\n");
    s += "EOD\n";
    const char* colour = se.ours ? (se.threads > 1 ? "#08306b" : "#4292c6") : (se.threads > 1 ? "#7f0000" : "#ef6548");
    plot += str(i ? ", " : "", "$d", i, " using 1:2 with linespoints lw 2 lc rgb '", colour, "' pt ",
                se.format == "q8_0" ? 5 : 7, " dt ", se.ours ? 1 : 2, " title '", name, "'");
    i++;
  }
  // The bandwidth roof: a token cannot take less time than its bytes over the measured read rate.
  for (int t : threads)
    if (size_t(t) < dram_gbs.size() && dram_gbs[size_t(t)] > 0)
      plot += str(", ", dram_gbs[size_t(t)], "e9 / (x * 1048576) with lines lw 1 lc rgb '#777777' dt ", t + 2,
                  " title 'DRAM roof ", t, " thr (", int(dram_gbs[size_t(t)] * 10 + 0.5) / 10.0, " GB/s)'");
  return s + plot + "\n";
}

}  // namespace qat::bench
