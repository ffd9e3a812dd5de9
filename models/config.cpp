// Presets and config.json for ModelConfig.
#include "models/config.h"

#include <cmath>

#include "src/util/error.h"

namespace qat {

int64_t ModelConfig::dim(Dim d) const {
  switch (d) {
    case Dim::C: return d_model;
    case Dim::HD: return n_heads * head_dim();
    case Dim::HkvD: return n_kv_heads * head_dim();
    case Dim::F: return ffn;
    case Dim::V: return vocab;
  }
  return 0;
}

int64_t ModelConfig::n_params() const {
  int64_t C = d_model, D = head_dim();
  int64_t per_layer = 2 * C + C * n_heads * D + 2 * C * n_kv_heads * D + n_heads * D * C + 3 * C * ffn;
  return vocab * C * (tied ? 1 : 2) + n_layers * per_layer + C;
}

void ModelConfig::validate() const {
  auto in = [](const char* name, int64_t v, int64_t lo, int64_t hi) {
    QAT_CHECK(v >= lo && v <= hi, "config: ", name, " = ", v, " is outside [", lo, ", ", hi, "]");
  };
  in("vocab_size", vocab, 2, 1 << 20);
  in("max_position_embeddings", context, 1, 1 << 20);
  in("num_hidden_layers", n_layers, 1, 1024);
  in("hidden_size", d_model, 2, 1 << 16);
  in("num_attention_heads", n_heads, 1, 1024);
  in("num_key_value_heads", n_kv_heads, 1, n_heads);
  in("intermediate_size", ffn, 1, 1 << 20);
  QAT_CHECK(d_model % n_heads == 0, "config: hidden_size ", d_model, " is not a multiple of num_attention_heads ", n_heads);
  QAT_CHECK(head_dim() % 2 == 0, "config: head dim ", head_dim(), " must be even for RoPE");
  QAT_CHECK(n_heads % n_kv_heads == 0, "config: num_attention_heads ", n_heads,
            " is not a multiple of num_key_value_heads ", n_kv_heads);
  QAT_CHECK(std::isfinite(rms_eps) && rms_eps > 0 && rms_eps < 1, "config: rms_norm_eps = ", rms_eps, " must be in (0, 1)");
  QAT_CHECK(std::isfinite(rope_base) && rope_base > 1, "config: rope_theta = ", rope_base, " must be > 1");
}

Json ModelConfig::to_json() const {
  Json j = Json::object();
  j.set("model_type", "llama");
  Json arch = Json::array();
  arch.push("LlamaForCausalLM");
  j.set("architectures", arch);
  j.set("vocab_size", vocab);
  j.set("max_position_embeddings", context);
  j.set("num_hidden_layers", n_layers);
  j.set("hidden_size", d_model);
  j.set("num_attention_heads", n_heads);
  j.set("num_key_value_heads", n_kv_heads);
  j.set("intermediate_size", ffn);
  j.set("rms_norm_eps", double(rms_eps));
  j.set("rope_theta", double(rope_base));
  j.set("tie_word_embeddings", tied);
  j.set("hidden_act", "silu");
  j.set("attention_bias", false);
  j.set("rope_layout", "adjacent_pairs");
  if (!preset.empty()) j.set("qat_preset", preset);
  return j;
}

const std::vector<ShapeField>& shape_fields() {
  static const std::vector<ShapeField> f = {
      {"vocab_size", "--vocab", &ModelConfig::vocab},
      {"max_position_embeddings", "--ctx", &ModelConfig::context},
      {"num_hidden_layers", "--layers", &ModelConfig::n_layers},
      {"hidden_size", "--dim", &ModelConfig::d_model},
      {"num_attention_heads", "--heads", &ModelConfig::n_heads},
      {"num_key_value_heads", "--kv-heads", &ModelConfig::n_kv_heads},
      {"intermediate_size", "--ffn", &ModelConfig::ffn}};
  return f;
}

// The rope_layout key: absent is reported through *absent, "adjacent_pairs" is ours, anything else refused.
static void check_rope_layout(const Json& j, bool* absent) {
  const Json* layout = j.find("rope_layout");
  *absent = layout == nullptr;
  if (layout)
    QAT_CHECK(layout->is_string() && layout->as_string() == "adjacent_pairs",
              "config: rope_layout must be \"adjacent_pairs\" (the layout qat trains and serves)");
}

static int64_t int_key(const Json& j, const char* key) {
  try { return j.at(key).as_int(); } catch (const Error& e) { fail("config: ", key, ": ", e.what()); }
}

static float real_key(const Json& j, const char* key) {
  try { return float(j.at(key).as_double()); } catch (const Error& e) { fail("config: ", key, ": ", e.what()); }
}

static bool bool_key(const Json& j, const char* key) {
  try { return j.at(key).as_bool(); } catch (const Error& e) { fail("config: ", key, ": ", e.what()); }
}

ModelConfig apply_config_keys(ModelConfig c, const Json& j, bool* rope_defaulted) {
  QAT_CHECK(j.is_object(), "config: expected a JSON object");
  for (const ShapeField& f : shape_fields())
    if (j.contains(f.key)) c.*f.member = int_key(j, f.key);
  // Hugging Face's rule: no num_key_value_heads means one KV head per head (not the preset's grouping).
  if (j.contains("num_attention_heads") && !j.contains("num_key_value_heads")) c.n_kv_heads = c.n_heads;
  if (j.contains("rms_norm_eps")) c.rms_eps = real_key(j, "rms_norm_eps");
  if (j.contains("rope_theta")) c.rope_base = real_key(j, "rope_theta");
  if (j.contains("tie_word_embeddings")) c.tied = bool_key(j, "tie_word_embeddings");
  check_rope_layout(j, rope_defaulted);
  return c;
}

ModelConfig ModelConfig::from_json(const Json& j) {
  QAT_CHECK(j.is_object(), "config: expected a JSON object");
  ModelConfig c;
  c.vocab = int_key(j, "vocab_size");
  c.context = int_key(j, "max_position_embeddings");
  c.n_layers = int_key(j, "num_hidden_layers");
  c.d_model = int_key(j, "hidden_size");
  c.n_heads = int_key(j, "num_attention_heads");
  c.n_kv_heads = j.contains("num_key_value_heads") ? int_key(j, "num_key_value_heads") : c.n_heads;
  c.ffn = int_key(j, "intermediate_size");
  c.rms_eps = real_key(j, "rms_norm_eps");
  c.rope_base = j.contains("rope_theta") ? real_key(j, "rope_theta") : 10000.0f;
  c.tied = j.contains("tie_word_embeddings") ? bool_key(j, "tie_word_embeddings") : false;
  bool no_layout = false;
  check_rope_layout(j, &no_layout);
  QAT_CHECK(!no_layout, "config: no rope_layout: a config.json without it is a Hugging Face Llama one, whose q/k "
            "weights use the rotate-half layout; qat checkpoints say \"adjacent_pairs\"");
  if (const Json* p = j.find("qat_preset"); p && p->is_string()) c.preset = p->as_string();
  c.validate();
  return c;
}

ModelConfig ModelConfig::preset_named(const std::string& name) {
  ModelConfig c;
  c.preset = name;
  if (name == "tiny") {
    c.context = 32; c.n_layers = 2; c.d_model = 32; c.n_heads = 4; c.n_kv_heads = 2; c.ffn = 64;
  } else if (name == "small") {
    c.context = 128; c.n_layers = 4; c.d_model = 192; c.n_heads = 6; c.n_kv_heads = 3; c.ffn = 512;
  } else if (name == "base") {
    c.context = 256; c.n_layers = 8; c.d_model = 320; c.n_heads = 8; c.n_kv_heads = 4; c.ffn = 864;
  } else if (name == "15m") {  // llama2.c stories15M's shape
    c.context = 256; c.n_layers = 6; c.d_model = 288; c.n_heads = 6; c.n_kv_heads = 6; c.ffn = 768;
  } else if (name == "110m") {  // llama2.c stories110M's shape
    c.context = 1024; c.n_layers = 12; c.d_model = 768; c.n_heads = 12; c.n_kv_heads = 12; c.ffn = 2048;
  } else {
    throw UsageError(str("--preset: expected ", preset_names(), ", got '", name, "'"));
  }
  return c;
}

const char* ModelConfig::preset_names() { return "tiny, small, base, 15m or 110m"; }

}  // namespace qat
