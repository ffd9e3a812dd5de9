// The training loop (see trainer.h). One step = `accum` micro-batches of forward + backward into the
// flat gradient buffer, clip, AdamW. Everything a resume needs is in the checkpoint's state.json and
// optimizer.safetensors, and every random choice is keyed on (seed, step/epoch), so a resumed run is
// bit-identical to an uninterrupted one.
#include "models/train/trainer.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "models/model_size.h"
#include "models/model_source.h"
#include "models/transformer.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/optim/adamw.h"
#include "src/quant/fake_quant.h"
#include "models/checkpoint.h"
#include "src/train/evaluate.h"
#include "src/util/profile.h"
#include "kernels/peaks.h"

extern char** environ;

namespace qat {

namespace {
std::atomic<bool> g_stop{false};
int64_t g_stop_after = -1;

void on_sigint(int) { g_stop = true; }

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string fmt_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) / 60) % 60);
  return buf;
}

}  // namespace

void preset_defaults(const std::string& preset, int64_t* steps, double* lr) {
  if (preset == "tiny") { *steps = 200; *lr = 3e-3; }
  else if (preset == "small") { *steps = 1000; *lr = 2e-3; }
  else { *steps = 4000; *lr = 1e-3; }
}

namespace {

// Steps listed in QAT_INJECT_NAN (comma-separated) get a NaN gradient: the test hook for the guard.
bool inject_nan_at(int64_t step) {
  const char* e = std::getenv("QAT_INJECT_NAN");
  if (!e) return false;
  std::string s = e;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty() && std::atoll(item.c_str()) == step) return true;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return false;
}

// Calls fn(line, parsed) for each line of a metrics file; a torn line (from a crash) is skipped.
void for_each_metrics_line(const std::string& path, const std::function<void(const std::string&, const Json&)>& fn) {
  if (!file_exists(path)) return;
  std::string text = read_file(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    Json j;
    try {
      j = Json::parse(line);
      j.at("step").as_int();
    } catch (const Error&) {
      continue;
    }
    fn(line, j);
  }
}

// Drops metrics lines whose step is beyond `step` (after a resume, those steps run again) and a torn
// last line.
void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::string kept;
  for_each_metrics_line(path, [&](const std::string& line, const Json& j) {
    if (j.at("step").as_int() <= step) kept += line + "\n";
  });
  write_file_atomic(path, kept);
}

// The val line of `step` in a metrics file, if there is one: a run resumed after its final checkpoint
// (which is written after the final evaluation) reports that evaluation instead of running it again, so
// a kill at any moment of such a resume leaves the metrics as they were.
bool recorded_eval(const std::string& path, int64_t step, double* loss, double* bpb) {
  bool found = false;
  for_each_metrics_line(path, [&](const std::string&, const Json& j) {
    if (j.at("step").as_int() == step && j.contains("val_loss")) {
      *loss = j.at("val_loss").as_double();
      *bpb = j.at("bpb").as_double();
      found = true;
    }
  });
  return found;
}

// An integer field of a state.json, in [lo, hi]; an error names the file and the field otherwise.
int64_t state_int(const Json& st, const char* key, int64_t lo, int64_t hi, const std::string& path) {
  int64_t v = 0;
  try {
    v = st.at(key).as_int();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  QAT_CHECK(v >= lo && v <= hi, path, ": ", key, " is ", v, ", expected an integer in [", lo, ", ", hi, "]");
  return v;
}

// Where a resumed run stands (state.json), each counter within what training can reach: a negative
// step would give a negative learning rate, a negative streak would switch the divergence guard off.
struct RunState {
  int64_t step = 0, loader_epoch = 0, loader_index = 0, nonfinite_streak = 0, tokens_seen = 0;
  int64_t skipped_steps = -1;  // non-finite steps skipped so far (-1: a checkpoint older than the field)
  double train_seconds = 0;
};

RunState read_run_state(const Json& st, const std::string& path) {
  RunState s;
  s.step = state_int(st, "step", 0, int_range("--steps").hi, path);
  s.loader_epoch = state_int(st, "loader_epoch", 0, INT64_MAX, path);
  s.loader_index = state_int(st, "loader_index", 0, INT64_MAX, path);  // TokenLoader checks it against the data
  (void)state_int(st, "accum_pos", 0, 0, path);                        // checkpoints are taken between steps
  s.nonfinite_streak = state_int(st, "nonfinite_streak", 0, int_range("--max-nonfinite").hi - 1, path);
  if (st.contains("skipped_steps")) s.skipped_steps = state_int(st, "skipped_steps", 0, s.step, path);
  s.tokens_seen = state_int(st, "tokens_seen", 0, INT64_MAX, path);
  try {
    s.train_seconds = st.at("train_seconds").as_double();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  QAT_CHECK(std::isfinite(s.train_seconds) && s.train_seconds >= 0, path, ": train_seconds is ", s.train_seconds,
            ", expected a non-negative number");
  return s;
}

// AdamW's own step count (its bias correction) must be where state.json says the run is: every step
// taken except those skipped as non-finite (a checkpoint without the count: at most the step).
void check_optimizer_step(const AdamW& adam, const RunState& s, const std::string& dir) {
  const int64_t t = adam.steps_taken();
  if (s.skipped_steps >= 0)
    QAT_CHECK(t == s.step - s.skipped_steps, dir, "/optimizer.safetensors: step ", t, " does not match state.json's step ",
              s.step, " with ", s.skipped_steps, " skipped (expected ", s.step - s.skipped_steps, ")");
  else
    QAT_CHECK(t <= s.step, dir, "/optimizer.safetensors: step ", t, " is beyond state.json's step ", s.step);
}

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

// A resumed run must read the text it was trained on: state.json records the corpus's content hash
// (Corpus::content_hash, which also keys the token cache). Older checkpoints have none.
void check_corpus(const Json& st, const std::string& now, const Corpus& corpus, const std::string& path) {
  const Json* h = st.find("corpus_hash");
  if (!h) return;
  QAT_CHECK(h->is_string() && h->as_string() == now, "--resume: the corpus ", corpus.source,
            " has changed since the checkpoint: its content hash is ", now, ", ", path, " recorded ",
            h->is_string() ? h->as_string() : h->dump(), " (train on it with a new --out, or restore the old text)");
}

// The steps that trained an --init checkpoint: its state.json's step, or for a checkpoint without one
// (an exported model) its preset's default run.
int64_t start_steps(const LoadedCheckpoint& ck) {
  if (!ck.state.is_null() && ck.state.contains("step"))
    return state_int(ck.state, "step", 0, int_range("--steps").hi, ck.dir + "/state.json");
  int64_t steps = 0;
  double lr = 0;
  preset_defaults(ck.config.preset, &steps, &lr);
  return steps;
}

// --steps and --lr when not given: the preset's pre-training run, or with --init the fine-tuning recipe
// (kFineTuneLr for kFineTunePercent of the start's steps). Says which defaults applied.
void apply_step_lr_defaults(TrainOptions& opt, const LoadedCheckpoint* init,
                            const std::function<void(const std::string&)>& note) {
  int64_t steps = 0;
  double lr = 0;
  preset_defaults(opt.preset, &steps, &lr);
  std::string why_steps = "preset " + opt.preset, why_lr = why_steps;
  if (init) {
    const int64_t start = start_steps(*init);
    steps = std::max<int64_t>(1, start * kFineTunePercent / 100);
    lr = kFineTuneLr;
    why_steps = str("fine-tuning: ", kFineTunePercent, "% of the start's ", start, " steps");
    why_lr = "fine-tuning, as in docs/RESULTS.md";
  }
  std::string applied;
  if (opt.steps <= 0) {
    opt.steps = steps;
    applied = str("--steps ", steps, " (", why_steps, ")");
  }
  if (opt.lr <= 0) {
    opt.lr = lr;
    applied += str(applied.empty() ? "" : ", ", "--lr ", lr, " (", why_lr, ")");
  }
  if (!applied.empty()) note("defaults: " + applied);
}

// tools/plot of the tree this binary was built in (<repo>/bin/<exe> -> <repo>/tools/plot), so that the
// plot does not depend on the working directory; "" when /proc/self/exe cannot be read.
std::string plot_script() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  const std::string exe(buf, size_t(n));
  return exe.substr(0, exe.rfind('/') + 1) + "../tools/plot";
}

// Runs tools/plot on `dir` with an argument vector (no shell: the directory name is data, whatever it
// holds). Returns "" when loss.png was drawn, else one line saying why not.
std::string draw_plot(const std::string& dir) {
  const std::string script = plot_script();
  if (script.empty()) return "cannot find tools/plot (/proc/self/exe is unreadable)";
  if (::access(script.c_str(), X_OK) != 0) return str(script, ": ", std::strerror(errno));
  int fds[2];
  if (::pipe(fds) != 0) return str("pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);  // its stderr: the reason, when it fails
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::string a0 = script, a1 = dir;
  char* argv[] = {a0.data(), a1.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, script.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  std::string err;
  char chunk[512];
  for (ssize_t k; rc == 0 && ((k = ::read(fds[0], chunk, sizeof chunk)) > 0 || (k < 0 && errno == EINTR));)
    if (k > 0) err.append(chunk, size_t(k));
  ::close(fds[0]);
  if (rc != 0) return str("cannot start ", script, ": ", std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  const std::string first = err.substr(0, err.find('\n'));
  return first.empty() ? str(script, " failed") : first;
}
}  // namespace

void request_stop() { g_stop = true; }
void set_stop_after(int64_t steps) { g_stop_after = steps; }

const std::vector<IntRange>& int_option_ranges() {
  static const std::vector<IntRange> r = {
      {"--steps", "steps", 0, 100000000},         {"--batch", "batch", 1, 65536},
      {"--ctx", "ctx", 0, 1 << 20},                {"--accum", "accum", 1, 65536},
      {"--warmup", "warmup", -1, 100000000},       {"--seed", "seed", 0, INT64_MAX},
      {"--eval-every", "eval_every", 0, 100000000}, {"--eval-windows", "eval_windows", 1, 100000000},
      {"--save-every", "save_every", 0, 100000000}, {"--vocab", "vocab", 258, 65536},
      {"--max-nonfinite", "max_nonfinite", 1, 1000000}};
  return r;
}

const std::vector<RealRange>& real_option_ranges() {
  static const std::vector<RealRange> r = {
      {"--lr", "lr", 0.0, 10.0},                     {"--min-lr-ratio", "min_lr_ratio", 0.0, 1.0},
      {"--weight-decay", "weight_decay", 0.0, 10.0}, {"--clip", "clip", 0.0, 1e9},
      {"--qat-scale-lr", "qat_scale_lr", 0.0, 1000.0}, {"--qat-dampen", "qat_dampen", 0.0, 1e6},
      {"--qat-noise", "qat_noise", 0.0, 1.0},        {"--distill-weight", "distill_weight", 0.0, 1.0}};
  return r;
}

const IntRange& int_range(const std::string& flag) {
  for (const IntRange& r : int_option_ranges())
    if (flag == r.flag) return r;
  fail("int_range: no option ", flag);
}

const RealRange& real_range(const std::string& flag) {
  for (const RealRange& r : real_option_ranges())
    if (flag == r.flag) return r;
  fail("real_range: no option ", flag);
}

Json TrainOptions::to_json() const {
  Json j = Json::object();
  j.set("data", data); j.set("preset", preset); j.set("steps", steps); j.set("batch", batch); j.set("ctx", ctx);
  j.set("accum", accum); j.set("lr", lr); j.set("min_lr_ratio", min_lr_ratio); j.set("warmup", warmup);
  j.set("weight_decay", weight_decay); j.set("clip", clip); j.set("seed", seed); j.set("eval_every", eval_every);
  j.set("eval_windows", eval_windows); j.set("save_every", save_every); j.set("vocab", vocab);
  j.set("max_nonfinite", max_nonfinite); j.set("qat", qat); j.set("qat_keep", qat_keep);
  j.set("qat_scale_init", qat_scale_init); j.set("qat_freeze_scales", qat_freeze_scales);
  j.set("qat_identity_ste", qat_identity_ste); j.set("qat_scale_lr", qat_scale_lr); j.set("init", init);
  j.set("qat_dampen", qat_dampen); j.set("qat_noise", qat_noise);
  j.set("distill", distill); j.set("distill_weight", distill_weight);
  return j;
}

// Every numeric option in `j` within its flag's range, and the strings with a fixed set of values.
static void check_saved_options(const Json& j) {
  for (const IntRange& r : int_option_ranges())
    if (const Json* v = j.find(r.key)) {  // an option absent from an older checkpoint keeps its default
      const int64_t x = v->as_int();
      QAT_CHECK(x >= r.lo && x <= r.hi, "options.", r.key, " is ", x, ", outside the range of ", r.flag, " [", r.lo,
                ", ", r.hi, "]");
    }
  for (const RealRange& r : real_option_ranges())
    if (const Json* v = j.find(r.key)) {
      const double x = v->as_double();
      QAT_CHECK(std::isfinite(x) && x >= r.lo && x <= r.hi, "options.", r.key, " is ", x, ", outside the range of ",
                r.flag, " [", r.lo, ", ", r.hi, "]");
    }
  (void)ModelConfig::preset_named(j.at("preset").as_string());  // tiny, small or base
  const std::string init = j.at("qat_scale_init").as_string();
  QAT_CHECK(init == "minmax" || init == "mse", "options.qat_scale_init is '", init, "', expected minmax or mse");
}

TrainOptions TrainOptions::from_json(const Json& j) {
  check_saved_options(j);
  TrainOptions o;
  o.data = j.at("data").as_string(); o.preset = j.at("preset").as_string(); o.steps = j.at("steps").as_int();
  o.batch = j.at("batch").as_int(); o.ctx = j.at("ctx").as_int(); o.accum = j.at("accum").as_int();
  o.lr = j.at("lr").as_double(); o.min_lr_ratio = j.at("min_lr_ratio").as_double(); o.warmup = j.at("warmup").as_int();
  o.weight_decay = j.at("weight_decay").as_double(); o.clip = j.at("clip").as_double();
  o.seed = uint64_t(j.at("seed").as_int()); o.eval_every = j.at("eval_every").as_int();
  o.eval_windows = j.at("eval_windows").as_int(); o.save_every = j.at("save_every").as_int();
  o.vocab = j.at("vocab").as_int(); o.max_nonfinite = j.at("max_nonfinite").as_int();
  o.qat = j.at("qat").as_string(); o.qat_keep = j.at("qat_keep").as_string();
  o.qat_scale_init = j.at("qat_scale_init").as_string(); o.qat_freeze_scales = j.at("qat_freeze_scales").as_bool();
  o.qat_identity_ste = j.at("qat_identity_ste").as_bool(); o.init = j.at("init").as_string();
  if (const Json* v = j.find("qat_scale_lr")) o.qat_scale_lr = v->as_double();  // absent before it existed
  if (const Json* v = j.find("qat_dampen")) o.qat_dampen = v->as_double();
  if (const Json* v = j.find("qat_noise")) o.qat_noise = v->as_double();
  if (j.contains("distill")) {  // absent in checkpoints written before distillation existed
    o.distill = j.at("distill").as_string();
    o.distill_weight = j.at("distill_weight").as_double();
  }
  // cache_dir (in older checkpoints) is not read: it is where this machine writes, which a checkpoint
  // from elsewhere must not choose; the cache is keyed and validated, so any directory gives the same run.
  return o;
}

// Per-layer quantization error of a QAT model, in dB: every quantized weight against its fake-quant,
// and every quantized layer's input activations on the first validation window.
static Json qat_sqnr(Transformer& model, const std::vector<int32_t>& val, int64_t ctx) {
  NoGrad ng;
  Json w = Json::object(), a = Json::object();
  model.for_each_quantized([&](const std::string& name, int wi, int si, const LayerQuant& f) {
    Tensor wh = fake_quant_weight(model.params[wi], model.params[si], f, false);
    double db = sqnr_db(model.params[wi].f32(), wh.f32(), wh.numel());
    w.set(name, std::isfinite(db) ? Json(std::round(db * 100) / 100) : Json());
  });
  std::vector<std::pair<std::string, double>> acts;
  model.act_sqnr = &acts;
  int64_t T = std::min<int64_t>(ctx, int64_t(val.size()) - 1);
  model.forward(Tensor::from_s32({1, T}, std::vector<int32_t>(val.begin(), val.begin() + T)));
  model.act_sqnr = nullptr;
  for (auto& [k, db] : acts) a.set(k, std::isfinite(db) ? Json(std::round(db * 100) / 100) : Json());
  Json j = Json::object();
  j.set("weights", w);
  j.set("activations", a);
  return j;
}

TrainOptions saved_options(const std::string& dir) {
  recover_directory(dir);
  std::string path = dir + "/state.json";
  QAT_CHECK(file_exists(path), "--resume: ", path, " does not exist (no checkpoint to resume)");
  try {
    return TrainOptions::from_json(Json::parse(read_file(path, 1 << 24)).at("options"));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

TrainSummary train(const TrainOptions& opt_in) {
  TrainOptions opt = opt_in;
  set_num_threads(int(opt.threads));
  const bool tty = !opt.quiet && ::isatty(STDERR_FILENO);
  auto note = [&](const std::string& s) { if (!opt.quiet) std::fprintf(stderr, "%s\n", s.c_str()); };
  // ---- the output: a foreign --out is refused, and it stays locked against a second run until we return ----
  const FileLock out_lock = claim_output_dir(opt.out);

  // ---- checkpoint to resume or initialise from ----
  std::optional<LoadedCheckpoint> resume_ck, init_ck;
  if (opt.resume) {
    resume_ck = load_checkpoint(opt.out);
    QAT_CHECK(resume_ck->optimizer && !resume_ck->state.is_null(), "--resume: ", opt.out,
              " has no optimizer.safetensors / state.json (not a training checkpoint)");
  } else if (!opt.init.empty()) {
    init_ck = load_checkpoint(opt.init);
  }

  // ---- usage errors first, before the data is read and tokenized (seconds on a large corpus) ----
  const ModelConfig base_cfg = resume_ck ? resume_ck->config : init_ck ? init_ck->config : ModelConfig::preset_named(opt.preset);
  if (!resume_ck && !opt.qat.empty() && opt.qat != "f32") (void)QatConfig::make(opt.qat, opt.qat_keep, base_cfg.n_layers, base_cfg.tied);
  if (opt.qat_scale_init != "minmax" && opt.qat_scale_init != "mse")
    throw UsageError(str("--qat-scale-init: expected minmax or mse, got '", opt.qat_scale_init, "'"));
  // A trace written at the end of the run: an unwritable path is found now, not after the run.
  std::string trace_problem;
  QAT_CHECK(opt.profile_json.empty() || prof::trace_path_writable(opt.profile_json, &trace_problem),
            "--profile-json: cannot write ", opt.profile_json, ": ", trace_problem);
  std::optional<RunState> resumed;
  if (resume_ck) resumed = read_run_state(resume_ck->state, opt.out + "/state.json");

  // ---- data and tokenizer ----
  double t_setup = now_s();
  Corpus corpus = load_corpus(opt.data);
  const std::string corpus_hash = hex64(corpus.content_hash());
  if (resume_ck) check_corpus(resume_ck->state, corpus_hash, corpus, opt.out + "/state.json");
  Tokenizer tok = resume_ck ? Tokenizer::load(resume_ck->tokenizer_path)
                  : init_ck ? Tokenizer::load(init_ck->tokenizer_path)
                            : Tokenizer::train(corpus.train, int(opt.vocab));
  TokenizedData data = load_or_tokenize(corpus, tok, opt.cache_dir);
  std::vector<int32_t> token_bytes(size_t(tok.vocab_size()));
  for (int32_t id = 0; id < tok.vocab_size(); id++)
    token_bytes[size_t(id)] = id == tok.eot_id() ? 0 : int32_t(tok.token_bytes(id).size());
  note(str("data: ", corpus.source, ": ", corpus.train.size(), " train / ", corpus.val.size(), " val documents, ",
           data.train.tokens.size(), " / ", data.val.tokens.size(), " tokens (vocab ", tok.vocab_size(), ", ",
           fmt_duration(now_s() - t_setup), ")"));

  // ---- model ----
  ModelConfig cfg = base_cfg;
  if (!resume_ck && !init_ck) {
    cfg.vocab = tok.vocab_size();
    if (opt.ctx > 0) cfg.context = opt.ctx;
  }
  QAT_CHECK(cfg.vocab == tok.vocab_size(), "the model's vocab_size ", cfg.vocab, " does not match the tokenizer's ",
            tok.vocab_size());
  if (opt.ctx <= 0) opt.ctx = cfg.context;
  QAT_CHECK(opt.ctx <= cfg.context, "--ctx ", opt.ctx, " exceeds the model context ", cfg.context);
  // Both splits must hold one window (ctx + 1 tokens): checked now, not at the first evaluation.
  for (const auto& [split, tokens] : {std::pair{"training", &data.train.tokens}, std::pair{"validation", &data.val.tokens}})
    QAT_CHECK(int64_t(tokens->size()) > opt.ctx, "data: ", corpus.source, ": the ", split, " split has ", tokens->size(),
              " tokens, fewer than one context window of ", opt.ctx + 1, " (use a larger corpus or a smaller --ctx)");
  apply_step_lr_defaults(opt, init_ck ? &*init_ck : nullptr, note);
  if (opt.warmup < 0) opt.warmup = std::max<int64_t>(1, opt.steps / 20);
  if (opt.eval_every <= 0) opt.eval_every = std::max<int64_t>(1, opt.steps / 10);
  if (opt.save_every <= 0) opt.save_every = opt.eval_every;

  // QAT: from the options (a fresh run or --init), or from the checkpoint being resumed.
  std::optional<QatConfig> qcfg;
  if (resume_ck && !resume_ck->quantization.is_null()) {
    qcfg = QatConfig::from_json(resume_ck->quantization, cfg.n_layers, cfg.tied);
  } else if (!resume_ck && !opt.qat.empty() && opt.qat != "f32") {
    qcfg = QatConfig::make(opt.qat, opt.qat_keep, cfg.n_layers, cfg.tied);
    qcfg->scale_init = opt.qat_scale_init;
    qcfg->freeze_scales = opt.qat_freeze_scales;
    qcfg->identity_ste = opt.qat_identity_ste;
  }
  Transformer model(cfg, qcfg ? &*qcfg : nullptr);
  model.init_weights(opt.seed);
  if (resume_ck) load_params(model.params, resume_ck->weights, opt.out + "/model.safetensors");
  bool init_has_scales = false;
  if (init_ck) {  // an FP32 checkpoint has no scales: they are initialised from its weights below
    load_params(model.params, init_ck->weights, opt.init + "/model.safetensors", {"_scale", ".input_scale"});
    for (int i = 0; i < model.params.size(); i++)
      init_has_scales = init_has_scales || (model.is_scale_param(i) && init_ck->weights.find(model.params.info(i).name));
  }
  if (qcfg && !resume_ck && !init_has_scales) model.init_qat_scales();
  if (qcfg)
    for (int i = 0; i < model.params.size(); i++)
      if (model.is_scale_param(i)) model.params.set_lr_mult(i, float(opt.qat_scale_lr));
  // Knowledge distillation: the teacher (FP32 or QAT checkpoint, same tokenizer) runs its forward on
  // every micro-batch without a graph; the loss becomes w * KL(teacher || model) + (1 - w) * CE.
  std::unique_ptr<Transformer> teacher;
  if (!opt.distill.empty()) {
    ModelSource t = open_model(opt.distill);
    QAT_CHECK(!t.is_gguf(), "--distill: ", opt.distill, " is a GGUF file; the teacher must be a checkpoint directory");
    QAT_CHECK(t.tokenizer->fingerprint() == tok.fingerprint(), "--distill: the teacher ", opt.distill,
              " has another tokenizer than the model being trained");
    QAT_CHECK(t.config().context >= opt.ctx, "--distill: the teacher's context ", t.config().context,
              " is shorter than --ctx ", opt.ctx);
    teacher = t.transformer();
    note(str("distilling from ", t.describe(), " (loss = ", opt.distill_weight, " x KL + ", 1 - opt.distill_weight, " x CE)"));
  }
  AdamW adam(model.params, AdamWConfig{float(opt.lr), 0.9f, 0.95f, 1e-8f, float(opt.weight_decay)});
  TokenLoader loader(&data.train.tokens, opt.batch, opt.ctx, opt.seed);

  int64_t step = 0, nonfinite_streak = 0, skipped_steps = 0, tokens_seen = 0;
  double train_seconds = 0;
  if (resume_ck) {
    load_optimizer(adam, model.params, *resume_ck->optimizer);
    check_optimizer_step(adam, *resumed, opt.out);
    step = resumed->step;
    loader.set_position(resumed->loader_epoch, resumed->loader_index);
    nonfinite_streak = resumed->nonfinite_streak;
    skipped_steps = resumed->skipped_steps >= 0 ? resumed->skipped_steps : step - adam.steps_taken();
    tokens_seen = resumed->tokens_seen;
    train_seconds = resumed->train_seconds;
    truncate_metrics(opt.out + "/metrics.jsonl", step);
    note(str("resuming ", opt.out, " at step ", step, "/", opt.steps));
  }
  make_dirs(opt.out);
  const std::string metrics = opt.out + "/metrics.jsonl";
  if (!resume_ck && file_exists(metrics)) write_file_atomic(metrics, "");  // a fresh run starts a fresh log
  note(str("model: ", cfg.preset.empty() ? "custom" : cfg.preset, ", ", parameter_count(cfg), " parameters, ",
           cfg.n_layers, " layers, d_model ", cfg.d_model, ", ctx ", opt.ctx, "; batch ", opt.batch, " x ", opt.accum,
           ", lr ", opt.lr, ", ", num_threads(), " threads"));

  auto save = [&]() {
    Json st = Json::object();
    st.set("step", step);
    st.set("loader_epoch", loader.epoch());
    st.set("loader_index", loader.index());
    st.set("accum_pos", 0);
    st.set("nonfinite_streak", nonfinite_streak);
    st.set("skipped_steps", skipped_steps);
    st.set("corpus_hash", corpus_hash);
    st.set("tokens_seen", tokens_seen);
    st.set("train_seconds", train_seconds);
    st.set("options", opt.to_json());
    save_checkpoint(opt.out, {&cfg, qcfg ? qcfg->to_json() : Json(), &model.params, &adam, tok.to_json(), st});
  };
  auto run_eval = [&](int64_t windows) {
    EvalResult r = evaluate(model, data.val.tokens, token_bytes, opt.batch, opt.ctx, windows);
    Json m = Json::object();
    m.set("step", step); m.set("val_loss", r.loss); m.set("bpb", r.bpb); m.set("val_tokens", r.tokens);
    // Periodic evaluations see the first `windows` windows, the final one the whole split: the plot
    // must not join them into one curve (tools/plot).
    m.set("val_split", windows > 0 ? "sample" : "all");
    if (windows > 0) m.set("val_windows", windows);
    if (qcfg) m.set("sqnr_db", qat_sqnr(model, data.val.tokens, opt.ctx));
    append_line(metrics, m.dump());
    return r;
  };

  // ---- the loop ----
  const bool profiling = opt.profile || !opt.profile_json.empty();
  if (profiling) {
    prof::enable(true, !opt.profile_json.empty());
  }
  double profiled_wall = 0;
  auto prev_handler = std::signal(SIGINT, on_sigint);
  g_stop = false;
  TrainSummary sum;
  double t0 = now_s(), last_print = 0;
  int64_t first_step = step, ran = 0;
  const int64_t tokens_per_step = opt.batch * opt.ctx * opt.accum;
  try {
    while (step < opt.steps) {
      // Busy time over the steps, as the table's wall (outside the step's clock: the region that reads
      // the threads' CPU clocks is no op of the step).
      if (profiling) prof::thread_times_begin();
      double ts = now_s();
      prof::g_on = profiling;
      {
        QAT_PROF("zero_grad", other);
        model.params.zero_grad();
      }
      double loss_sum = 0, kl_sum = 0;
      if (qcfg && opt.qat_noise < 1.0) {  // Quant-Noise: the quantized fraction rises linearly to 1 at mid-run
        const double ramp = std::min(1.0, double(step) / (0.5 * double(opt.steps)));
        model.qat_noise = float(opt.qat_noise + (1.0 - opt.qat_noise) * ramp);
        model.qat_noise_key = rng_bits(opt.seed, 0x716e6f697365ull /* "qnoise" */, uint64_t(step));
      }
      for (int64_t micro = 0; micro < opt.accum; micro++) {
        Batch b = [&] { QAT_PROF("data", other); return loader.next(); }();
        Tensor loss;
        if (teacher) {
          const int64_t BT = b.ids.numel(), V = cfg.vocab;
          Tensor logits = model.forward(b.ids).reshape({BT, V}), targets = b.targets.reshape({BT});
          Tensor teacher_logits;
          {
            NoGrad ng;
            teacher_logits = teacher->forward(b.ids).reshape({BT, V});
          }
          Tensor ce = cross_entropy(logits, targets), kl = distill_kl(logits, teacher_logits, targets);
          loss_sum += ce.item();  // the data loss is what the log and the progress line show
          kl_sum += kl.item();
          float w = float(opt.distill_weight);
          loss = w == 1.0f ? kl : add(scale(kl, w), scale(ce, 1.0f - w));
        } else {
          loss = model.loss(b.ids, b.targets);
          loss_sum += loss.item();
        }
        (opt.accum > 1 ? scale(loss, 1.0f / float(opt.accum)) : loss).backward();
        QAT_PROF("free graph", other);
        loss = Tensor();
      }
      model.qat_noise = 1.0f;  // evaluation and serving always see every weight quantized
      float loss_v = float(loss_sum / double(opt.accum)), kl_v = float(kl_sum / double(opt.accum));
      if (teacher && !std::isfinite(kl_v)) loss_v = kl_v;  // the guard below sees a non-finite objective
      if (qcfg && qcfg->freeze_scales) model.zero_qat_scale_grads();
      if (inject_nan_at(step)) model.params.flat_grad().f32()[0] = NAN;
      float gnorm;
      {  // its own block: a scope open to the end of the loop body would also time evaluation and checkpoints
        QAT_PROF("clip", other, 2.0 * double(model.params.total()), 4.0 * double(model.params.total()));
        gnorm = clip_grad_norm(model.params, float(opt.clip));
      }
      float lr = lr_schedule(step, opt.steps, opt.warmup, float(opt.lr), float(opt.lr * opt.min_lr_ratio));
      bool finite = std::isfinite(loss_v) && std::isfinite(gnorm);
      if (finite) {
        QAT_PROF("optimizer", other, 12.0 * double(model.params.total()), 20.0 * double(model.params.total()));
        adam.step(lr);
        if (qcfg) model.clamp_qat_scales();
        if (qcfg && opt.qat_dampen > 0) {
          QAT_PROF("dampen", other);
          model.dampen_qat_weights(std::min(1.0f, lr * float(opt.qat_dampen)));
        }
        nonfinite_streak = 0;
      } else {
        nonfinite_streak++;
        skipped_steps++;
        std::fprintf(stderr, "%swarning: step %lld: non-finite %s; step skipped (%lld in a row)\n", tty ? "\n" : "",
                     (long long)step, std::isfinite(loss_v) ? "gradient norm" : "loss", (long long)nonfinite_streak);
        QAT_CHECK(nonfinite_streak < opt.max_nonfinite, "training diverged: ", nonfinite_streak,
                  " non-finite steps in a row at step ", step, "; the last checkpoint in ", opt.out,
                  " is intact (try a lower --lr)");
      }
      step++;
      ran++;
      tokens_seen += tokens_per_step;
      double dt = now_s() - ts;
      profiled_wall += dt;
      prof::g_on = false;  // evaluation, metrics and checkpoints are not part of the step
      if (profiling) prof::thread_times_end();
      train_seconds += dt;
      sum.losses.push_back(loss_v);
      Json m = Json::object();
      m.set("step", step); m.set("loss", double(loss_v)); m.set("lr", double(lr)); m.set("grad_norm", double(gnorm));
      if (teacher) m.set("distill_kl", double(kl_v));
      m.set("tokens_per_s", double(tokens_per_step) / dt); m.set("time_s", train_seconds);
      append_line(metrics, m.dump());

      double elapsed = now_s() - t0, rate = double(ran * tokens_per_step) / elapsed;
      double eta = double(opt.steps - step) * elapsed / double(ran);
      if (tty && (now_s() - last_print > 0.25 || step == opt.steps)) {
        std::fprintf(stderr, "\rstep %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s   ", (long long)step,
                     (long long)opt.steps, loss_v, lr, rate, fmt_duration(eta).c_str());
        last_print = now_s();
      } else if (!tty && !opt.quiet && (step % std::max<int64_t>(1, opt.steps / 20) == 0)) {
        std::fprintf(stderr, "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s\n", (long long)step,
                     (long long)opt.steps, loss_v, lr, rate, fmt_duration(eta).c_str());
      }
      bool last = step == opt.steps;
      if (step % opt.eval_every == 0 && !last) {
        EvalResult r = run_eval(opt.eval_windows);
        if (!opt.quiet) std::fprintf(stderr, "%sstep %lld: val loss %.4f, bpb %.4f\n", tty ? "\n" : "", (long long)step, r.loss, r.bpb);
      }
      if ((step % opt.save_every == 0 && !last) || g_stop || (g_stop_after >= 0 && ran >= g_stop_after)) {
        save();
        if (g_stop || (g_stop_after >= 0 && ran >= g_stop_after)) {
          sum.interrupted = true;
          if (!opt.quiet) std::fprintf(stderr, "%sstopped at step %lld; checkpoint saved in %s (continue with --resume)\n",
                                       tty ? "\n" : "", (long long)step, opt.out.c_str());
          break;
        }
      }
    }
  } catch (...) {
    std::signal(SIGINT, prev_handler);
    throw;
  }
  std::signal(SIGINT, prev_handler);
  if (tty) std::fprintf(stderr, "\n");
  if (profiling) {
    MachinePeaks mp = measure_peaks(num_threads(), 0.6);
    prof::Peaks pk{mp.f32_gflops, mp.int8_gops, mp.dram_gbs};
    if (opt.profile) {
      std::fprintf(stderr, "profile of %lld steps (%d threads; times exclusive of nested ops):\n%s", (long long)ran,
                   num_threads(), prof::table(pk, ran, profiled_wall).c_str());
      std::fprintf(stderr, "%s\n", prof::thread_busy_line("steps").c_str());
    }
  }
  sum.steps = step;
  sum.seconds = now_s() - t0;
  sum.tokens_per_s = ran ? double(ran * tokens_per_step) / sum.seconds : 0;
  double recorded_loss = 0, recorded_bpb = 0;
  if (!sum.interrupted && ran == 0 && recorded_eval(metrics, step, &recorded_loss, &recorded_bpb)) {
    sum.final_val_loss = recorded_loss;  // resumed after the final checkpoint: nothing left to do
    sum.final_bpb = recorded_bpb;
    save();  // the same checkpoint again: clears what a kill inside the previous save left behind
    if (!opt.quiet)
      std::printf("%s was already complete at step %lld: val loss %.4f, bpb %.4f (its final evaluation)\n",
                  opt.out.c_str(), (long long)step, recorded_loss, recorded_bpb);
  } else if (!sum.interrupted) {
    EvalResult r = run_eval(0);
    sum.final_val_loss = r.loss;
    sum.final_bpb = r.bpb;
    save();
    if (opt.plot) {
      const std::string why = draw_plot(opt.out);
      if (!why.empty()) note("note: loss.png not drawn: " + why);
    }
    if (!opt.quiet)
      std::printf("trained %lld steps (%lld this run) in %s: %.0f tok/s; val loss %.4f, bpb %.4f, ppl %.2f over %lld tokens; checkpoint %s\n",
                  (long long)step, (long long)(step - first_step), fmt_duration(sum.seconds).c_str(), sum.tokens_per_s,
                  r.loss, r.bpb, r.ppl, (long long)r.tokens, opt.out.c_str());
  }
  if (profiling) {  // after the final checkpoint: a failure here (a full disk) costs only the trace
    if (!opt.profile_json.empty()) prof::write_trace(opt.profile_json);
    prof::enable(false);
  }
  g_stop_after = -1;
  return sum;
}

}  // namespace qat
