// The Llama-style decoder for training: token embedding, n_layers blocks of
//   x = x + Wo attention(rope(Wq rmsnorm(x)), rope(Wk rmsnorm(x)), Wv rmsnorm(x))
//   x = x + Wdown (silu(Wgate rmsnorm(x)) * Wup rmsnorm(x))
// then a final RMSNorm and the lm_head (tied to the embedding or not), no biases. Built from the
// autograd ops of src/ops, so backward() gives every gradient. Parameter names are HF Llama's.
// With a QatConfig every quantized linear layer runs quantized_linear (src/quant/fake_quant.h: the
// integer kernel that serving runs, STE/LSQ backward), the learned scales are parameters too
// ("<weight>_scale"), and layers kept at f32 use the fixed-order f32 kernel.
// Read next: decode.h (the KV-cache forward that serving uses), src/quant/fake_quant.h (QAT).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <optional>

#include "models/config.h"
#include "src/nn/params.h"
#include "src/ops/ops.h"
#include "src/quant/scheme.h"

namespace qat {

// One block's parameters, as indices into the ParamStore; the linear layers indexed by Proj (src/nn/proj.h).
struct LayerParams {
  int attn_norm = -1, mlp_norm = -1;
  int w[kBlockProjs] = {-1, -1, -1, -1, -1, -1, -1};          // weights of q k v o gate up down
  int scale[kBlockProjs] = {-1, -1, -1, -1, -1, -1, -1};      // QAT weight scales (-1: none)
  int act_scale[kBlockProjs] = {-1, -1, -1, -1, -1, -1, -1};  // QAT static activation scales
  int weight(Proj p) const { return w[int(p)]; }
};

// What a training step asks of a QAT forward beyond the served computation, owned by the caller (the
// trainer) and passed to forward(), never stored in the model: evaluation and serving pass none.
//  * Quant-Noise (fake_quant_weight_partial): noise < 1 fake-quantizes only a random fraction `noise`
//    of each quantized weight's elements (mask drawn from (noise_key, the weight's parameter index); the
//    trainer draws a new key every step) and multiplies in f32, not with the integer kernels.
//  * Telemetry: when act_sqnr is set, each quantized layer appends the SQNR (dB) of its input
//    activations, keyed "layers.L.<proj name>" / "lm_head" (QAT logs it at evaluations).
struct QatStep {
  float noise = 1.0f;
  uint64_t noise_key = 0;
  std::vector<std::pair<std::string, double>>* act_sqnr = nullptr;
};

class Transformer {
 public:
  explicit Transformer(const ModelConfig& cfg, const QatConfig* qat = nullptr);
  // For forwards only (evaluation, PTQ, export, a distillation teacher): no gradient buffer
  // (ParamStore::finalize(false)); backward through it is an error.
  struct Frozen {};
  Transformer(const ModelConfig& cfg, const QatConfig* qat, Frozen);
  // Every parameter's name and shape for (cfg, qat), allocating nothing: what a checkpoint of this
  // model may hold, checked against a file's header before any tensor is read.
  static std::vector<std::pair<std::string, Shape>> param_layout(const ModelConfig& cfg, const QatConfig* qat = nullptr);

  ModelConfig cfg;
  std::optional<QatConfig> qat;  // set: a QAT model
  ParamStore params;
  int tok_embd = -1, final_norm = -1, lm_head = -1;  // lm_head == tok_embd when tied
  int embed_scale = -1, lm_head_scale = -1, lm_head_act_scale = -1;  // QAT (tied: lm_head_scale == embed_scale)
  std::vector<LayerParams> layers;

  // Normal(0, 0.02) weights (output projections scaled by 1/sqrt(2 n_layers)), unit norms; values are
  // a pure function of (seed, parameter index, element index).
  void init_weights(uint64_t seed);

  // ids (B, T) s32 -> logits (B, T, V). `step`: a QAT training step's extras (none: the served forward).
  Tensor forward(const Tensor& ids, const QatStep* step = nullptr);
  // Mean cross-entropy of forward(ids) against targets (B, T) s32 (-1 = ignore).
  Tensor loss(const Tensor& ids, const Tensor& targets, const QatStep* step = nullptr);

  // One linear layer: projection p of block `layer` (Proj::lm_head: layer ignored).
  // FP32 model: linear() (OpenBLAS); QAT: quantized_linear() or, for layers kept f32, fixed_linear().
  Tensor project(const Tensor& x, Proj p, int layer, const QatStep* step = nullptr);
  // The embedding table as the forward uses it: fake-quantized when the embedding is quantized.
  Tensor embedding_table(const QatStep* step = nullptr);

  // QAT: initial scales from the current weights (QatConfig::scale_init), clamping scales into the
  // f16 normal range after an optimizer step, and zeroing their gradients (frozen scales).
  void init_qat_scales();
  void clamp_qat_scales();
  void zero_qat_scale_grads();
  bool is_scale_param(int index) const;
  // QAT oscillation dampening after an optimizer step: dampen_toward_grid on every quantized weight.
  void dampen_qat_weights(float rate);
  // Calls f(name, weight index, scale index, format) for every quantized weight (export, SQNR).
  void for_each_quantized(const std::function<void(const std::string&, int, int, const LayerQuant&)>& f) const;

 private:
  struct LayoutOnly {};
  Transformer(const ModelConfig& cfg, const QatConfig* qat, LayoutOnly);  // declares, does not allocate
};

}  // namespace qat
