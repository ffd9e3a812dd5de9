// Model configuration of the Llama-style decoder: sizes, presets, and config.json (HF Llama key names,
// plus "rope_layout": "adjacent_pairs" because our q/k weights rotate adjacent pairs, as llama.cpp's
// `llama` architecture does, not HF's rotate-half). Read next: transformer.h.
#pragma once
#include <cstdint>
#include <string>

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
  static ModelConfig from_json(const Json& j);  // untrusted: every field checked
  // "tiny" (tests), "small" (the demo), "base" (~10M parameters). vocab is left to the tokenizer.
  static ModelConfig preset_named(const std::string& name);
};

}  // namespace qat
