// `bench shapes`: training speed at size (issue 17). For each model shape (small, 15m, 110m at context
// 512) and thread count, in interleaved rounds: our FP32 step, our QAT q4_0 step and one PyTorch run
// (tools/torch_train_bench.py, its best thread setting). Columns: tokens/s, QAT / FP32 step, model
// GFLOP/s and MFU (models/step_flops.h over the measured f32 FMA peak at that thread count,
// kernels/peaks.h), and the GEMMs' own GFLOP/s and MFU from a profiled FP32 step (the profiler's
// `linear` and `matmul` rows, forward and backward). Read next: train_step.h, torch_side.h.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <sstream>

#include "kernels/peaks.h"
#include "models/step_flops.h"
#include "models/train/memory.h"
#include "src/core/parallel.h"
#include "src/util/error.h"
#include "src/util/profile.h"
#include "tools/bench/bench.h"
#include "tools/bench/torch_side.h"
#include "tools/bench/train_step.h"

namespace qat::bench {
namespace {

// One row group of the table: a preset at a sequence length and batch chosen so that a 1-thread step
// takes about 1-10 s here, and how many steps each side runs per round.
struct ShapeSpec {
  const char* preset;
  int64_t ctx, batch;
  int64_t steps;                       // our steps per contender per round (their median is the sample)
  int64_t torch_steps, torch_warmup;   // PyTorch's steps per setting, of which untimed
};
// 110m runs at context 512 (the size point), not its preset's 1024: a 1024-token step of it
// takes ~4x the time of a 512-token one at the same batch, and the table must fit in `make bench`.
constexpr ShapeSpec kShapes[] = {
    {"small", 128, 32, 2, 6, 2},
    {"15m", 256, 8, 1, 4, 1},
    {"110m", 512, 2, 1, 2, 1},
};

// The command line of `bench shapes`.
struct ShapesArgs : ModelBenchArgs {
  std::string shape_list = "small,15m,110m", scheme = "q4_0";
  int64_t rounds = 3;
  TorchScript torch;
  std::vector<ShapeSpec> shapes;
};

std::vector<ShapeSpec> parse_shapes(const std::string& list) {
  std::vector<ShapeSpec> v;
  std::stringstream ss(list);
  for (std::string name; std::getline(ss, name, ',');) {
    const ShapeSpec* hit = nullptr;
    for (const ShapeSpec& s : kShapes)
      if (name == s.preset) hit = &s;
    if (!hit) throw UsageError(str("--shapes: expected names among small,15m,110m, got '", name, "'"));
    v.push_back(*hit);
  }
  if (v.empty()) throw UsageError("--shapes: expected at least one shape");
  return v;
}

// Parses argv into *a; false after --help.
bool parse_shapes_args(int argc, char** argv, ShapesArgs* a) {
  ArgParser p("bench shapes",
              "Training speed at size: tokens/s, GFLOP/s and MFU (% of the measured f32 FMA peak) of the FP32 and QAT\n"
              "steps per model shape (small ctx 128 batch 32, 15m ctx 256 batch 8, 110m ctx 512 batch 2), beside\n"
              "PyTorch at its best thread setting. Goals: ours >= 1.2x PyTorch, QAT step <= 1.1x FP32, 110m GEMMs >= 60%.");
  a->declare(p, "1 round, small and 15m only (unless --shapes names them)", /*preset_option=*/false);
  p.option("--shapes", &a->shape_list, "shapes, a subset of small,15m,110m", "LIST");
  p.option("--scheme", &a->scheme, "the QAT scheme of the QAT column", "NAME");
  p.option("--rounds", &a->rounds, "interleaved rounds (our FP32 step, our QAT step, one PyTorch run each)", 1, 100);
  a->torch.declare(p);
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = 1;
    if (!p.given("--shapes")) a->shape_list = "small,15m";  // 110m alone takes minutes a round
  }
  a->resolve();
  a->shapes = parse_shapes(a->shape_list);
  QatConfig::make(a->scheme, "", 1, true);  // a bad --scheme fails here, before anything runs
  return true;
}

// Samples of one (shape, threads) cell, one per round; PyTorch's empty when it is skipped.
struct CellRounds {
  std::vector<double> fp32_s, qat_s;  // seconds per step
  std::vector<double> torch_tps;      // PyTorch tokens/s
  std::string torch_setting;          // "intra+blas" threads of its fastest setting, per round
};

// `rounds` rounds: our FP32 step(s), our QAT step(s), then one PyTorch process.
CellRounds cell_rounds(const ShapesArgs& a, const ShapeSpec& s, int th, std::vector<StepContender>& cs, Batches& b,
                       bool with_torch) {
  for (StepContender& c : cs) train_step(c, b);  // warm-up: first-touch allocations, packing
  CellRounds r;
  for (int64_t i = 0; i < a.rounds; i++) {
    r.fp32_s.push_back(time_steps(cs[0], b, s.steps));
    r.qat_s.push_back(time_steps(cs[1], b, s.steps));
    if (!with_torch) continue;
    const Json j = run_torch(a.torch, {s.preset, th, s.batch, cs[0].model->cfg.vocab, s.ctx, s.torch_steps, s.torch_warmup});
    r.torch_tps.push_back(j.at("tokens_per_s").as_double());
    r.torch_setting += str(i ? ", " : "", j.at("best_threads").as_int(), "+", j.at("best_blas_threads").as_int());
  }
  return r;
}

// One profiled step of `c`: the profiler's rows, the GEMM rows' FLOPs and seconds, the step's wall time.
struct StepProfile {
  double gemm_flops = 0, gemm_s = 0, wall = 0;
  std::string table;  // the profiler's table, every row
};
StepProfile profile_step(StepContender& c, Batches& b, const MachinePeaks& mp) {
  prof::enable(true);
  const auto t0 = Clock::now();
  train_step(c, b);
  StepProfile p;
  p.wall = seconds_since(t0);
  for (const prof::Row& r : prof::rows())
    if (r.name == "linear" || r.name == "matmul") {  // OpenBLAS sgemm, forward and backward
      p.gemm_flops += r.flops;
      p.gemm_s += r.seconds;
    }
  p.table = prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, 1, p.wall);
  prof::enable(false);
  return p;
}

// The first `n` op rows of a profiler table, its header and its two summary lines.
std::string top_rows(const std::string& table, int n) {
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back("  " + l + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); i++)
    if (i <= size_t(n) || i + 2 >= lines.size()) out += lines[i];
  return out;
}

// What the row of one (shape, threads) cell reports.
struct CellResult {
  Stats fp32_tps, qat_x, torch_tps, ours_x;
  double model_gflops = 0, gemm_gflops = 0, peak = 0;
  bool torch = false;
};

CellResult summarize(const ShapeSpec& s, const ModelConfig& cfg, const CellRounds& r, const StepProfile& p, double peak) {
  CellResult c;
  const double tokens = double(s.batch * s.ctx);
  std::vector<double> fp32_tps;
  for (double t : r.fp32_s) fp32_tps.push_back(tokens / t);
  c.fp32_tps = stats(fp32_tps);
  c.qat_x = ratio_stats(r.qat_s, r.fp32_s);
  c.model_gflops = train_step_flops(cfg, s.batch, s.ctx).total() / median(r.fp32_s) * 1e-9;
  c.gemm_gflops = p.gemm_s > 0 ? p.gemm_flops / p.gemm_s * 1e-9 : 0;
  c.peak = peak;
  c.torch = !r.torch_tps.empty();
  if (c.torch) {
    c.torch_tps = stats(r.torch_tps);
    c.ours_x = ratio_stats(fp32_tps, r.torch_tps);  // one PyTorch run per round: the same count
  }
  return c;
}

// The table row and the goals of one cell.
void add_cell(std::string* table, std::vector<Goal>* goals, const ShapesArgs& a, const ShapeSpec& s, int th,
              const CellResult& c, const CellRounds& r, const std::string& note) {
  const double qat_tps = c.fp32_tps.median / c.qat_x.median;
  *table += str("| ", s.preset, " | ", s.ctx, " x ", s.batch, " | ", th, " | ", fmt("%.0f", c.fp32_tps.median), " (",
                fmt("%.0f%%", c.fp32_tps.spread() * 100), ") | ", fmt("%.0f", qat_tps), " | ", fmt("%.2f", c.qat_x.median), " (",
                fmt("%.0f%%", c.qat_x.spread() * 100), ") | ", fmt("%.1f", c.model_gflops), " | ",
                fmt("%.0f%%", 100 * c.model_gflops / c.peak), " | ", fmt("%.1f", c.gemm_gflops), " | ",
                fmt("%.0f%%", 100 * c.gemm_gflops / c.peak), " | ", fmt("%.0f", c.peak), " | ",
                c.torch ? fmt("%.0f", c.torch_tps.median) + " (" + r.torch_setting + ")" : std::string("skipped"), " | ",
                c.torch ? fmt("%.2f", c.ours_x.median) + " (" + fmt("%.0f%%", c.ours_x.spread() * 100) + ")" : std::string("-"),
                " | ", note, " |\n");
  const std::string where = str(s.preset, " ctx ", s.ctx, ", ", th, " thr");
  if (c.torch) goals->push_back({str("FP32 tokens/s / PyTorch, ", where), c.ours_x.median, 1.2, false, note});
  goals->push_back({str("QAT ", a.scheme, " step / FP32 step, ", where), c.qat_x.median, 1.1, true, note});
  if (std::string(s.preset) == "110m")
    goals->push_back({str("GEMM GFLOP/s / f32 peak, ", where), c.gemm_gflops / c.peak, 0.6, false, note});
}

// Whether an FP32 and a QAT model of the shape fit in the memory available now (both live at once,
// for interleaved rounds); prints why not.
bool both_fit(const ShapesArgs& a, const ShapeSpec& s, const ModelConfig& cfg) {
  const QatConfig q = QatConfig::make(a.scheme, "", cfg.n_layers, cfg.tied);
  const int th = *std::max_element(a.threads.begin(), a.threads.end());
  const double need = estimate_training_memory(cfg, nullptr, s.batch, s.ctx, th, false, 0).total() +
                      estimate_training_memory(cfg, &q, s.batch, s.ctx, th, false, 0).total();
  std::string source;
  const double avail = available_memory_bytes(&source);
  if (avail <= 0 || need < avail * 0.8) return true;
  std::printf("bench shapes: skipped %s: the FP32 and QAT models need an estimated %s together, %s available (%s)\n",
              s.preset, human_bytes(need).c_str(), human_bytes(avail).c_str(), source.c_str());
  return false;
}

// Every thread count of one shape: rows of the table, goals, and (for the last shape) its profiles.
void bench_shape(const ShapesArgs& a, const ShapeSpec& s, bool with_torch, bool print_profiles, std::string* table,
                 std::vector<Goal>* goals) {
  ModelConfig cfg = ModelConfig::preset_named(s.preset);
  cfg.context = s.ctx;
  if (!both_fit(a, s, cfg)) return;
  std::vector<StepContender> cs;
  cs.push_back(make_contender("fp32", cfg));
  cs.push_back(make_contender(a.scheme, cfg));
  Batches b = random_batches(cfg, s.batch, 2);
  std::printf("%s: %lld parameters, ctx %lld x batch %lld, %.1f GFLOP a step (GEMM %.1f + attention %.1f)\n", s.preset,
              (long long)cs[0].model->params.count(), (long long)s.ctx, (long long)s.batch,
              train_step_flops(cfg, s.batch, s.ctx).total() * 1e-9, train_step_flops(cfg, s.batch, s.ctx).gemm * 1e-9,
              train_step_flops(cfg, s.batch, s.ctx).attention * 1e-9);
  std::fflush(stdout);  // progress, through `bench all`'s pipe: a shape takes minutes
  for (int th : a.threads) {
    ParallelCheck pc;
    if (th > 1) pc = parallel_check();
    set_num_threads(th);
    const CpuPin pin = pin_one_cpu(th);
    const MachinePeaks mp = measure_peaks(th, 0.5);
    const CellRounds r = cell_rounds(a, s, th, cs, b, with_torch);
    const StepProfile pf = profile_step(cs[0], b, mp);
    std::optional<StepProfile> pq;
    if (print_profiles) pq = profile_step(cs[1], b, mp);
    unpin(pin);
    std::string note = thread_note(th, pc);
    if (th > 1) note = str(note.empty() ? "" : note + "; ", "parallel check ", fmt("%.2f", pc.ratio));
    if (pin.cpu >= 0) note = str(note.empty() ? "" : note + "; ", "all on cpu ", pin.cpu);
    add_cell(table, goals, a, s, th, summarize(s, cfg, r, pf, mp.f32_gflops), r, note);
    if (print_profiles)
      std::printf("Profiled steps, %s ctx %lld, %d thread(s), top ops:\nFP32:\n%sQAT %s:\n%s", s.preset, (long long)s.ctx, th,
                  top_rows(pf.table, 8).c_str(), a.scheme.c_str(), top_rows(pq->table, 8).c_str());
    std::fflush(stdout);
  }
  set_num_threads(0);
}

}  // namespace

int bench_shapes(int argc, char** argv) {
  ShapesArgs a;
  if (!parse_shapes_args(argc, argv, &a)) return 0;
  const std::optional<std::string> version = torch_version(a.torch, "bench shapes: PyTorch columns");
  std::printf("Training speed at size: random tokens, vocab %lld; ours FP32 (OpenBLAS GEMMs) and QAT %s, PyTorch %s (eager, "
              "AdamW, same model, its best intra-op + OpenBLAS thread setting up to ours). %lld interleaved round(s), "
              "each: our FP32 step(s), our QAT step(s), one PyTorch run. tokens/s and ratios: medians over rounds (spread = "
              "(max - min) / median); x ratios: medians of per-round ratios.\n"
              "GFLOP/s: model FLOPs of the FP32 step, 6 x GEMM weights x tokens + 12 x layers x ctx^2 x d_model per sequence "
              "(full-square attention, the PaLM convention), over its median step time. GEMM GFLOP/s: the profiler's "
              "linear + matmul rows (forward and backward) of one profiled FP32 step. MFU: over the f32 FMA peak measured "
              "at that thread count (bench peak's loop) right before the rows. 1-thread rows: ours and PyTorch pinned to "
              "one CPU.\n\n",
              (long long)ModelConfig().vocab, a.scheme.c_str(), version ? version->c_str() : "(skipped)",
              (long long)a.rounds);
  std::vector<Goal> goals;
  std::string table = "| shape | ctx x batch | threads | FP32 tokens/s | QAT tokens/s | QAT / FP32 step | GFLOP/s | MFU | "
                      "GEMM GFLOP/s | GEMM MFU | f32 peak | PyTorch tokens/s (setting) | ours / PyTorch | note |\n"
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < a.shapes.size(); i++)
    bench_shape(a, a.shapes[i], version.has_value(), i + 1 == a.shapes.size(), &table, &goals);
  std::printf("\n%s\nGoals of issue 17 (ours >= 1.2x PyTorch, QAT step <= 1.1x FP32, 110m GEMMs >= 0.60 of the f32 peak):\n\n%s",
              table.c_str(), goals_table(goals).c_str());
  append_goals(a.goals_path, goals);
  return 0;
}

}  // namespace qat::bench
