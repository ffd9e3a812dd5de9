// The pure logic of `bin/bench llama` (our engine against llama.cpp's llama-bench on the same GGUF
// files), kept in the library so tests can check it: reading llama-bench's `-o json` output, the
// ladder's rows (samples of both engines per shape, format and thread count), the goals of issue 19
// computed from them, and the gnuplot script of the tokens/s vs model bytes plot with its bandwidth
// roof. The measuring driver: tools/bench/llama.cpp. Read next: src/util/bench_report.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/util/bench_report.h"

namespace qat::bench {

// One llama-bench run with `-p P -n G -r 1 -o json`: tokens/s of its prompt test (n_prompt = P,
// n_gen = 0) and of its generation test (n_prompt = 0, n_gen = G), and the weights' bytes it reports
// (model_size). Throws qat::Error naming what is missing when the text lacks either test.
struct LlamaBenchRun {
  double pp_ts = 0, tg_ts = 0;
  int64_t model_size = 0;
};
LlamaBenchRun parse_llama_bench_json(const std::string& text, int64_t n_prompt, int64_t n_gen);

// One row of the ladder: a shape and format at one thread count, one sample per interleaved round for
// each engine (tokens/s). weight_bytes: what one decoded token streams (every matrix, the norms, one
// embedding row's worth counted as the whole table, as DecodeModel::weight_bytes counts it).
struct LadderRow {
  std::string shape, format;
  int64_t params = 0, weight_bytes = 0;
  int threads = 1;
  std::vector<double> ours_pp, ours_tg, llama_pp, llama_tg;
  std::string note;  // "unreliable: ..." when the parallel check failed before a 2-thread row
};

// The goals from the rows, the worst row deciding each (its shape named in the note):
//   decode / llama.cpp >= 1.2 per format and thread count; prefill / llama.cpp >= 1.0 likewise;
//   for rows whose weights exceed llc_bytes (DRAM-bound): decode GB/s / dram_gbs[threads] >= 0.85 at 2
//   threads and decode tok/s at 2 threads / at 1 thread >= 1.5, per format.
// dram_gbs[t]: the measured read bandwidth with t threads (index 0 unused). A goal with no row to
// decide it (no shape beyond the LLC in a --quick run) is left out; *missing says which and why.
std::vector<Goal> ladder_goals(const std::vector<LadderRow>& rows, const std::vector<double>& dram_gbs,
                               int64_t llc_bytes, std::vector<std::string>* missing);

// Decode GB/s of weights of a row's median decode rate (ours when `ours`, else llama.cpp's).
double decode_gbs(const LadderRow& r, bool ours);

// A gnuplot script drawing decode tokens/s against the weights' MiB (both log scales), one series per
// engine and thread count, with the roof dram_gbs[t] / bytes per thread count as lines; writes `png`.
std::string ladder_plot_script(const std::vector<LadderRow>& rows, const std::vector<double>& dram_gbs,
                               const std::string& png, const std::string& title);

}  // namespace qat::bench
