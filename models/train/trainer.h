// The training loop behind bin/train: data -> tokenizer -> model -> AdamW, with evaluation, metrics,
// checkpoints, resume, NaN guards and SIGINT handling. Kept in the library (not in tools/) so tests
// can run it in-process (resume and thread-count bit-identity). Read next: tools/train.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/train/shape.h"
#include "src/io/json.h"

namespace qat {

struct TrainOptions {
  std::string data;                 // "" = the default fortunes corpus
  std::string documents;            // --documents: "" or auto (detect), none, percent, blank-line; saved as resolved
  std::string preset = "small";
  int64_t steps = 0;                // 0: the preset's default
  int64_t batch = 16;               // sequences per micro-batch
  int64_t ctx = 0;                  // 0: the preset's context
  int64_t accum = 1;                // micro-batches per optimizer step (per rank; state.json saves all ranks' total)
  double lr = 0;                    // 0: the preset's default
  double min_lr_ratio = 0.1;        // cosine decays to lr * this
  int64_t warmup = -1;              // -1: 5% of the steps
  double weight_decay = 0.1;
  double clip = 1.0;                // global gradient-norm clip (0: off)
  std::string out;                  // checkpoint directory; bin/train's default: runs/<preset>
  bool resume = false;
  std::string init;                 // initialise weights from this checkpoint
  int64_t threads = 0;              // 0: all cores
  uint64_t seed = 1337;
  int64_t eval_every = 0;           // 0: 10 evaluations per run
  int64_t eval_windows = 100;       // windows per periodic evaluation (the final one uses all)
  int64_t save_every = 0;           // 0: at every evaluation
  int64_t vocab = 1024;
  std::string cache_dir = "runs/cache";  // machine-local: not saved, never taken from a state.json
  std::string vocab_from;           // a new run's tokenizer from this GGUF (not saved: the checkpoint holds it)
  int64_t max_nonfinite = 5;        // abort after this many non-finite steps in a row
  std::string qat;                  // QAT scheme ("" = FP32 training)
  std::string qat_keep;             // per-layer overrides
  std::string qat_scale_init = "mse";  // minmax | mse
  bool qat_freeze_scales = false;
  bool qat_identity_ste = false;
  double qat_scale_lr = 1.0;        // learning-rate multiplier of the QAT scales
  double qat_dampen = 0.0;          // oscillation dampening: rate lr * this per step (0: off)
  double qat_noise = 1.0;           // Quant-Noise: fraction quantized at step 0, rising to 1 at mid-run (1: off)
  std::string distill;              // teacher checkpoint: knowledge distillation (e.g. QAT from FP32)
  double distill_weight = 1.0;      // loss = w * KL(teacher || model) + (1 - w) * cross-entropy
  int64_t data_free = 0;            // > 0: `data` is N sequences sampled from the distill teacher (data_free.h);
  int64_t data_free_len = 0;        //   tokens each (0: the teacher's context). Not saved: resolved into data
  double rank_timeout = 600;        // MPI: seconds a rank waits for the others in a step (0: forever); not saved
  double bucket_mb = 1.0;           // MPI: gradient bucket size in MiB, exchanged as the backward finishes each
                                    // (0: one exchange after the backward); not saved: the bits do not depend on it
  bool quiet = false;               // no progress line
  bool plot = true;                 // draw loss.png at the end (gnuplot)
  bool profile = false;             // print a per-op table of the steps at the end
  std::string profile_json;         // write a Chrome trace of the steps
  // The model shape beyond the preset (--config, --layers ...). Not saved in state.json: a checkpoint's
  // shape is its config.json, and with --init / --resume these may only agree with it.
  ShapeFlags shape;

  Json to_json() const;
  static TrainOptions from_json(const Json& j);
};

// The accepted range of each numeric option a checkpoint saves: one table that bin/train's flags and
// the validation of a resumed state.json both read, so a state.json can hold nothing the command line
// refuses (a negative step count, a learning rate of 1e9). `key` is the option's name in state.json.
struct IntRange { const char* flag; const char* key; int64_t lo, hi; };
struct RealRange { const char* flag; const char* key; double lo, hi; };
const std::vector<IntRange>& int_option_ranges();
const std::vector<RealRange>& real_option_ranges();
const IntRange& int_range(const std::string& flag);    // throws for a flag not in the table
const RealRange& real_range(const std::string& flag);

struct TrainSummary {
  int64_t steps = 0;                // optimizer steps completed (total)
  std::vector<float> losses;        // training loss of each step run by this call
  double final_val_loss = 0, final_bpb = 0;
  double seconds = 0;               // wall time of the steps run by this call
  double tokens_per_s = 0;
  bool interrupted = false;
  int stop_signal = 0;              // interrupted: the signal that asked for it (the test hook: SIGINT)
};

// The fine-tuning recipe of docs/RESULTS.md: lr 2e-4 for 20% of the steps that trained the start (600
// after 3000). bin/train applies it with --init when --steps / --lr are not given; bin/qat-study's
// defaults are the same numbers.
constexpr double kFineTuneLr = 2e-4;
constexpr int64_t kFineTunePercent = 20;

// What --steps 0 and --lr 0 mean for a preset (its default steps and peak lr).
void preset_defaults(const std::string& preset, int64_t* steps, double* lr);

// The options a checkpoint directory was trained with (its state.json), for --resume; every one is
// checked against its flag's range (a bad one is an error naming the file and the field).
TrainOptions saved_options(const std::string& dir);

// Runs training as the options say; throws qat::Error on bad input or too many non-finite steps.
TrainSummary train(const TrainOptions& opt);
// The same as one rank of a data-parallel job (models/train/dist.h): every rank runs this with the same
// options; the checkpoint is byte-identical to one process with `accum` x ranks micro-batches.
class Comm;
TrainSummary train(const TrainOptions& opt, Comm& comm);

// For tests and stop signals: makes a running train() save a checkpoint and return after the current step.
void request_stop();
// For tests: stop (with a checkpoint) after this many steps of the current call (-1: off).
void set_stop_after(int64_t steps);

}  // namespace qat
