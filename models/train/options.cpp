// The options of a training run: presets' defaults, the one table of accepted ranges (bin/train's flags
// and a resumed state.json both read it), and their JSON form in state.json (see trainer.h).
#include <cmath>

#include "data/corpus.h"
#include "models/config.h"
#include "models/train/trainer.h"
#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {

void preset_defaults(const std::string& preset, int64_t* steps, double* lr) {
  if (preset == "tiny") { *steps = 200; *lr = 3e-3; }
  else if (preset == "small") { *steps = 1000; *lr = 2e-3; }
  else if (preset == "110m") { *steps = 4000; *lr = 5e-4; }  // llama2.c's rate for stories110M
  else { *steps = 4000; *lr = 1e-3; }
}

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
  j.set("documents", documents);  // as load_corpus resolved it: eval and --resume read the same split
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
  (void)ModelConfig::preset_named(j.at("preset").as_string());  // one of ModelConfig::preset_names()
  const std::string init = j.at("qat_scale_init").as_string();
  QAT_CHECK(init == "minmax" || init == "mse", "options.qat_scale_init is '", init, "', expected minmax or mse");
  if (const Json* d = j.find("documents")) (void)parse_doc_mode(d->as_string());
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
  // --documents: absent before it existed, when a file was split at '%' lines or else at blank lines.
  const Json* docs = j.find("documents");
  o.documents = docs ? docs->as_string() : doc_mode_name(DocMode::blank_line);
  // cache_dir (in older checkpoints) is not read: it is where this machine writes, which a checkpoint
  // from elsewhere must not choose; the cache is keyed and validated, so any directory gives the same run.
  return o;
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

}  // namespace qat
