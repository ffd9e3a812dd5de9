// What a training run keeps between processes, for --resume: state.json's counters (each checked against
// what training can reach), the metrics log, the corpus hash, and the defaults of --steps / --lr. Used
// by trainer.cpp only. Read next: trainer.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "data/corpus.h"
#include "models/checkpoint.h"
#include "models/train/trainer.h"
#include "src/io/json.h"
#include "src/optim/adamw.h"

namespace qat {

// Calls fn(line, parsed) for each line of a metrics file; a torn line (from a crash) is skipped.
void for_each_metrics_line(const std::string& path, const std::function<void(const std::string&, const Json&)>& fn);
// Drops metrics lines whose step is beyond `step` (after a resume, those steps run again) and a torn
// last line.
void truncate_metrics(const std::string& path, int64_t step);
// The val line of `step` in a metrics file, if there is one (*loss, *bpb).
bool recorded_eval(const std::string& path, int64_t step, double* loss, double* bpb);

// Where a resumed run stands (state.json), each counter within what training can reach: a negative
// step would give a negative learning rate, a negative streak would switch the divergence guard off.
struct RunState {
  int64_t step = 0, loader_epoch = 0, loader_index = 0, nonfinite_streak = 0, tokens_seen = 0;
  int64_t skipped_steps = -1;  // non-finite steps skipped so far (-1: a checkpoint older than the field)
  double train_seconds = 0;
};
RunState read_run_state(const Json& st, const std::string& path);
// AdamW's own step count must be where state.json says the run is (every step taken but the skipped).
void check_optimizer_step(const AdamW& adam, const RunState& s, const std::string& dir);

std::string hex64(uint64_t v);  // 16 hex digits
// A resumed run must read the text it was trained on: `now` against state.json's corpus_hash (if any).
void check_corpus(const Json& st, const std::string& now, const Corpus& corpus, const std::string& path);

// --steps and --lr when not given: the preset's pre-training run, or with --init the fine-tuning recipe
// (kFineTuneLr for kFineTunePercent of the start's steps). Says which defaults applied through `note`.
void apply_step_lr_defaults(TrainOptions& opt, const LoadedCheckpoint* init,
                            const std::function<void(const std::string&)>& note);

// Runs tools/plot on `dir` (no shell). Returns "" when loss.png was drawn, else one line saying why not.
std::string draw_plot(const std::string& dir);

}  // namespace qat
