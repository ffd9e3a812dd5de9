// QAT schemes: which weight and activation format each linear layer (and the embedding) uses (kSchemes).
//   q4_0 = q4_0 weights (learned f16 block scales) x q8_0 activations  (default; served)
//   q8_0 = q8_0 weights x q8_0 activations                              (served)
//   w8a8 = per-channel int8 weights x per-token int8 activations        (served)
//   tq2_0 / tq1_0 = ternary weights (codes -1, 0, 1, learned f16 scale per 256) x q8_0 activations
//          (served; llama.cpp's TQ2_0 / TQ1_0 blocks; every quantized K must be a multiple of 256)
//   q4_k / q6_k = llama.cpp's K-quants Q4_K / Q6_K (post-training only: PTQ by ggml's rule, exported to GGUF,
//          served as their dequantized f32 weights with f32 activations); q4_k_m = llama.cpp's Q4_K_M mixture
//          (q6_k for the lm_head and, in a layer of every three plus the first and last eighth, attn v and
//          mlp down; q4_k elsewhere)
//   w4 / w8 = per-channel int4 / int8 weights, f32 activations          (weight-only experiments; not served)
//   f32  = not quantized
// Every scheme covers every linear layer, the lm_head and the embedding (a tied embedding/lm_head has
// one format). Overrides: "embed,lm_head=q8_0,layers.0=f32" (a bare name means f32). Read next:
// fake_quant.h (how a format becomes a forward and a backward).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/io/json.h"
#include "src/nn/proj.h"
#include "src/quant/formats.h"

namespace qat {

enum class AQuant : uint8_t { none, q8_0, int8_token, int8_static };

// The named schemes: one row per name. Parsing (scheme_layer), printing (LayerQuant::name), served(),
// the unknown-name error, the binaries' help lists and the GGUF export's general.file_type read it.
struct SchemeInfo {
  const char* name;      // "q4_0", ... as given to --qat, --scheme, --ptq, --qat-keep and in config.json
  WQuant w;
  AQuant a;
  bool served;           // an integer kernel runs it (generate serves it; the GGUF export writes it)
  uint32_t llama_ftype;  // general.file_type of its GGUF export (llama_ftype: 0 ALL_F32, 2 MOSTLY_Q4_0, 7 MOSTLY_Q8_0,
                         // 14 MOSTLY_Q4_K_S, 15 MOSTLY_Q4_K_M, 18 MOSTLY_Q6_K, 36 MOSTLY_TQ1_0, 37 MOSTLY_TQ2_0)
  bool mixture = false;  // its layers are not all w: QatConfig::make applies the mixture's rule
  // What a GGUF file holds and is read back as: the served schemes, the post-training formats and f32.
  bool exported() const { return served || w == WQuant::none || weight_format(w).post_training != nullptr; }
  // What --qat can train: a quantized format with codes and scales (not a post-training format).
  bool trainable() const { return w != WQuant::none && weight_format(w).post_training == nullptr; }
};

inline constexpr SchemeInfo kSchemes[] = {
    {"q4_0", WQuant::q4_0, AQuant::q8_0, true, 2},
    {"q8_0", WQuant::q8_0, AQuant::q8_0, true, 7},
    {"w8a8", WQuant::int8_pc, AQuant::int8_token, true, 7},
    {"tq2_0", WQuant::tq2_0, AQuant::q8_0, true, 37},
    {"tq1_0", WQuant::tq1_0, AQuant::q8_0, true, 36},
    {"q4_k", WQuant::q4_k, AQuant::none, false, 14},
    {"q4_k_m", WQuant::q4_k, AQuant::none, false, 15, true},
    {"q6_k", WQuant::q6_k, AQuant::none, false, 18},
    {"w8a8s", WQuant::int8_pc, AQuant::int8_static, false, 0},  // learned static activation scale
    {"w4", WQuant::int4_pc, AQuant::none, false, 0},
    {"w8", WQuant::int8_pc, AQuant::none, false, 0},
    {"f32", WQuant::none, AQuant::none, false, 0},
};

const SchemeInfo* find_scheme(const std::string& name);  // nullptr for an unknown name
// The scheme names of a set, as a list for help and error text: "q4_0, q8_0, w8a8 or f32".
enum class SchemeSet { all, exported, quantized, trainable };
std::string scheme_names(SchemeSet set);

struct LayerQuant {
  WQuant w = WQuant::none;
  AQuant a = AQuant::none;
  bool quantized() const { return w != WQuant::none; }
  bool served() const;                  // an integer kernel runs it (and generate can serve it): kSchemes
  const WeightFormat& format() const { return weight_format(w); }
  int64_t group(int64_t K) const { return format().group > 0 ? format().group : K; }  // elements per scale
  int code_min() const { return format().code_min; }
  int code_max() const { return format().code_max; }
  std::string name() const;             // the scheme name: "q4_0", ..., "f32"
  bool operator==(const LayerQuant& o) const { return w == o.w && a == o.a; }
  // QAT under o trains the same weights: the same activations and a weight format of the same grid.
  bool trains_as(const LayerQuant& o) const { return a == o.a && same_grid(w, o.w); }
};

LayerQuant scheme_layer(const std::string& scheme);  // UsageError on an unknown name
// The exported scheme a GGUF tensor of type t is read as: the one its qat.tensor_formats entry `hint`
// names when that one is stored as t, else the first stored as t (files we did not write: Q8_0 is
// q8_0 blocks). nullptr when no scheme is stored as t.
const SchemeInfo* scheme_read_from_gguf(GgmlType t, const std::string& hint);

// Layer slots: "embed", "lm_head", and per layer l the kinds q k v o gate up down.
struct QatConfig {
  std::string scheme;                   // the named scheme
  std::string keep;                     // the overrides as given
  std::string scale_init = "mse";       // "minmax" (ggml rule |d|) or "mse" (MSE-optimal clipping)
  bool freeze_scales = false;           // scales stay at their initial values
  bool identity_ste = false;            // pass gradients through clipped weights too
  int64_t n_layers = 0;
  bool tied = true;
  LayerQuant embed, lm_head;
  std::vector<std::vector<LayerQuant>> layers;  // [layer][int(Proj) q .. down]

  // Builds the per-slot formats from a scheme and overrides; throws UsageError on unknown names and
  // on a tied embedding / lm_head given two different formats.
  static QatConfig make(const std::string& scheme, const std::string& keep, int64_t n_layers, bool tied);
  // UsageError naming `flag` when a slot is in a post-training format (K-quants): QAT cannot train it.
  void require_trainable(const char* flag) const;
  const LayerQuant& linear(int layer, Proj p) const;  // Proj::lm_head: layer ignored
  bool any_static_acts() const;

  Json to_json() const;                 // config.json "quantization_config"
  static QatConfig from_json(const Json& j, int64_t n_layers, bool tied);
};

}  // namespace qat
