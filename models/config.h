// Model configuration of the Llama-style decoder: sizes, presets, and config.json (HF Llama key names,
// plus "rope_layout": "adjacent_pairs" because our q/k weights rotate adjacent pairs, as llama.cpp's
// `llama` architecture does, not HF's rotate-half). Read next: transformer.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/io/json.h"
#include "src/nn/proj.h"

namespace qat {

struct ModelConfig {
  int64_t vocab = 1024;     // V
  int64_t context = 256;    // longest sequence T the model is trained for
  int64_t n_layers = 4;
  int64_t d_model = 256;    // C
  int64_t n_heads = 8;      // H
  int64_t n_kv_heads = 4;   // Hkv (grouped-query attention when < H)
  int64_t ffn = 768;        // F, SwiGLU hidden size
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  bool tied = true;         // lm_head shares the token embedding
  std::string preset;       // informational

  int64_t head_dim() const { return d_model / n_heads; }  // D
  int64_t dim(Dim d) const;                               // the size of one dimension letter
  int64_t proj_rows(Proj p) const { return dim(proj_info(p).rows); }  // N of the projection's weight
  int64_t proj_cols(Proj p) const { return dim(proj_info(p).cols); }  // K
  int64_t n_params() const;
  void validate() const;  // throws qat::Error naming the bad field

  Json to_json() const;
  // A checkpoint's config.json, untrusted: every field checked. rope_layout must be there and say
  // "adjacent_pairs": every checkpoint qat writes has it, and a config.json without it is a Hugging
  // Face Llama one, whose q/k weights rotate half-dimensions (rotate-half), not adjacent pairs;
  // reading those weights as ours would give a wrong model silently, so it is refused.
  static ModelConfig from_json(const Json& j);
  // "tiny" (tests), "small" (the demo), "base" (~10M parameters), and two shapes of llama2.c's
  // TinyStories models: "15m" (dim 288, 6 layers, 6 heads, ffn 768, ctx 256) and "110m" (dim 768, 12
  // layers, 12 heads, ffn 2048, ctx 1024). vocab is left to the tokenizer (bin/train --vocab): at
  // llama2.c's 32000 they have 15.2M and 109.5M parameters.
  static ModelConfig preset_named(const std::string& name);
  static const char* preset_names();  // "tiny, small, base, 15m or 110m", for messages
};

// The shape fields a Hugging Face config.json names, with the member each one sets: one table for
// bin/train --config, its override flags and the conflict check against a checkpoint.
struct ShapeField {
  const char* key;   // config.json key
  const char* flag;  // bin/train's override flag ("" where --config alone sets it)
  int64_t ModelConfig::*member;
};
const std::vector<ShapeField>& shape_fields();

// The shape `base` with every key `j` holds replaced (a --config file: HF Llama keys, any subset; the
// keys not in the table, e.g. architectures, are ignored). rope_layout, which no HF config has, means
// our adjacent_pairs when absent (*rope_defaulted set: the caller says so); any other layout is refused,
// since bin/train trains adjacent pairs only. Not validated: the caller validates the final shape.
ModelConfig apply_config_keys(ModelConfig base, const Json& j, bool* rope_defaulted);

}  // namespace qat
