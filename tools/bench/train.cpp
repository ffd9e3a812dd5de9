// `bench train`: one training step (zero grads, forward, loss, backward, clip, AdamW) of the same model
// FP32 and under each QAT scheme, timed in interleaved rounds on random token batches (a step's time
// does not depend on the data, so no corpus or tokenizer is needed). The goal of the benchmark issue:
// QAT step / FP32 step <= 1.3 for q4_0, q8_0 and w8a8 on the `small` preset.
// `bench torch`: our FP32 step against the same model in PyTorch (tools/torch_train_bench.py), one
// PyTorch process and one run of ours per round. Read next: train_step.h (the step timed),
// models/train/trainer.cpp (the real loop).
#include <cstdio>
#include <optional>
#include <sstream>

#include "src/core/parallel.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"
#include "tools/bench/torch_side.h"
#include "tools/bench/train_step.h"

namespace qat::bench {
namespace {

// The command line of `bench train`, with the thread counts and the preset resolved.
struct TrainArgs : ModelBenchArgs {
  std::string schemes = "q4_0,q8_0,w8a8";
  int64_t batch = 16, rounds = 7, steps = 2;
  TrainArgs() { preset = "small"; }
};

// Parses argv into *a; false after --help.
bool parse_train_args(int argc, char** argv, TrainArgs* a) {
  ArgParser p("bench train", "Training step time, FP32 vs QAT, on random token batches (goal: QAT / FP32 <= 1.3).\n"
                             "Every round runs each contender once; ratios are medians of per-round ratios.");
  a->declare(p, "3 rounds of 1 step");
  p.option("--batch", &a->batch, "sequences per step (each of the preset's context length)", 1, 4096);
  p.option("--schemes", &a->schemes, "QAT schemes to compare with FP32 (q4_0, q8_0, w8a8, w4, w8)", "LIST");
  p.option("--rounds", &a->rounds, "interleaved rounds", 1, 1000);
  p.option("--steps", &a->steps, "steps per contender per round (their median is the round's sample)", 1, 1000);
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = std::min<int64_t>(a->rounds, 3);
    a->steps = 1;
  }
  a->resolve();
  return true;
}

// FP32 first (the base of every ratio), then one QAT contender per scheme of the list.
std::vector<StepContender> step_contenders(const std::string& schemes, const ModelConfig& cfg) {
  std::vector<StepContender> cs;
  cs.push_back(make_contender("fp32", cfg));
  std::stringstream ss(schemes);
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty()) cs.push_back(make_contender(s, cfg));
  return cs;
}

// The rows and goals of thread count `th`.
void add_step_rows(std::string* table, std::vector<Goal>* goals, const TrainArgs& a, int th,
                   const std::vector<StepContender>& cs, const std::string& note) {
  for (const StepContender& c : cs) {
    const Stats s = stats(c.t);
    const Stats x = ratio_stats(c.t, cs[0].t);
    *table += str("| ", th, " | ", c.scheme == "fp32" ? "FP32" : "QAT " + c.scheme, " | ", fmt("%.1f", s.median * 1e3), " | ",
                  fmt("%.0f%%", s.spread() * 100), " | ", fmt("%.1f", s.min * 1e3), " | ",
                  fmt("%.0f", double(a.batch * a.cfg.context) / s.median), " | ", fmt("%.2f", x.median), " | ",
                  fmt("%.0f%%", x.spread() * 100), " | ", note, " |\n");
    if (c.scheme != "fp32")
      goals->push_back({str("QAT ", c.scheme, " step / FP32 step, ", a.preset, ", ", th, " thr"), x.median, 1.3, true, note});
  }
}

}  // namespace

int bench_train(int argc, char** argv) {
  TrainArgs a;
  if (!parse_train_args(argc, argv, &a)) return 0;
  const ModelConfig& cfg = a.cfg;
  std::vector<StepContender> cs = step_contenders(a.schemes, cfg);
  Batches batches = random_batches(cfg, a.batch, 3);
  std::printf("Training step, preset %s (%lld parameters, %lld layers, d_model %lld, vocab %lld), batch %lld x ctx %lld, "
              "random tokens; %lld rounds of %lld step(s) per contender, interleaved.\n",
              a.preset.c_str(), (long long)cs[0].model->params.count(), (long long)cfg.n_layers, (long long)cfg.d_model,
              (long long)cfg.vocab, (long long)a.batch, (long long)cfg.context, (long long)a.rounds, (long long)a.steps);
  std::printf("ms/step: median over rounds; spread = (max - min) / median; x FP32 = median of per-round ratios "
              "(step time / FP32 step time of the same round).\n\n");
  std::vector<Goal> goals;
  std::string table = "| threads | model | ms/step | spread | best ms | tokens/s | x FP32 step | ratio spread | note |\n"
                      "|---|---|---|---|---|---|---|---|---|\n";
  for (int th : a.threads) {
    ParallelCheck pc;
    if (th > 1) {
      pc = parallel_check();
      std::printf("%s\n", pc.line().c_str());
    }
    set_num_threads(th);
    step_rounds(cs, batches, a.rounds, a.steps);
    add_step_rows(&table, &goals, a, th, cs, thread_note(th, pc));
  }
  set_num_threads(0);
  std::printf("%s\nGoals:\n\n%s", table.c_str(), goals_table(goals).c_str());
  append_goals(a.goals_path, goals);
  return 0;
}

namespace {

// The command line of `bench torch`, with the thread counts and the preset resolved.
struct TorchArgs : ModelBenchArgs {
  TorchScript torch;
  int64_t batch = 16, rounds = 3, steps = 6;
  TorchArgs() { preset = "small"; }
};

// Parses argv into *a; false after --help.
bool parse_torch_args(int argc, char** argv, TorchArgs* a) {
  ArgParser p("bench torch", "Training speed of our FP32 step against the same model in PyTorch (Debian python3-torch),\n"
                             "tools/torch_train_bench.py at the same thread count; skipped, with the reason, without torch.");
  a->declare(p, "1 round of 3 steps");
  p.option("--batch", &a->batch, "sequences per step", 1, 4096);
  p.option("--rounds", &a->rounds, "rounds (one PyTorch process and one run of ours each)", 1, 100);
  p.option("--steps", &a->steps, "timed steps per run (PyTorch also runs 2 warm-up steps)", 1, 1000);
  a->torch.declare(p);
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = 1;
    a->steps = std::min<int64_t>(a->steps, 3);
  }
  a->resolve();
  return true;
}

// One sample per round of each side: tokens/s, cores used (CPU time / wall time), PyTorch's setting.
struct TorchRounds {
  std::vector<double> mine, theirs, my_cores, their_cores;
  std::string their_setting;  // "intra+blas, ..." per round
};

// `rounds` rounds at `th` threads: one PyTorch process, then `steps` timed steps of ours.
TorchRounds torch_rounds(const TorchArgs& a, int th, StepContender& ours, Batches& batches) {
  const double tokens = double(a.batch * a.cfg.context);
  TorchRounds t;
  for (int64_t r = 0; r < a.rounds; r++) {
    const Json j = run_torch(a.torch, {a.preset, th, a.batch, a.cfg.vocab, a.cfg.context, a.steps + 2, 2});
    t.theirs.push_back(j.at("tokens_per_s").as_double());
    t.their_cores.push_back(j.contains("cores_used") ? j.at("cores_used").as_double() : 0.0);
    if (j.contains("best_blas_threads"))
      t.their_setting += str(r ? ", " : "", j.at("best_threads").as_int(), "+", j.at("best_blas_threads").as_int());
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    t.mine.push_back(tokens / time_steps(ours, batches, a.steps));
    t.my_cores.push_back((cpu_seconds() - c0) / seconds_since(t0));
  }
  return t;
}

// The two rows (ours, PyTorch) and the goal of one thread count.
void add_torch_rows(std::string* table, std::vector<Goal>* goals, const TorchArgs& a, int th, const TorchRounds& t,
                    const std::string& note) {
  const Stats m = stats(t.mine), p = stats(t.theirs), x = ratio_stats(t.mine, t.theirs);
  *table += str("| ", th, " | qat FP32 | ", fmt("%.0f", m.median), " | ", fmt("%.0f%%", m.spread() * 100), " | ",
                fmt("%.2f", x.median), " | ", fmt("%.2f", stats(t.my_cores).median), " | ", th, " OpenMP | ", note, " |\n");
  *table += str("| ", th, " | PyTorch | ", fmt("%.0f", p.median), " | ", fmt("%.0f%%", p.spread() * 100), " | 1.00 | ",
                fmt("%.2f", stats(t.their_cores).median), " | ", t.their_setting, " | ", note, " |\n");
  goals->push_back({str("FP32 tokens/s / PyTorch, ", a.preset, ", ", th, " thr"), x.median, 1.0, false,
                    str("training issue: ours >= PyTorch", note.empty() ? "" : "; ", note)});
}

}  // namespace

int bench_torch(int argc, char** argv) {
  TorchArgs a;
  if (!parse_torch_args(argc, argv, &a)) return 0;
  const std::optional<std::string> version = torch_version(a.torch, "bench torch");
  if (!version) return 0;
  StepContender ours = make_contender("fp32", a.cfg);
  Batches batches = random_batches(a.cfg, a.batch, 3);
  std::printf("Training tokens/s, preset %s, batch %lld x ctx %lld, random tokens: ours (FP32, OpenBLAS) vs PyTorch %s "
              "(eager, AdamW, same model; at its best intra-op and OpenBLAS thread counts up to ours, one inter-op thread). %lld round(s) of "
              "%lld timed steps; x PyTorch = median of per-round ratios of tokens/s. cores used = CPU time / wall time of the timed "
              "steps; setting (PyTorch) = intra-op threads + OpenBLAS threads of its fastest setting, per round.\n\n",
              a.preset.c_str(), (long long)a.batch, (long long)a.cfg.context, version->c_str(), (long long)a.rounds,
              (long long)a.steps);
  std::vector<Goal> goals;
  std::string table = "| threads | who | tokens/s | spread | x PyTorch | cores used | setting | note |\n"
                      "|---|---|---|---|---|---|---|---|\n";
  for (int th : a.threads) {
    ParallelCheck pc;
    if (th > 1) {
      pc = parallel_check();
      std::printf("%s\n", pc.line().c_str());
    }
    const CpuPin pin = pin_one_cpu(th);
    set_num_threads(th);
    train_step(ours, batches);  // warm-up
    const TorchRounds t = torch_rounds(a, th, ours, batches);
    unpin(pin);
    std::string note = thread_note(th, pc);
    if (pin.cpu >= 0) note = str(note.empty() ? "" : note + "; ", "both on cpu ", pin.cpu);
    add_torch_rows(&table, &goals, a, th, t, note);
  }
  set_num_threads(0);
  std::printf("%s\nGoal of the training issue: ours >= PyTorch at its best setting for the thread count (1.0 = as fast):\n\n%s", table.c_str(),
              goals_table(goals).c_str());
  append_goals(a.goals_path, goals);
  return 0;
}

}  // namespace qat::bench
