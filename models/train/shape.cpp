// The model shape of a training run from preset, --config and flags (see shape.h).
#include "models/train/shape.h"

#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"

namespace qat {

bool ShapeFlags::custom() const {
  return !config.empty() || layers > 0 || dim > 0 || heads > 0 || kv_heads > 0 || ffn > 0 || rope_theta > 0;
}

namespace {

Json read_config_file(const std::string& path) {
  try {
    return Json::parse(read_file(path, 1 << 20));
  } catch (const Error& e) {
    throw UsageError(str("--config ", path, ": ", e.what()));
  }
}

// The flag's value for a field of shape_fields() (0: not given; --vocab and --ctx are not shape flags).
int64_t flag_value(const ShapeFlags& f, const ShapeField& field) {
  const std::string flag = field.flag;
  if (flag == "--layers") return f.layers;
  if (flag == "--dim") return f.dim;
  if (flag == "--heads") return f.heads;
  if (flag == "--kv-heads") return f.kv_heads;
  if (flag == "--ffn") return f.ffn;
  return 0;
}

// `base` with the --config keys, then the flags, applied. *file_keys: the parsed file (null object: none).
ModelConfig apply_shape(const ModelConfig& base, const ShapeFlags& f, Json* file, bool* rope_defaulted) {
  ModelConfig c = base;
  *rope_defaulted = false;
  *file = Json::object();
  if (!f.config.empty()) {
    *file = read_config_file(f.config);
    try {
      c = apply_config_keys(c, *file, rope_defaulted);
    } catch (const Error& e) {
      throw UsageError(str("--config ", f.config, ": ", e.what()));
    }
  }
  for (const ShapeField& field : shape_fields())
    if (const int64_t v = flag_value(f, field); v > 0) c.*field.member = v;
  if (f.rope_theta > 0) c.rope_base = float(f.rope_theta);
  return c;
}

}  // namespace

ModelConfig new_run_shape(const std::string& preset, int64_t vocab, int64_t ctx, const ShapeFlags& f,
                          const std::function<void(const std::string&)>& note) {
  ModelConfig base = ModelConfig::preset_named(preset);
  base.vocab = vocab;
  Json file;
  bool rope_defaulted = false;
  ModelConfig c = apply_shape(base, f, &file, &rope_defaulted);
  if (f.vocab_given) c.vocab = vocab;  // --vocab over the file's vocab_size
  if (ctx > 0) c.context = ctx;
  if (f.custom()) c.preset = "";
  if (rope_defaulted)
    note(str("note: --config ", f.config, " has no rope_layout: training with ours, adjacent_pairs (written to "
             "config.json)"));
  try {
    c.validate();
  } catch (const Error& e) {
    throw UsageError(str("model shape: ", e.what()));
  }
  return c;
}

void check_shape_agrees(const ModelConfig& ck, const ShapeFlags& f, const std::string& ck_name) {
  Json file;
  bool rope_defaulted = false;
  const ModelConfig c = apply_shape(ck, f, &file, &rope_defaulted);
  // Who set a field: its flag when given, else the --config file.
  auto source = [&](const char* flag, bool given, const char* key, const std::string& value) {
    return given ? str(flag, " ", value) : str("--config ", f.config, "'s ", key, " ", value);
  };
  for (const ShapeField& field : shape_fields())
    if (c.*field.member != ck.*field.member)
      throw UsageError(str(source(field.flag, flag_value(f, field) > 0, field.key, std::to_string(c.*field.member)),
                           " conflicts with ", ck_name, "'s ", field.key, " ", ck.*field.member,
                           " (the run has its checkpoint's shape)"));
  if (c.rope_base != ck.rope_base)
    throw UsageError(str(source("--rope-theta", f.rope_theta > 0, "rope_theta", str(c.rope_base)), " conflicts with ",
                         ck_name, "'s rope_theta ", ck.rope_base, " (the run has its checkpoint's shape)"));
  if (c.rms_eps != ck.rms_eps || c.tied != ck.tied)
    throw UsageError(str("--config ", f.config, "'s ", c.tied != ck.tied ? "tie_word_embeddings" : "rms_norm_eps",
                         " conflicts with ", ck_name, " (the run has its checkpoint's shape)"));
}

// The model shape beyond the preset (models/train/shape.h): a Hugging Face config.json, then a flag per
// field (0: not given, the preset's or the file's value). Missing keys keep the preset's values; --vocab
// and --ctx override the file too.
void declare_shape_options(ArgParser& p, ShapeFlags* sh) {
  p.option("--config", &sh->config, "model shape from a Hugging Face config.json (hidden_size, num_hidden_layers, "
           "num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings, "
           "rope_theta, rms_norm_eps, tie_word_embeddings); keys it lacks keep the preset's", "FILE");
  p.option("--layers", &sh->layers, "number of decoder layers (num_hidden_layers)", 1, 1024);
  p.option("--dim", &sh->dim, "model width C (hidden_size)", 2, 1 << 16);
  p.option("--heads", &sh->heads, "attention heads H (num_attention_heads); C / H must be even", 1, 1024);
  p.option("--kv-heads", &sh->kv_heads, "key/value heads (num_key_value_heads), dividing --heads", 1, 1024);
  p.option("--ffn", &sh->ffn, "SwiGLU hidden size F (intermediate_size)", 1, 1 << 20);
  p.option("--rope-theta", &sh->rope_theta, "RoPE base (rope_theta), above 1", 1, 1e12);
}

}  // namespace qat
