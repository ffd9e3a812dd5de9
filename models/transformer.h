// The Llama-style decoder for training: token embedding, n_layers blocks of
//   x = x + Wo attention(rope(Wq rmsnorm(x)), rope(Wk rmsnorm(x)), Wv rmsnorm(x))
//   x = x + Wdown (silu(Wgate rmsnorm(x)) * Wup rmsnorm(x))
// then a final RMSNorm and the lm_head (tied to the embedding or not), no biases. Built from the
// autograd ops of src/ops, so backward() gives every gradient. Parameter names are HF Llama's.
// Read next: decode.h (the KV-cache forward that serving uses), src/quant/ (QAT).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "models/config.h"
#include "src/nn/params.h"
#include "src/ops/ops.h"

namespace qat {

// Which linear layer of the model: used by QAT to pick a format per layer.
enum class LinearKind : uint8_t { q, k, v, o, gate, up, down, lm_head };
const char* linear_kind_name(LinearKind k);  // "q_proj", ..., "lm_head"

struct LayerParams {
  int attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down;  // indices into ParamStore
};

class Transformer {
 public:
  explicit Transformer(const ModelConfig& cfg);

  ModelConfig cfg;
  ParamStore params;
  int tok_embd = -1, final_norm = -1, lm_head = -1;  // lm_head == tok_embd when tied
  std::vector<LayerParams> layers;

  // Normal(0, 0.02) weights (output projections scaled by 1/sqrt(2 n_layers)), unit norms; values are
  // a pure function of (seed, parameter index, element index).
  void init_weights(uint64_t seed);

  // ids (B, T) s32 -> logits (B, T, V).
  Tensor forward(const Tensor& ids);
  // Mean cross-entropy of forward(ids) against targets (B, T) s32 (-1 = ignore).
  Tensor loss(const Tensor& ids, const Tensor& targets);

  // How every linear layer is computed: y = project(x, weight, kind, layer). Plain linear() unless a
  // QAT scheme installs its quantized matmul here (src/quant/qat.h).
  using Projector = std::function<Tensor(const Tensor& x, const Tensor& w, LinearKind kind, int layer)>;
  Projector project;
};

}  // namespace qat
