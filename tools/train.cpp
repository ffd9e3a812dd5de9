// bin/train: trains the Llama-style model (FP32, or QAT with --qat) on the fortunes corpus or --data;
// under mpirun, as one rank of a data-parallel job (models/train/dist.h). Everything it does is in
// models/train/trainer.cpp; this file is the command line.
#include <cstdio>

#include "models/train/data_free.h"
#include "models/train/dist_mpi.h"
#include "models/train/trainer.h"
#include "src/quant/scheme.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;

// --out's default: runs/<preset> for a new model, so that `--preset tiny` does not land in a trained
// small model's directory; "<CKPT>-<scheme>" (or "-ft") with --init, next to the start, never the
// start itself. A shape of its own (--config, --layers ...) goes to runs/custom.
static std::string default_out(const TrainOptions& o) {
  if (o.init.empty()) return o.shape.custom() ? "runs/custom" : "runs/" + o.preset;
  std::string start = o.init;
  while (start.size() > 1 && start.back() == '/') start.pop_back();
  return start + "-" + (o.qat.empty() || o.qat == "f32" ? std::string("ft") : o.qat);
}

// A numeric option whose range is trainer.h's table (the table also checks a resumed state.json).
static void int_opt(ArgParser& p, const char* flag, int64_t* dest, const char* help) {
  const IntRange& r = int_range(flag);
  p.option(flag, dest, help, r.lo, r.hi);
}
static void real_opt(ArgParser& p, const char* flag, double* dest, const char* help) {
  const RealRange& r = real_range(flag);
  p.option(flag, dest, help, r.lo, r.hi);
}

// The options of the run itself: data, model, schedule, output, cadence. --seed is an int64 option
// written to *seed (TrainOptions holds a uint64).
static void declare_run_options(ArgParser& p, TrainOptions* o, int64_t* seed) {
  p.option("--data", &o->data, "UTF-8 text file or directory to train on (default: /usr/share/games/fortunes)", "PATH");
  p.option("--documents", &o->documents, "how --data becomes documents: none (one stream, val = the last 10%), "
           "percent (fortune format: '%' lines), blank-line (paragraphs); default auto: a file with '%' lines is "
           "percent, any other file one stream, a directory one document per file (or per '%' chunk)", "MODE");
  p.option("--preset", &o->preset, "model size: tiny, small, base, 15m or 110m (the shapes of llama2.c's "
           "stories15M / stories110M)", "NAME");
  int_opt(p, "--steps", &o->steps, "optimizer steps (0: the preset's default: tiny 200, small 1000, base, 15m and 110m 4000; "
                                   "with --init: 20% of the start's steps)");
  int_opt(p, "--batch", &o->batch, "sequences per micro-batch");
  int_opt(p, "--ctx", &o->ctx, "tokens per sequence and, for a new model, its context (0: the preset's or --config's)");
  int_opt(p, "--accum", &o->accum, "micro-batches per optimizer step (gradient accumulation); under mpirun per rank: "
                                   "-np N --accum A gives the bytes of one process with --accum N*A");
  real_opt(p, "--lr", &o->lr, "peak learning rate (0: the preset's default; with --init: 2e-4)");
  real_opt(p, "--min-lr-ratio", &o->min_lr_ratio, "the cosine schedule ends at lr x this");
  int_opt(p, "--warmup", &o->warmup, "warmup steps (-1: 5% of the steps)");
  real_opt(p, "--weight-decay", &o->weight_decay, "AdamW weight decay (not on norms and embeddings)");
  real_opt(p, "--clip", &o->clip, "gradient-norm clip (0: off)");
  p.option("--out", &o->out, "checkpoint directory (default: runs/<preset>; with --init: <CKPT>-<qat scheme or ft>)",
           "DIR");
  p.flag("--resume", &o->resume, "continue the run in --out bit-identically (its saved options apply)");
  p.option("--init", &o->init, "initialise the weights from this checkpoint (fine-tuning, QAT from FP32) or a pretrained "
           "llama GGUF (imported with its tokenizer: F32/F16/BF16/Q8_0/Q4_0 weights as f32)", "CKPT|FILE.gguf");
  p.option("--threads", &o->threads, "threads (0: all cores; under mpirun, the cores shared out between the ranks on this machine)", 0, 4096);
  int_opt(p, "--seed", seed, "random seed (weights, data order)");
  int_opt(p, "--eval-every", &o->eval_every, "evaluate every N steps (0: 10 times per run)");
  int_opt(p, "--eval-windows", &o->eval_windows, "validation windows per periodic evaluation (the final one uses all)");
  int_opt(p, "--save-every", &o->save_every, "checkpoint every N steps (0: at every evaluation)");
  int_opt(p, "--vocab", &o->vocab, "BPE vocabulary size for a new tokenizer");
  p.option("--vocab-from", &o->vocab_from, "a new model with this GGUF's tokenizer (tokenizer.ggml.*, e.g. a pretrained "
           "model's or llama.cpp's models/ggml-vocab-*.gguf) instead of a BPE trained on the corpus", "FILE.gguf");
  p.option("--cache-dir", &o->cache_dir, "where tokenized data is cached (not saved: also on --resume)", "DIR");
  int_opt(p, "--max-nonfinite", &o->max_nonfinite, "abort after this many non-finite steps in a row");
  p.option("--rank-timeout", &o->rank_timeout, "under mpirun: seconds a rank waits for the others during the steps "
           "(evaluation and checkpoints of rank 0 included) before it stops the job naming the silent rank (0: forever)",
           0, 1e6);
  p.option("--bucket-mb", &o->bucket_mb, "under mpirun: gradients are exchanged in buckets of about this many MiB, "
           "each as soon as the backward has finished it, overlapping the rest of the backward (0: one exchange "
           "after the backward); the bits do not depend on it", 0, 1e6);
}

// The QAT and distillation options, then what the run reports (progress, plot, profile). --no-plot is
// written to *no_plot (TrainOptions holds its opposite, plot).
static void declare_qat_and_report_options(ArgParser& p, TrainOptions* o, bool* no_plot) {
  p.option("--qat", &o->qat, "quantization-aware training scheme: " + scheme_names(SchemeSet::trainable), "SCHEME");
  p.option("--qat-keep", &o->qat_keep, "per-layer formats: embed, lm_head, q..down, attn, mlp, layers.N[.kind], "
                                       "each alone (f32) or =SCHEME, comma-separated, e.g. lm_head=q8_0,layers.0=f32", "LIST");
  p.option("--qat-scale-init", &o->qat_scale_init, "initial QAT scales: minmax (ggml rule) or mse", "M");
  p.flag("--qat-freeze-scales", &o->qat_freeze_scales, "keep the QAT scales at their initial values");
  p.flag("--qat-identity-ste", &o->qat_identity_ste, "straight-through gradient also for clipped weights");
  real_opt(p, "--qat-scale-lr", &o->qat_scale_lr, "learning-rate multiplier of the QAT scales (steps in log space)");
  real_opt(p, "--qat-dampen", &o->qat_dampen, "oscillation dampening: after each step, latent weights inside the clip "
           "range move lr x X of the way to their quantized values (0: off)");
  real_opt(p, "--qat-noise", &o->qat_noise, "Quant-Noise: QAT fake-quantizes a random fraction of the weights, P at the "
           "first step rising linearly to all of them at mid-run (1: off, plain QAT)");
  p.option("--distill", &o->distill, "knowledge distillation from this teacher checkpoint (same tokenizer), "
           "e.g. the FP32 model for QAT", "CKPT");
  real_opt(p, "--distill-weight", &o->distill_weight, "loss = W x KL(teacher || model) + (1 - W) x cross-entropy");
  p.option("--data-free", &o->data_free, "data-free QAT (LLM-QAT): the corpus is N sequences sampled from the --distill "
           "teacher at temperature 1, cached in --cache-dir (instead of --data)", 1, int64_t(1) << 24);
  p.option("--data-free-len", &o->data_free_len, "tokens per sampled sequence at most (0: the teacher's context)", 0,
           int64_t(1) << 20);
  p.flag("--quiet", &o->quiet, "no progress output");
  p.flag("--no-plot", no_plot, "do not draw loss.png");
  p.flag("--profile", &o->profile, "print a per-op table at the end: ms per step, GFLOP/s, % of roofline");
  p.option("--profile-json", &o->profile_json, "write a Chrome trace of the steps (open in Perfetto)", "FILE");
  p.epilog("Ctrl-C (SIGINT), SIGTERM or SIGUSR1 save a checkpoint after the current step and exit with status 128 + "
           "the signal (130, 143, 138); under mpirun every rank stops after the same step (mpirun forwards SIGUSR1 "
           "as it is, and Ctrl-C or SIGTERM as SIGTERM, followed by SIGKILL after odls_base_sigkill_timeout: 1 s by "
           "default). Continue with --resume --out DIR.");
}

// --resume: the run continues with the options saved in o.out's state.json; only where it is written,
// how long it runs, threads, reporting and cadence may change on the command line (o holds them).
static TrainOptions resumed_options(const ArgParser& p, const TrainOptions& o) {
  if (p.given("--init")) throw UsageError("--resume and --init exclude each other");
  TrainOptions saved = saved_options(o.out);
  for (const char* f : {"--preset", "--data", "--documents", "--batch", "--ctx", "--accum", "--lr", "--min-lr-ratio", "--warmup",
                        "--weight-decay", "--clip", "--seed", "--vocab", "--qat", "--qat-keep", "--qat-scale-init",
                        "--qat-freeze-scales", "--qat-identity-ste", "--qat-scale-lr", "--qat-dampen", "--qat-noise",
                        "--distill", "--distill-weight", "--data-free", "--data-free-len"})
    if (p.given(f)) throw UsageError(str(f, " cannot change on --resume (the run continues with its saved options)"));
  saved.out = o.out;
  saved.resume = true;
  if (p.given("--steps")) saved.steps = o.steps;
  saved.threads = o.threads;
  saved.rank_timeout = o.rank_timeout;
  saved.bucket_mb = o.bucket_mb;
  saved.quiet = o.quiet;
  saved.plot = o.plot;
  saved.profile = o.profile;
  saved.profile_json = o.profile_json;
  if (p.given("--eval-every")) saved.eval_every = o.eval_every;
  if (p.given("--eval-windows")) saved.eval_windows = o.eval_windows;
  if (p.given("--save-every")) saved.save_every = o.save_every;
  if (p.given("--max-nonfinite")) saved.max_nonfinite = o.max_nonfinite;
  saved.cache_dir = o.cache_dir;  // never taken from state.json (see TrainOptions::from_json)
  saved.shape = o.shape;          // checked against the checkpoint's shape (a conflict is refused)
  return saved;
}

// --data-free N: the corpus is sampled from the teacher (models/train/data_free.h) and becomes --data.
// Under mpirun rank 0 parses first and samples; the others find the cached file.
static void resolve_data_free(const ArgParser& p, TrainOptions* o) {
  if (!p.given("--data-free")) throw UsageError("--data-free-len: only with --data-free N");
  if (o->distill.empty()) throw UsageError("--data-free: needs --distill TEACHER (the model the corpus is sampled from)");
  if (p.given("--data")) throw UsageError("--data-free and --data exclude each other (the corpus is sampled)");
  if (p.given("--documents")) throw UsageError("--data-free: the sampled corpus has its own documents (no --documents)");
  o->data = data_free_corpus({o->distill, o->data_free, o->data_free_len, o->seed}, o->cache_dir, o->quiet);
  o->documents = "percent";
}

// Parses argv into *o (with --resume: the saved run's options); false after --help.
static bool parse_args(int argc, char** argv, TrainOptions* o) {
  int64_t seed = int64_t(o->seed);
  bool no_plot = false;
  ArgParser p("train", "Trains a Llama-style decoder on text (default: the fortunes corpus) and writes a checkpoint\n"
                       "directory (model.safetensors, config.json, tokenizer.json, optimizer state, metrics.jsonl,\n"
                       "loss.png). Progress goes to stderr; the final line (stdout) says what was measured.");
  declare_run_options(p, o, &seed);
  declare_shape_options(p, &o->shape);
  declare_qat_and_report_options(p, o, &no_plot);
  if (!p.parse(argc, argv)) return false;
  o->plot = !no_plot;
  o->seed = uint64_t(seed);
  o->shape.vocab_given = p.given("--vocab");
  if (!p.given("--out")) o->out = default_out(*o);
  if (o->resume) *o = resumed_options(p, *o);
  if (p.given("--data-free") || p.given("--data-free-len")) resolve_data_free(p, o);
  return true;
}

// Under mpirun every rank parses the same command line; rank 0 first (with --resume it may repair a
// checkpoint directory torn by a crash), then the others.
int main(int argc, char** argv) {
  std::unique_ptr<Comm> comm;
  const int status = run_main("train", [&]() {
    comm = open_comm(&argc, &argv);
    try {
      TrainOptions o;
      if (comm->rank() > 0) comm->barrier();
      const bool go = parse_args(argc, argv, &o);
      if (comm->rank() == 0) comm->barrier();
      if (!go) return 0;
      TrainSummary s = train(o, *comm);
      return s.interrupted ? 128 + s.stop_signal : 0;
    } catch (const PeerFailed&) {
      return 1;  // rank 0 prints the line
    } catch (const std::exception&) {
      comm->before_error_report();
      throw;
    }
  });
  return comm ? close_comm(std::move(comm), status) : status;
}
