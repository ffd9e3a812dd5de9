// state.json, the metrics log and the defaults of a run (see run_state.h).
#include "models/train/run_state.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {

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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace qat
