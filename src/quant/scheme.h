// QAT schemes: which weight and activation format each linear layer (and the embedding) uses.
//   q4_0 = q4_0 weights (learned f16 block scales) x q8_0 activations  (default; served)
//   q8_0 = q8_0 weights x q8_0 activations                              (served)
//   w8a8 = per-channel int8 weights x per-token int8 activations        (served)
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

struct LayerQuant {
  WQuant w = WQuant::none;
  AQuant a = AQuant::none;
  bool quantized() const { return w != WQuant::none; }
  bool served() const;                  // an integer kernel runs it (and generate can serve it)
  const WeightFormat& format() const { return weight_format(w); }
  int64_t group(int64_t K) const { return format().group > 0 ? format().group : K; }  // elements per scale
  int code_min() const { return format().code_min; }
  int code_max() const { return format().code_max; }
  std::string name() const;             // the scheme name: "q4_0", ..., "f32"
  bool operator==(const LayerQuant& o) const { return w == o.w && a == o.a; }
};

LayerQuant scheme_layer(const std::string& scheme);  // UsageError on an unknown name

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
  const LayerQuant& linear(int layer, Proj p) const;  // Proj::lm_head: layer ignored
  bool any_static_acts() const;

  Json to_json() const;                 // config.json "quantization_config"
  static QatConfig from_json(const Json& j, int64_t n_layers, bool tied);
};

}  // namespace qat
