// The training loop (see trainer.h). One step = `accum` micro-batches of forward + backward, each into
// the zeroed flat gradient buffer and summed in micro-batch index order (GradSum, models/train/dist.h:
// on one process or over MPI ranks, the same adds), clip, AdamW. Everything a resume needs is in the checkpoint's state.json and
// optimizer.safetensors, and every random choice is keyed on (seed, step/epoch), so a resumed run is
// bit-identical to an uninterrupted one.
#include "models/train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>
#include <unordered_map>
#include <memory>
#include <optional>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "data/bpe_sample.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "models/model_size.h"
#include "models/import.h"
#include "src/io/gguf.h"
#include "models/model_source.h"
#include "models/train/dist.h"
#include "models/train/run_state.h"
#include "models/transformer.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/optim/adamw.h"
#include "src/quant/fake_quant.h"
#include "models/checkpoint.h"
#include "models/train/evaluate.h"
#include "models/train/memory.h"
#include "src/util/profile.h"
#include "kernels/peaks.h"

namespace qat {

namespace {
std::atomic<int> g_stop{0};  // the signal that asked to stop (SIGINT, SIGTERM, SIGUSR1); 0: none
int64_t g_stop_after = -1;

void on_stop_signal(int sig) { g_stop = sig; }

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

}  // namespace

void request_stop() { g_stop = SIGINT; }
void set_stop_after(int64_t steps) { g_stop_after = steps; }

// Per-layer quantization error of a QAT model, in dB: every quantized weight against its fake-quant,
// and every quantized layer's input activations on the first validation window.
static Json qat_sqnr(Transformer& model, std::span<const int32_t> val, int64_t ctx) {
  NoGrad ng;
  Json w = Json::object(), a = Json::object();
  model.for_each_quantized([&](const std::string& name, int wi, int si, const LayerQuant& f) {
    Tensor wh = fake_quant_weight(model.params[wi], model.params[si], f, false);
    double db = sqnr_db(model.params[wi].f32(), wh.f32(), wh.numel());
    w.set(name, std::isfinite(db) ? Json(std::round(db * 100) / 100) : Json());
  });
  std::vector<std::pair<std::string, double>> acts;
  QatStep telemetry;
  telemetry.act_sqnr = &acts;
  int64_t T = std::min<int64_t>(ctx, int64_t(val.size()) - 1);
  model.forward(Tensor::from_s32({1, T}, std::vector<int32_t>(val.begin(), val.begin() + T)), &telemetry);
  for (auto& [k, db] : acts) a.set(k, std::isfinite(db) ? Json(std::round(db * 100) / 100) : Json());
  Json j = Json::object();
  j.set("weights", w);
  j.set("activations", a);
  return j;
}

namespace {

// One call of train(): what the setup phases build, what each step changes and what a checkpoint saves.
// Members are filled in phase order; the model, optimizer and loader live on the heap so that the
// references between them (AdamW -> the model's parameters) stay valid.
struct Run {
  TrainOptions opt;                               // opt.accum: the global batch's micro-batches (all ranks)
  Comm* comm = nullptr;                           // the transport (LocalComm: one process)
  bool lead = true;                               // rank 0: the one that writes files and reports
  int64_t rounds = 1;                             // this rank's micro-batches per step: accum / ranks
  std::unique_ptr<GradSum> grads;                 // the fixed-order sum (accum > 1)
  std::unique_ptr<BackwardObserver> feed;         // N > 1: hands grads each bucket the backward finishes
  bool tty = false;                               // progress redrawn in place on a terminal
  std::optional<LoadedCheckpoint> resume_ck, init_ck;
  std::optional<RunState> resumed;                // state.json of the run being resumed
  std::optional<Corpus> corpus;
  std::string corpus_hash;                        // hex of Corpus::content_hash, saved in state.json
  std::shared_ptr<const Vocab> tok;               // ours (trained here or the start's) or an imported model's
  TokenizedData data;
  std::vector<int32_t> token_bytes;               // (V) bytes of each token (control tokens: 0), for bits per byte
  ModelConfig cfg;
  std::optional<QatConfig> qcfg;                  // QAT scheme (none: FP32 training)
  std::unique_ptr<Transformer> model, teacher;
  std::unique_ptr<AdamW> adam;
  std::unique_ptr<TokenLoader> loader;
  MemoryEstimate memory;                          // the peak estimated before the model was allocated
  std::string metrics;                            // <out>/metrics.jsonl
  int64_t step = 0, nonfinite_streak = 0, skipped_steps = 0, tokens_seen = 0;
  double train_seconds = 0;                       // wall time of every step of the run, resumes included
  double backward_s = 0;                          // seconds in backward passes so far (logged under MPI)
  double exposed_s = 0;                           // seconds waited on the gradient sum after backwards (MPI)

  void note(const std::string& s) const {
    if (!opt.quiet && lead) std::fprintf(stderr, "%s\n", s.c_str());
  }
  int64_t tokens_per_step() const { return opt.batch * opt.ctx * opt.accum; }
};

// The gradient buckets (GradSum): the flat buffer cut at parameter boundaries into pieces of at least
// `mb` MiB (0: one bucket). Returns their ascending end offsets.
std::vector<int64_t> bucket_ends(const ParamStore& params, double mb) {
  const int64_t cap = int64_t(mb * 1048576.0 / sizeof(float));
  std::vector<int64_t> ends;
  int64_t begin = 0;
  for (int i = 1; i < params.size(); i++) {  // a cut may fall before parameter i
    const int64_t at = params.info(i).offset;
    if (cap > 0 && at - begin >= cap) {
      ends.push_back(at);
      begin = at;
    }
  }
  ends.push_back(params.total());
  return ends;
}

// Watches the backward for GradSum: a bucket is ready when every parameter in it is final (the walk
// passed its leaf), and between backward ops MPI gets a moment to move and fold what is in flight.
class BucketFeed : public BackwardObserver {
 public:
  BucketFeed(ParamStore& params, GradSum& sum) : sum_(sum), need_(size_t(sum.buckets()), 0) {
    for (int i = 0, b = 0; i < params.size(); i++) {
      while (params.info(i).offset >= sum.bucket_end(b)) b++;
      leaf_.emplace(params[i].impl.get(), b);
      need_[size_t(b)]++;
    }
  }
  void start() { left_ = need_; }  // a new backward pass
  void leaf_done(const Tensor& leaf) override {
    auto it = leaf_.find(leaf.impl.get());
    if (it != leaf_.end() && --left_[size_t(it->second)] == 0) sum_.bucket_ready(it->second);
  }
  void node_done() override { sum_.progress(); }

 private:
  GradSum& sum_;
  std::unordered_map<const TensorImpl*, int> leaf_;  // a parameter's tensor -> its bucket
  std::vector<int64_t> need_, left_;                 // (buckets) parameters in each / not yet final
};

// ---- setup ----

// The checkpoint to resume or start from, and every usage error that needs no data (tokenizing a large
// corpus takes seconds: a typo must not wait for it).
void open_run(Run& r) {
  TrainOptions& opt = r.opt;
  if (opt.resume) {
    r.resume_ck = load_checkpoint(opt.out);
    QAT_CHECK(r.resume_ck->optimizer && !r.resume_ck->state.is_null(), "--resume: ", opt.out,
              " has no optimizer.safetensors / state.json (not a training checkpoint)");
  } else if (!opt.init.empty()) {
    r.init_ck = load_start_model(opt.init);  // a checkpoint (validated whole) or an imported model; --init
    r.init_ck->optimizer.reset();             // uses only the weights: the moments (2x their size) go first
  }
  // A checkpoint's shape is its own; a new run's comes from the preset, --config and the shape flags.
  QAT_CHECK(opt.vocab_from.empty() || (!r.resume_ck && !r.init_ck), "--vocab-from: a new run's tokenizer; with --init or "
            "--resume the model's own tokenizer applies");
  if (r.resume_ck) check_shape_agrees(r.resume_ck->config, opt.shape, opt.out);
  if (r.init_ck) check_shape_agrees(r.init_ck->config, opt.shape, opt.init);
  if (r.resume_ck || r.init_ck) {
    r.cfg = r.resume_ck ? r.resume_ck->config : r.init_ck->config;
  } else {
    r.cfg = new_run_shape(opt.preset, opt.vocab, opt.ctx, opt.shape, [&](const std::string& s) { r.note(s); });
    opt.vocab = r.cfg.vocab;  // the BPE size the tokenizer is trained to (--config's vocab_size)
  }
  std::optional<QatConfig> qat;
  if (!r.resume_ck && !opt.qat.empty() && opt.qat != "f32") {
    qat = QatConfig::make(opt.qat, opt.qat_keep, r.cfg.n_layers, r.cfg.tied);
    qat->require_trainable("--qat");
  }
  // A shape that cannot fit is refused now, before a large corpus is read and tokenized (the vocabulary
  // and context are the ones asked for; build_model checks again with the data's figures).
  if (!r.resume_ck)
    check_memory_fits(estimate_training_memory(r.cfg, qat ? &*qat : nullptr, opt.batch, opt.ctx > 0 ? opt.ctx : r.cfg.context,
                                               num_threads(), !opt.distill.empty(), current_rss_bytes()));
  (void)parse_doc_mode(opt.documents);
  if (opt.qat_scale_init != "minmax" && opt.qat_scale_init != "mse")
    throw UsageError(str("--qat-scale-init: expected minmax or mse, got '", opt.qat_scale_init, "'"));
  // A trace written at the end of the run: an unwritable path is found now, not after the run.
  std::string trace_problem;
  QAT_CHECK(opt.profile_json.empty() || prof::trace_path_writable(opt.profile_json, &trace_problem),
            "--profile-json: cannot write ", opt.profile_json, ": ", trace_problem);
  if (r.resume_ck) r.resumed = read_run_state(r.resume_ck->state, opt.out + "/state.json");
}

// Corpus, tokenizer (the checkpoint's, or trained on the corpus) and token cache.
void load_data(Run& r) {
  const double t0 = now_s();
  r.corpus = load_corpus(r.opt.data, parse_doc_mode(r.opt.documents));
  r.opt.documents = doc_mode_name(r.corpus->mode);  // saved as resolved: eval derives the same split
  if (r.lead)
    for (const std::string& p : r.corpus->files.problems) std::fprintf(stderr, "warning: %s\n", p.c_str());
  r.corpus_hash = hex64(r.corpus->content_hash());
  if (r.resume_ck) check_corpus(r.resume_ck->state, r.corpus_hash, *r.corpus, r.opt.out + "/state.json");
  if (r.resume_ck || r.init_ck) {
    r.tok = checkpoint_vocab(r.resume_ck ? *r.resume_ck : *r.init_ck);
  } else if (!r.opt.vocab_from.empty()) {  // a pretrained model's vocabulary, no BPE training
    r.tok = vocab_from_gguf(read_gguf(r.opt.vocab_from));
    r.note(str("tokenizer: ", r.tok->describe(), ", from ", r.opt.vocab_from));
  } else {  // a large corpus trains BPE on a deterministic sample (data/bpe_sample.h)
    const BpeSample sample = sample_for_bpe(r.corpus->train, kDefaultBpeSampleBytes);
    if (sample.sampled) r.note(sample.note());
    r.tok = std::make_shared<Tokenizer>(Tokenizer::train(sample.docs, int(r.opt.vocab)));
  }
  r.data = load_or_tokenize(*r.corpus, *r.tok, r.opt.cache_dir);
  r.token_bytes.assign(size_t(r.tok->vocab_size()), 0);
  for (int32_t id = 0; id < r.tok->vocab_size(); id++)
    r.token_bytes[size_t(id)] = int32_t(r.tok->text_bytes(id));
  r.note(r.corpus->describe());
  r.note(str("data: ", r.data.train.tokens.size(), " train / ", r.data.val.tokens.size(), " val tokens (vocab ",
             r.tok->vocab_size(), ", ", fmt_duration(now_s() - t0), ")"));
}

// The model's vocabulary and context, and the schedule's defaults, now that the data is known.
void fix_shapes(Run& r) {
  TrainOptions& opt = r.opt;
  if (!r.resume_ck && !r.init_ck) {
    r.cfg.vocab = r.tok->vocab_size();
    if (opt.ctx > 0) r.cfg.context = opt.ctx;
  }
  QAT_CHECK(r.cfg.vocab == r.tok->vocab_size(), "the model's vocab_size ", r.cfg.vocab,
            " does not match the tokenizer's ", r.tok->vocab_size());
  if (opt.ctx <= 0) opt.ctx = r.cfg.context;
  QAT_CHECK(opt.ctx <= r.cfg.context, "--ctx ", opt.ctx, " exceeds the model context ", r.cfg.context);
  // Both splits must hold one window (ctx + 1 tokens): checked now, not at the first evaluation.
  const size_t n_train = r.data.train.tokens.size(), n_val = r.data.val.tokens.size();
  if (r.corpus->stream())
    QAT_CHECK(int64_t(std::min(n_train, n_val)) > opt.ctx, "data: ", r.corpus->source, ": one stream of ",
              n_train + n_val, " tokens: the train part has ", n_train, " and the val part (the last 10%) ", n_val,
              "; each needs one context window of ", opt.ctx + 1, " (use a longer text or a smaller --ctx)");
  for (const auto& [split, n] : {std::pair{"training", n_train}, std::pair{"validation", n_val}})
    QAT_CHECK(int64_t(n) > opt.ctx, "data: ", r.corpus->source, ": the ", split, " split has ", n,
              " tokens, fewer than one context window of ", opt.ctx + 1, " (use a larger corpus or a smaller --ctx)");
  apply_step_lr_defaults(opt, r.init_ck ? &*r.init_ck : nullptr, [&](const std::string& s) { r.note(s); });
  if (opt.warmup < 0) opt.warmup = std::max<int64_t>(1, opt.steps / 20);
  if (opt.eval_every <= 0) opt.eval_every = std::max<int64_t>(1, opt.steps / 10);
  if (opt.save_every <= 0) opt.save_every = opt.eval_every;
}

// The model: QAT layers from the options (a fresh run or --init) or from the checkpoint being resumed,
// weights from that checkpoint, QAT scales initialised from the weights where the start has none.
void build_model(Run& r) {
  const TrainOptions& opt = r.opt;
  if (r.resume_ck && !r.resume_ck->quantization.is_null()) {
    r.qcfg = QatConfig::from_json(r.resume_ck->quantization, r.cfg.n_layers, r.cfg.tied);
  } else if (!r.resume_ck && !opt.qat.empty() && opt.qat != "f32") {
    r.qcfg = QatConfig::make(opt.qat, opt.qat_keep, r.cfg.n_layers, r.cfg.tied);
    r.qcfg->scale_init = opt.qat_scale_init;
    r.qcfg->freeze_scales = opt.qat_freeze_scales;
    r.qcfg->identity_ste = opt.qat_identity_ste;
  }
  // The peak, before anything large is allocated: a run that cannot fit stops here with the figure.
  r.memory = estimate_training_memory(r.cfg, r.qcfg ? &*r.qcfg : nullptr, opt.batch, opt.ctx, num_threads(),
                                      !opt.distill.empty(), current_rss_bytes());
  // GradSum's buffers (accum > 1): the running sum, P floats on one process; with N ranks its slice (P/N)
  // and a round's received pieces (P).
  const double N = double(r.comm->size());
  if (opt.accum > 1) r.memory.gradients *= N > 1 ? 2.0 + 1.0 / N : 2.0;
  check_memory_fits(r.memory);
  r.note(str("memory: estimated peak ", human_bytes(r.memory.total()), " (", r.memory.breakdown(), ")"));
  r.model = std::make_unique<Transformer>(r.cfg, r.qcfg ? &*r.qcfg : nullptr);
  Transformer& model = *r.model;
  model.init_weights(opt.seed);
  if (r.resume_ck) load_params(model.params, r.resume_ck->weights, opt.out + "/model.safetensors");
  bool init_has_scales = false;
  if (r.init_ck) {  // an FP32 checkpoint has no scales: they are initialised from its weights below
    load_params(model.params, r.init_ck->weights, r.init_ck->weights.path, {"_scale", ".input_scale"});
    for (int i = 0; i < model.params.size(); i++)
      init_has_scales = init_has_scales || (model.is_scale_param(i) && r.init_ck->weights.find(model.params.info(i).name));
  }
  if (r.qcfg && !r.resume_ck && !init_has_scales) model.init_qat_scales();
  if (r.qcfg)
    for (int i = 0; i < model.params.size(); i++)
      if (model.is_scale_param(i)) model.params.set_lr_mult(i, float(opt.qat_scale_lr));
}

// The teacher's checks: the tokenizer of the model being trained, a context as long as --ctx.
void check_teacher(const Run& r, const Vocab& tok, const ModelConfig& c) {
  QAT_CHECK(tok.fingerprint() == r.tok->fingerprint(), "--distill: the teacher ", r.opt.distill,
            " has another tokenizer than the model being trained");
  QAT_CHECK(c.context >= r.opt.ctx, "--distill: the teacher's context ", c.context, " is shorter than --ctx ", r.opt.ctx);
}

// Knowledge distillation: the teacher (FP32 or QAT checkpoint, or an imported GGUF as f32: the Gemma
// recipe's unquantized model; same tokenizer) runs its forward on every micro-batch without a graph;
// the loss becomes w * KL(teacher || model) + (1 - w) * CE.
void load_teacher(Run& r) {
  const TrainOptions& opt = r.opt;
  if (opt.distill.empty()) return;
  std::string what;
  if (file_exists(opt.distill) && !is_directory(opt.distill)) {
    const LoadedCheckpoint ck = import_gguf(opt.distill);
    check_teacher(r, *ck.vocab, ck.config);
    r.teacher = std::make_unique<Transformer>(ck.config);
    load_params(r.teacher->params, ck.weights, opt.distill);
    what = str("imported GGUF ", opt.distill, " (f32, ", parameter_count(ck.config), " parameters)");
  } else {
    ModelSource t = open_model(opt.distill);
    check_teacher(r, *t.tokenizer, t.config());
    r.teacher = t.transformer();
    what = t.describe();
  }
  r.note(str("distilling from ", what, " (loss = ", opt.distill_weight, " x KL + ", 1 - opt.distill_weight, " x CE)"));
}

// AdamW and the data loader, at the resumed position and counters; a fresh metrics log.
void build_optimizer(Run& r) {
  const TrainOptions& opt = r.opt;
  r.adam = std::make_unique<AdamW>(r.model->params,
                                   AdamWConfig{float(opt.lr), 0.9f, 0.95f, 1e-8f, float(opt.weight_decay)});
  r.loader = std::make_unique<TokenLoader>(r.data.train.tokens, opt.batch, opt.ctx, opt.seed);
  r.metrics = opt.out + "/metrics.jsonl";
  if (r.resume_ck) {
    const RunState& s = *r.resumed;
    load_optimizer(*r.adam, r.model->params, *r.resume_ck->optimizer);
    check_optimizer_step(*r.adam, s, opt.out);
    r.step = s.step;
    r.loader->set_position(s.loader_epoch, s.loader_index);
    r.nonfinite_streak = s.nonfinite_streak;
    r.skipped_steps = s.skipped_steps >= 0 ? s.skipped_steps : r.step - r.adam->steps_taken();
    r.tokens_seen = s.tokens_seen;
    r.train_seconds = s.train_seconds;
    if (r.lead) truncate_metrics(r.metrics, r.step);
    r.note(str("resuming ", opt.out, " at step ", r.step, "/", opt.steps));
  }
  if (r.lead) {  // only rank 0 writes: the other ranks may share its filesystem
    make_dirs(opt.out);
    if (!r.resume_ck && file_exists(r.metrics)) write_file_atomic(r.metrics, "");  // a fresh run starts a fresh log
  }
  if (opt.accum > 1 && r.comm->size() == 1) r.grads = std::make_unique<GradSum>(*r.comm, r.model->params.total());
  if (r.comm->size() > 1) {  // accum >= N > 1
    r.grads = std::make_unique<GradSum>(*r.comm, r.model->params.total(), bucket_ends(r.model->params, opt.bucket_mb));
    r.feed = std::make_unique<BucketFeed>(r.model->params, *r.grads);
  }
  // The checkpoints read at setup now live in the model and the optimizer: not held for the whole run.
  r.resume_ck.reset();
  r.init_ck.reset();
  r.note(str("model: ", r.cfg.preset.empty() ? "custom" : r.cfg.preset, ", ", parameter_count(r.cfg), " parameters, ",
             r.cfg.n_layers, " layers, d_model ", r.cfg.d_model, ", ctx ", opt.ctx, "; batch ", opt.batch, " x ",
             opt.accum, ", lr ", opt.lr, ", ", num_threads(), " threads",
             r.comm->size() > 1 ? str(" x ", r.comm->size(), " ranks (", r.rounds, " micro-batches each)") : ""));
}

// ---- checkpoint and evaluation ----

// The checkpoint: weights, optimizer, tokenizer and everything --resume needs to continue bit for bit.
void save_run(const Run& r) {
  Json st = Json::object();
  st.set("step", r.step);
  st.set("loader_epoch", r.loader->epoch());
  st.set("loader_index", r.loader->index());
  st.set("accum_pos", 0);
  st.set("nonfinite_streak", r.nonfinite_streak);
  st.set("skipped_steps", r.skipped_steps);
  st.set("corpus_hash", r.corpus_hash);
  st.set("tokens_seen", r.tokens_seen);
  st.set("train_seconds", r.train_seconds);
  st.set("options", r.opt.to_json());
  save_checkpoint(r.opt.out, {&r.cfg, r.qcfg ? r.qcfg->to_json() : Json(), &r.model->params, r.adam.get(),
                              r.tok->file_bytes(), st, r.tok->file_name()});
}

// Validation loss over the first `windows` windows (0: the whole split), appended to the metrics log.
EvalResult eval_run(Run& r, int64_t windows) {
  EvalResult e = evaluate(*r.model, r.data.val.tokens, r.token_bytes, r.opt.batch, r.opt.ctx, windows);
  Json m = Json::object();
  m.set("step", r.step); m.set("val_loss", e.loss); m.set("bpb", e.bpb); m.set("val_tokens", e.tokens);
  // Periodic evaluations see the first `windows` windows, the final one the whole split: the plot
  // must not join them into one curve (tools/plot).
  m.set("val_split", windows > 0 ? "sample" : "all");
  if (windows > 0) m.set("val_windows", windows);
  if (r.qcfg) m.set("sqnr_db", qat_sqnr(*r.model, r.data.val.tokens, r.opt.ctx));
  append_line(r.metrics, m.dump());
  return e;
}

// ---- one step ----

struct StepResult {
  float loss = 0, kl = 0;  // mean data loss (cross-entropy) and distillation KL of the micro-batches
  float gnorm = 0, lr = 0;
  int stop = 0;            // a signal some rank got (the largest): every rank saves and stops together
  double comm_s = 0;       // seconds this rank spent in exchanges (waiting included); logged under MPI
  double backward_s = 0;   // seconds in this rank's backward passes (the exchange overlaps them); under MPI
  double exposed_s = 0;    // seconds the step waited for the gradient sum after the backwards ended: the
                           // exchange the overlap did not hide (fold included); under MPI
};

// Forward + backward of one micro-batch into the flat gradient buffer: cross-entropy, or with a teacher
// w * KL(teacher || model) + (1 - w) * CE, scaled by 1 / accum (the global batch's micro-batches).
// Returns the data loss (and the KL) the log shows in *loss (*kl).
void micro_batch(Run& r, const QatStep& qs, float* loss_out, float* kl_out) {
  Batch b = [&] { QAT_PROF("data", other); return r.loader->next(); }();
  Tensor loss;
  if (r.teacher) {
    const int64_t BT = b.ids.numel(), V = r.cfg.vocab;
    Tensor logits = r.model->forward(b.ids, &qs).reshape({BT, V}), targets = b.targets.reshape({BT});
    Tensor teacher_logits;
    {
      NoGrad ng;
      teacher_logits = r.teacher->forward(b.ids).reshape({BT, V});
    }
    Tensor ce = cross_entropy(logits, targets), kl = distill_kl(logits, teacher_logits, targets);
    *loss_out = ce.item();  // the data loss is what the log and the progress line show
    *kl_out = kl.item();
    const float w = float(r.opt.distill_weight);
    loss = w == 1.0f ? kl : add(scale(kl, w), scale(ce, 1.0f - w));
  } else {
    loss = r.model->loss(b.ids, b.targets, &qs);
    *loss_out = loss.item();
    *kl_out = 0;
  }
  const double t0 = now_s();
  (r.opt.accum > 1 ? scale(loss, 1.0f / float(r.opt.accum)) : loss).backward(r.feed.get());
  r.backward_s += now_s() - t0;
  QAT_PROF("free graph", other);
  loss = Tensor();
}

// The optimizer's half of a step: AdamW on a finite step, then the QAT scale clamp and dampening; a
// non-finite one is skipped with a warning, and max_nonfinite in a row abort (the last checkpoint stays).
void apply_update(Run& r, const StepResult& s) {
  Transformer& model = *r.model;
  if (std::isfinite(s.loss) && std::isfinite(s.gnorm)) {
    QAT_PROF("optimizer", other, 12.0 * double(model.params.total()), 20.0 * double(model.params.total()));
    r.adam->step(s.lr);
    if (r.qcfg) model.clamp_qat_scales();
    if (r.qcfg && r.opt.qat_dampen > 0) {
      QAT_PROF("dampen", other);
      model.dampen_qat_weights(std::min(1.0f, s.lr * float(r.opt.qat_dampen)));
    }
    r.nonfinite_streak = 0;
    return;
  }
  r.nonfinite_streak++;
  r.skipped_steps++;
  if (r.lead)
    std::fprintf(stderr, "%swarning: step %lld: non-finite %s; step skipped (%lld in a row)\n", r.tty ? "\n" : "",
               (long long)r.step, std::isfinite(s.loss) ? "gradient norm" : "loss", (long long)r.nonfinite_streak);
  QAT_CHECK(r.nonfinite_streak < r.opt.max_nonfinite, "training diverged: ", r.nonfinite_streak,
            " non-finite steps in a row at step ", r.step, "; the last checkpoint in ", r.opt.out,
            " is intact (try a lower --lr)");
}

// A static activation scale is calibrated by the first forward on its batch: on one process micro-batch
// 0's. A rank other than 0 starts with another micro-batch, so before it, it runs micro-batch 0's forward
// (no graph; the same weights and QatStep give rank 0's activations) to calibrate as rank 0 does.
void calibrate_like_rank0(Run& r, const QatStep& qs) {
  if (r.comm->rank() == 0 || !r.qcfg) return;
  bool uncalibrated = false;  // a static activation scale (".input_scale") still 0: not yet calibrated
  const ParamStore& ps = r.model->params;
  for (int i = 0; i < ps.size(); i++) {
    const std::string& name = ps.info(i).name;
    const bool act = name.size() > 12 && name.compare(name.size() - 12, 12, ".input_scale") == 0;
    uncalibrated = uncalibrated || (act && ps[i].f32()[0] == 0.0f);
  }
  if (!uncalibrated) return;
  TokenLoader peek = *r.loader;  // at micro-batch 0 of this step; the loader itself does not move
  Batch b = peek.next();
  NoGrad ng;
  (void)r.model->forward(b.ids, &qs);
}

// This rank's micro-batches of the step (round a: global index a * N + rank, see GradSum), each
// gradient into the zeroed buffer and into the fixed-order sum; then every rank's losses and stop flag.
// Returns the (rounds x 2 + 1) floats of every rank: per round its loss and KL, then the stop flag.
std::vector<float> run_micro_batches(Run& r, const QatStep& qs) {
  Transformer& model = *r.model;
  const int64_t N = r.comm->size(), rank = r.comm->rank(), per = 2 * r.rounds + 1;
  std::vector<float> mine(size_t(per), 0.0f), all(size_t(per * N));
  float* g = model.params.flat_grad().f32();
  calibrate_like_rank0(r, qs);
  for (int64_t a = 0; a < r.rounds; a++) {
    if (a > 0) {
      QAT_PROF("zero_grad", other);
      model.params.zero_grad();
    }
    r.loader->skip(rank);  // the micro-batches of ranks before this one in the global sequence
    if (r.feed) {  // the exchange runs with the backward; the last round all-gathers the sum into g
      r.grads->begin_round(g, a, a == r.rounds - 1 ? g : nullptr);
      static_cast<BucketFeed&>(*r.feed).start();
    }
    micro_batch(r, qs, &mine[size_t(2 * a)], &mine[size_t(2 * a + 1)]);
    r.loader->skip(N - 1 - rank);
    if (r.grads) {
      QAT_PROF("grad sum", other);
      const double t0 = now_s();
      if (r.feed) r.grads->end_round();
      else r.grads->add_round(g, a);
      r.exposed_s += now_s() - t0;
    }
  }
  if (r.grads) {
    QAT_PROF("grad sum", other);
    const double t0 = now_s();
    r.grads->finish(g);
    r.exposed_s += now_s() - t0;
  }
  mine.back() = float(g_stop.load());  // a signal number: exact in a float
  r.comm->allgather(mine.data(), mine.size() * sizeof(float), all.data(), "the loss exchange");
  return all;
}

// One optimizer step: `accum` micro-batches of forward + backward (this rank's share of them), their
// gradients summed in index order, clip, AdamW.
StepResult train_step(Run& r) {
  const TrainOptions& opt = r.opt;
  Transformer& model = *r.model;
  {
    QAT_PROF("zero_grad", other);
    model.params.zero_grad();
  }
  QatStep qs;  // this step's alone: evaluation and serving see every weight quantized
  if (r.qcfg && opt.qat_noise < 1.0) {  // Quant-Noise: the quantized fraction rises linearly to 1 at mid-run
    const double ramp = std::min(1.0, double(r.step) / (0.5 * double(opt.steps)));
    qs.noise = float(opt.qat_noise + (1.0 - opt.qat_noise) * ramp);
    qs.noise_key = rng_bits(opt.seed, 0x716e6f697365ull /* "qnoise" */, uint64_t(r.step));
  }
  const std::vector<float> all = run_micro_batches(r, qs);
  const int64_t N = r.comm->size(), per = 2 * r.rounds + 1;
  double loss_sum = 0, kl_sum = 0;  // in micro-batch index order (a * N + rank), as on one process
  StepResult s;
  for (int64_t a = 0; a < r.rounds; a++)
    for (int64_t j = 0; j < N; j++) {
      loss_sum += all[size_t(j * per + 2 * a)];
      kl_sum += all[size_t(j * per + 2 * a + 1)];
    }
  for (int64_t j = 0; j < N; j++) s.stop = std::max(s.stop, int(all[size_t(j * per + per - 1)]));
  s.loss = float(loss_sum / double(opt.accum));
  s.kl = float(kl_sum / double(opt.accum));
  if (r.teacher && !std::isfinite(s.kl)) s.loss = s.kl;  // the guard sees a non-finite objective
  if (r.qcfg && r.qcfg->freeze_scales) model.zero_qat_scale_grads();
  if (inject_nan_at(r.step)) model.params.flat_grad().f32()[0] = NAN;
  {  // its own block: a scope open to the end of the step would also time evaluation and checkpoints
    QAT_PROF("clip", other, 2.0 * double(model.params.total()), 4.0 * double(model.params.total()));
    s.gnorm = clip_grad_norm(model.params, float(opt.clip));
  }
  s.lr = lr_schedule(r.step, opt.steps, opt.warmup, float(opt.lr), float(opt.lr * opt.min_lr_ratio));
  apply_update(r, s);
  return s;
}

// ---- the loop ----

// Wall-clock progress of this call: the rate and ETA of the progress line, the profile's step time.
struct Progress {
  double t0 = now_s(), last_print = 0;
  double profiled_wall = 0;  // wall time inside the steps (the profile table's denominator)
  int64_t first_step = 0, ran = 0;
};

// The step's metrics line and the progress line (redrawn on a terminal, every 5% otherwise).
void log_step(const Run& r, const StepResult& s, double dt, Progress& p) {
  const TrainOptions& opt = r.opt;
  Json m = Json::object();
  m.set("step", r.step); m.set("loss", double(s.loss)); m.set("lr", double(s.lr)); m.set("grad_norm", double(s.gnorm));
  if (r.teacher) m.set("distill_kl", double(s.kl));
  if (r.comm->size() > 1) {  // one process: no fields, the same bytes as before
    m.set("comm_s", s.comm_s);
    m.set("backward_s", s.backward_s);
    m.set("exposed_s", s.exposed_s);
  }
  m.set("tokens_per_s", double(r.tokens_per_step()) / dt); m.set("time_s", r.train_seconds);
  append_line(r.metrics, m.dump());
  const double elapsed = now_s() - p.t0, rate = double(p.ran * r.tokens_per_step()) / elapsed;
  const double eta = double(opt.steps - r.step) * elapsed / double(p.ran);
  if (r.tty && (now_s() - p.last_print > 0.25 || r.step == opt.steps)) {
    std::fprintf(stderr, "\rstep %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s   ", (long long)r.step,
                 (long long)opt.steps, s.loss, s.lr, rate, fmt_duration(eta).c_str());
    p.last_print = now_s();
  } else if (!r.tty && !opt.quiet && (r.step % std::max<int64_t>(1, opt.steps / 20) == 0)) {
    std::fprintf(stderr, "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s\n", (long long)r.step,
                 (long long)opt.steps, s.loss, s.lr, rate, fmt_duration(eta).c_str());
  }
}

// SIGINT (Ctrl-C), SIGTERM (kill, a scheduler, mpirun forwarding Ctrl-C) and SIGUSR1 (which mpirun
// forwards to every rank without ending the job) ask the loop to save and stop after the current step,
// for the loop's lifetime. Under MPI the flag travels with the step's loss exchange, so every rank
// stops after the same step.
struct StopSignals {
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1};
  void (*prev[3])(int);
  StopSignals() {
    g_stop = 0;
    for (int i = 0; i < 3; i++) prev[i] = std::signal(kSignals[i], on_stop_signal);
  }
  ~StopSignals() {
    for (int i = 0; i < 3; i++) std::signal(kSignals[i], prev[i]);
  }
};

// Steps until --steps, with evaluations and checkpoints between them; a stop signal (or the tests' stop
// hook) saves a checkpoint and returns early with sum.interrupted (and sum.stop_signal) set.
void run_steps(Run& r, Progress& p, TrainSummary& sum, bool profiling) {
  const TrainOptions& opt = r.opt;
  StopSignals signals;
  while (r.step < opt.steps) {
    // Busy time over the steps, as the table's wall (outside the step's clock: the region that reads
    // the threads' CPU clocks is no op of the step).
    if (profiling) prof::thread_times_begin();
    test_rank_fault(r.comm->rank(), r.step);
    const double ts = now_s(), comm0 = r.comm->comm_seconds(), backward0 = r.backward_s, exposed0 = r.exposed_s;
    r.comm->heartbeat(r.step);  // a dead or hung rank is named here, within --rank-timeout
    prof::g_on = profiling;
    StepResult s = train_step(r);
    s.comm_s = r.comm->comm_seconds() - comm0;
    s.backward_s = r.backward_s - backward0;
    s.exposed_s = r.exposed_s - exposed0;
    r.step++;
    p.ran++;
    r.tokens_seen += r.tokens_per_step();
    const double dt = now_s() - ts;
    p.profiled_wall += dt;
    prof::g_on = false;  // evaluation, metrics and checkpoints are not part of the step
    if (profiling) prof::thread_times_end();
    r.train_seconds += dt;
    sum.losses.push_back(s.loss);
    if (r.lead) log_step(r, s, dt, p);
    const bool last = r.step == opt.steps;
    if (r.lead && r.step % opt.eval_every == 0 && !last) {
      EvalResult e = eval_run(r, opt.eval_windows);
      if (!opt.quiet)
        std::fprintf(stderr, "%sstep %lld: val loss %.4f, bpb %.4f\n", r.tty ? "\n" : "", (long long)r.step, e.loss, e.bpb);
    }
    const bool stop = s.stop != 0 || (g_stop_after >= 0 && p.ran >= g_stop_after);
    if (r.lead && ((r.step % opt.save_every == 0 && !last) || stop)) save_run(r);
    if (stop) {
      sum.interrupted = true;
      sum.stop_signal = s.stop != 0 ? s.stop : SIGINT;
      if (!opt.quiet && r.lead)
        std::fprintf(stderr, "%sstopped at step %lld; checkpoint saved in %s (continue with --resume)\n",
                     r.tty ? "\n" : "", (long long)r.step, opt.out.c_str());
      return;
    }
  }
}

// ---- finish ----

// The final evaluation (whole split) and checkpoint, the plot and the result line. A run resumed after
// its final checkpoint reports its recorded final evaluation instead of running it again.
void finish(Run& r, const Progress& p, TrainSummary& sum) {
  const TrainOptions& opt = r.opt;
  const double peak = peak_rss_bytes();
  r.note(str("memory: peak RSS ", human_bytes(peak), ", estimated ", human_bytes(r.memory.total()),
             "; bytes per parameter: ", r.memory.per_parameter(peak)));
  sum.steps = r.step;
  sum.seconds = now_s() - p.t0;
  sum.tokens_per_s = p.ran ? double(p.ran * r.tokens_per_step()) / sum.seconds : 0;
  if (sum.interrupted || !r.lead) return;  // rank 0 alone evaluates, saves and reports
  double recorded_loss = 0, recorded_bpb = 0;
  if (p.ran == 0 && recorded_eval(r.metrics, r.step, &recorded_loss, &recorded_bpb)) {
    sum.final_val_loss = recorded_loss;
    sum.final_bpb = recorded_bpb;
    save_run(r);  // the same checkpoint again: clears what a kill inside the previous save left behind
    if (!opt.quiet)
      std::printf("%s was already complete at step %lld: val loss %.4f, bpb %.4f (its final evaluation)\n",
                  opt.out.c_str(), (long long)r.step, recorded_loss, recorded_bpb);
    return;
  }
  EvalResult e = eval_run(r, 0);
  sum.final_val_loss = e.loss;
  sum.final_bpb = e.bpb;
  save_run(r);
  if (opt.plot) {
    const std::string why = draw_plot(opt.out);
    if (!why.empty()) r.note("note: loss.png not drawn: " + why);
  }
  if (!opt.quiet)
    std::printf("trained %lld steps (%lld this run) in %s: %.0f tok/s; val loss %.4f, bpb %.4f, ppl %.2f over %lld "
                "tokens; checkpoint %s\n",
                (long long)r.step, (long long)(r.step - p.first_step), fmt_duration(sum.seconds).c_str(),
                sum.tokens_per_s, e.loss, e.bpb, e.ppl, (long long)e.tokens, opt.out.c_str());
}

// The per-op table of the steps (bin/train --profile), against this machine's measured ceilings.
void print_profile(const Progress& p) {
  MachinePeaks mp = measure_peaks(num_threads(), 0.6);
  prof::Peaks pk{mp.f32_gflops, mp.int8_gops, mp.dram_gbs};
  std::fprintf(stderr, "profile of %lld steps (%d threads; times exclusive of nested ops):\n%s", (long long)p.ran,
               num_threads(), prof::table(pk, p.ran, p.profiled_wall).c_str());
  std::fprintf(stderr, "%s\n", prof::thread_busy_line("steps").c_str());
}


// The global batch in micro-batches (opt.accum from here on) and this rank's share of it: a new run's
// --accum is per rank; a resumed run's saved accum is already global, and the ranks must divide it.
void share_batch(Run& r) {
  const int64_t N = r.comm->size();
  if (!r.opt.resume) {
    const IntRange& range = int_range("--accum");
    QAT_CHECK(r.opt.accum * N <= range.hi, "--accum ", r.opt.accum, " x ", N, " ranks exceeds ", range.hi,
              " micro-batches per step");
    r.opt.accum *= N;
  }
  QAT_CHECK(r.opt.accum % N == 0, "--resume: the run's global batch is ", r.opt.accum, " micro-batches, which ", N,
            " ranks cannot share evenly (use a rank count that divides it)");
  r.rounds = r.opt.accum / N;
}

// Start-up refusal (dist.h agree()): the same data, options, tokenizer, shape and starting weights on
// every rank. The --data path may differ (another machine); its content is the corpus hash.
void check_ranks_agree(Run& r) {
  Json o = r.opt.to_json();
  o.set("data", "");
  const std::string opts = o.dump(), cfg = r.cfg.to_json().dump();
  const Tensor& w = r.model->params.flat();
  agree(*r.comm, {{"corpus (content hash)", r.corpus->content_hash()},
                  {"options", fnv1a64(opts.data(), opts.size())},
                  {"tokenizer", r.tok->fingerprint()},
                  {"model config", fnv1a64(cfg.data(), cfg.size())},
                  {"starting weights", fnv1a64(w.f32(), size_t(w.numel()) * sizeof(float))},
                  {"--bucket-mb (the buckets' exchanges must pair up)", fnv1a64(&r.opt.bucket_mb, sizeof(double))}});
}

// The setup phases. Rank 0 reads (and tokenizes into the cache) first, then the others, which find the
// token cache it wrote; only rank 0 claims --out.
void set_up(Run& r, std::optional<FileLock>& out_lock) {
  Comm& comm = *r.comm;
  if (comm.size() > 1) {
    const std::string exe = read_file("/proc/self/exe");
    agree(comm, {{"binary (/proc/self/exe)", fnv1a64(exe.data(), exe.size())}});
  }
  share_batch(r);
  // A foreign --out is refused, and ours stays locked against a second run until we return.
  if (r.lead) out_lock = claim_output_dir(r.opt.out);
  if (!r.lead) comm.barrier();
  open_run(r);
  load_data(r);
  if (r.lead) comm.barrier();
  fix_shapes(r);
  build_model(r);
  load_teacher(r);
  build_optimizer(r);
  check_ranks_agree(r);
}

}  // namespace

TrainSummary train(const TrainOptions& opt) {
  LocalComm one;
  return train(opt, one);
}

// The phases: claim the output, open the checkpoint, data, shapes, model, optimizer; the steps; finish.
TrainSummary train(const TrainOptions& opt_in, Comm& comm) {
  Run r;
  r.opt = opt_in;
  r.comm = &comm;
  r.lead = comm.rank() == 0;
  // --threads 0 (all cores) with several ranks on this machine: the cores shared out between them
  // (the bits do not depend on the thread count).
  if (r.opt.threads == 0 && comm.local_size() > 1)
    r.opt.threads = std::max<int64_t>(1, int64_t(std::thread::hardware_concurrency()) / comm.local_size());
  set_num_threads(int(r.opt.threads));
  r.tty = !r.opt.quiet && r.lead && ::isatty(STDERR_FILENO);
  std::optional<FileLock> out_lock;
  set_up(r, out_lock);
  comm.set_timeout(r.opt.rank_timeout);  // the steps: every exchange waits at most this long

  const bool profiling = r.opt.profile || !r.opt.profile_json.empty();
  if (profiling) prof::enable(true, !r.opt.profile_json.empty());
  TrainSummary sum;
  Progress p;
  p.first_step = r.step;
  run_steps(r, p, sum, profiling);
  if (r.tty) std::fprintf(stderr, "\n");
  if (r.opt.profile && r.lead) print_profile(p);
  finish(r, p, sum);
  if (profiling) {  // after the final checkpoint: a failure here (a full disk) costs only the trace
    if (!r.opt.profile_json.empty() && r.lead) prof::write_trace(r.opt.profile_json);
    prof::enable(false);
  }
  g_stop_after = -1;
  return sum;
}

}  // namespace qat
