// `bench train`: one training step (zero grads, forward, loss, backward, clip, AdamW) of the same model
// FP32 and under each QAT scheme, timed in interleaved rounds on random token batches (a step's time
// does not depend on the data, so no corpus or tokenizer is needed). The goal of the benchmark issue:
// QAT step / FP32 step <= 1.3 for q4_0, q8_0 and w8a8 on the `small` preset.
// `bench torch`: our FP32 step against the same model in PyTorch (tools/torch_train_bench.py), one
// PyTorch process and one run of ours per round. Read next: models/train/trainer.cpp (the real loop).
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>

#include "models/transformer.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "src/optim/adamw.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

// One model being timed: FP32 (scheme "fp32") or QAT under `scheme`, with its optimizer state.
struct StepContender {
  std::string scheme;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<AdamW> adam;
  std::vector<double> t;  // seconds per step, one sample per round
};

StepContender make_contender(const std::string& scheme, const ModelConfig& cfg) {
  StepContender c;
  c.scheme = scheme;
  std::optional<QatConfig> q;
  if (scheme != "fp32") q = QatConfig::make(scheme, "", cfg.n_layers, cfg.tied);
  c.model = std::make_unique<Transformer>(cfg, q ? &*q : nullptr);
  c.model->init_weights(1337);
  if (q) c.model->init_qat_scales();
  c.adam = std::make_unique<AdamW>(c.model->params, AdamWConfig{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f});
  return c;
}

// Random batches: ids (B, T) and targets (B, T) s32; a few of them, used in turn.
struct Batches {
  std::vector<Tensor> ids, targets;
  size_t next = 0;
};
Batches random_batches(const ModelConfig& cfg, int64_t B, int n) {
  Batches b;
  Rng rng(7);
  for (int i = 0; i < n; i++) {
    std::vector<int32_t> seq(size_t(B * (cfg.context + 1)));
    for (int32_t& id : seq) id = int32_t(rng.below(uint64_t(cfg.vocab)));
    std::vector<int32_t> x, y;
    for (int64_t r = 0; r < B; r++)
      for (int64_t t = 0; t < cfg.context; t++) {
        x.push_back(seq[size_t(r * (cfg.context + 1) + t)]);
        y.push_back(seq[size_t(r * (cfg.context + 1) + t + 1)]);
      }
    b.ids.push_back(Tensor::from_s32({B, cfg.context}, x));
    b.targets.push_back(Tensor::from_s32({B, cfg.context}, y));
  }
  return b;
}

// The step of models/train/trainer.cpp without data loading, schedule, metrics or NaN handling.
void train_step(StepContender& c, Batches& b) {
  Transformer& m = *c.model;
  m.params.zero_grad();
  const size_t i = b.next++ % b.ids.size();
  Tensor loss = m.loss(b.ids[i], b.targets[i]);
  loss.backward();
  loss = Tensor();
  clip_grad_norm(m.params, 1.0f);
  c.adam->step(1e-4f);
  if (m.qat) m.clamp_qat_scales();
}

// Seconds per step: the median of `steps` steps run back to back.
double time_steps(StepContender& c, Batches& b, int64_t steps) {
  std::vector<double> t;
  for (int64_t s = 0; s < steps; s++) {
    auto t0 = Clock::now();
    train_step(c, b);
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

// The command line of `bench train`, with the thread counts and the preset resolved.
struct TrainArgs {
  std::string preset = "small", schemes = "q4_0,q8_0,w8a8", thread_list = "1,2", goals_path;
  int64_t batch = 16, rounds = 7, steps = 2;
  bool quick = false;
  std::vector<int> threads;
  ModelConfig cfg;
};

// Parses argv into *a; false after --help.
bool parse_train_args(int argc, char** argv, TrainArgs* a) {
  ArgParser p("bench train", "Training step time, FP32 vs QAT, on random token batches (goal: QAT / FP32 <= 1.3).\n"
                             "Every round runs each contender once; ratios are medians of per-round ratios.");
  p.option("--preset", &a->preset, "model preset: tiny, small or base", "NAME");
  p.option("--batch", &a->batch, "sequences per step (each of the preset's context length)", 1, 4096);
  p.option("--schemes", &a->schemes, "QAT schemes to compare with FP32 (q4_0, q8_0, w8a8, w4, w8)", "LIST");
  p.option("--threads", &a->thread_list, "thread counts", "LIST");
  p.option("--rounds", &a->rounds, "interleaved rounds", 1, 1000);
  p.option("--steps", &a->steps, "steps per contender per round (their median is the round's sample)", 1, 1000);
  p.option("--goals", &a->goals_path, "append the goals (tab-separated) to this file, for `bench all`", "FILE");
  p.flag("--quick", &a->quick, "3 rounds of 1 step");
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = std::min<int64_t>(a->rounds, 3);
    a->steps = 1;
  }
  a->threads = parse_threads("--threads", a->thread_list);
  a->cfg = ModelConfig::preset_named(a->preset);
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

// One warm-up step of each contender, then `rounds` interleaved rounds of `steps` steps each.
void step_rounds(std::vector<StepContender>& cs, Batches& batches, int64_t rounds, int64_t steps) {
  for (StepContender& c : cs) {
    c.t.clear();
    train_step(c, batches);  // warm-up: first-touch allocations, packing
  }
  for (int64_t r = 0; r < rounds; r++)
    for (StepContender& c : cs) c.t.push_back(time_steps(c, batches, steps));
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

// Runs `cmd` through the shell; returns its exit status and (in *out) stdout and stderr together.
int run_capture(const std::string& cmd, std::string* out) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  QAT_CHECK(f, "cannot run '", cmd, "'");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The script's JSON line (its last line starting with '{').
Json torch_result(const std::string& out, const std::string& cmd) {
  size_t pos = out.rfind("\n{");
  pos = pos == std::string::npos ? (out.rfind('{', 0) == 0 ? 0 : std::string::npos) : pos + 1;
  QAT_CHECK(pos != std::string::npos, "'", cmd, "' printed no JSON line; its output:\n", out);
  return Json::parse(out.substr(pos, out.find('\n', pos) - pos));
}

double cpu_seconds() {  // this process, all threads
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// The command line of `bench torch`, with the thread counts and the preset resolved.
struct TorchArgs {
  std::string preset = "small", thread_list = "1,2", goals_path, python = "/usr/bin/python3", script = "tools/torch_train_bench.py";
  int64_t batch = 16, rounds = 3, steps = 6;
  bool quick = false;
  std::vector<int> threads;
  ModelConfig cfg;
};

// Parses argv into *a; false after --help.
bool parse_torch_args(int argc, char** argv, TorchArgs* a) {
  ArgParser p("bench torch", "Training speed of our FP32 step against the same model in PyTorch (Debian python3-torch),\n"
                             "tools/torch_train_bench.py at the same thread count; skipped, with the reason, without torch.");
  p.option("--preset", &a->preset, "model preset: tiny, small or base", "NAME");
  p.option("--batch", &a->batch, "sequences per step", 1, 4096);
  p.option("--threads", &a->thread_list, "thread counts", "LIST");
  p.option("--rounds", &a->rounds, "rounds (one PyTorch process and one run of ours each)", 1, 100);
  p.option("--steps", &a->steps, "timed steps per run (PyTorch also runs 2 warm-up steps)", 1, 1000);
  p.option("--python", &a->python, "the Python interpreter (Debian's, where python3-torch installs)", "PATH");
  p.option("--script", &a->script, "the PyTorch side", "PATH");
  p.option("--goals", &a->goals_path, "append the goals (tab-separated) to this file, for `bench all`", "FILE");
  p.flag("--quick", &a->quick, "1 round of 3 steps");
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = 1;
    a->steps = std::min<int64_t>(a->steps, 3);
  }
  a->threads = parse_threads("--threads", a->thread_list);
  a->cfg = ModelConfig::preset_named(a->preset);
  return true;
}

// PyTorch's version, or nothing after printing why the comparison is skipped (no script, no torch).
std::optional<std::string> torch_version(const TorchArgs& a) {
  std::string out;
  if (!file_exists(a.script)) {
    std::printf("bench torch: skipped: %s does not exist (run from the repository root)\n", a.script.c_str());
    return std::nullopt;
  }
  if (run_capture(shell_quote(a.python) + " -c 'import torch; print(torch.__version__)'", &out) != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    std::printf("bench torch: skipped: %s cannot import torch (apt-get install python3-torch): %s\n", a.python.c_str(),
                out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1).c_str());
    return std::nullopt;
  }
  return out.substr(0, out.find('\n'));
}

// One thread: both contenders pinned to the same CPU (PyTorch inherits the mask), since the two vCPUs
// of a shared host can differ in speed by 10% or more at a time (measured here: 6,377 vs 5,732
// tokens/s for our step on cpu 0 and cpu 1) and each process would otherwise land on either.
struct CpuPin {
  cpu_set_t all_cpus;  // the mask before, restored by unpin()
  bool pinned = false;
  int cpu = -1;        // the CPU both ran on; -1: not pinned
};
CpuPin pin_one_cpu(int threads) {
  CpuPin pin;
  CPU_ZERO(&pin.all_cpus);
  pin.pinned = threads == 1 && sched_getaffinity(0, sizeof pin.all_cpus, &pin.all_cpus) == 0;
  if (pin.pinned) {
    cpu_set_t one;
    CPU_ZERO(&one);
    pin.cpu = sched_getcpu();
    CPU_SET(pin.cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) pin.cpu = -1;
  }
  return pin;
}
void unpin(const CpuPin& pin) {
  if (pin.pinned) sched_setaffinity(0, sizeof pin.all_cpus, &pin.all_cpus);
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
    const std::string cmd = str(shell_quote(a.python), " ", shell_quote(a.script), " --preset ", a.preset, " --threads ", th,
                                " --batch ", a.batch, " --vocab ", a.cfg.vocab, " --steps ", a.steps + 2);
    std::string out;
    QAT_CHECK(run_capture(cmd, &out) == 0, "'", cmd, "' failed:\n", out);
    const Json j = torch_result(out, cmd);
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
  const std::optional<std::string> version = torch_version(a);
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
