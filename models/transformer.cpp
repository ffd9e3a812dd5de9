// The training forward of the Llama-style decoder (see transformer.h).
#include "models/transformer.h"

#include <cmath>

#include "src/core/rng.h"

namespace qat {

const char* linear_kind_name(LinearKind k) {
  switch (k) {
    case LinearKind::q: return "q_proj";
    case LinearKind::k: return "k_proj";
    case LinearKind::v: return "v_proj";
    case LinearKind::o: return "o_proj";
    case LinearKind::gate: return "gate_proj";
    case LinearKind::up: return "up_proj";
    case LinearKind::down: return "down_proj";
    case LinearKind::lm_head: return "lm_head";
  }
  return "?";
}

Transformer::Transformer(const ModelConfig& c) : cfg(c) {
  cfg.validate();
  int64_t C = cfg.d_model, D = cfg.head_dim(), H = cfg.n_heads, Hkv = cfg.n_kv_heads, F = cfg.ffn;
  tok_embd = params.add("model.embed_tokens.weight", {cfg.vocab, C}, false);
  for (int64_t l = 0; l < cfg.n_layers; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerParams L;
    L.attn_norm = params.add(p + "input_layernorm.weight", {C}, false);
    L.wq = params.add(p + "self_attn.q_proj.weight", {H * D, C}, true);
    L.wk = params.add(p + "self_attn.k_proj.weight", {Hkv * D, C}, true);
    L.wv = params.add(p + "self_attn.v_proj.weight", {Hkv * D, C}, true);
    L.wo = params.add(p + "self_attn.o_proj.weight", {C, H * D}, true);
    L.mlp_norm = params.add(p + "post_attention_layernorm.weight", {C}, false);
    L.w_gate = params.add(p + "mlp.gate_proj.weight", {F, C}, true);
    L.w_up = params.add(p + "mlp.up_proj.weight", {F, C}, true);
    L.w_down = params.add(p + "mlp.down_proj.weight", {C, F}, true);
    layers.push_back(L);
  }
  final_norm = params.add("model.norm.weight", {C}, false);
  lm_head = cfg.tied ? tok_embd : params.add("lm_head.weight", {cfg.vocab, C}, true);
  params.finalize();
  project = [](const Tensor& x, const Tensor& w, LinearKind, int) { return linear(x, w); };
}

void Transformer::init_weights(uint64_t seed) {
  float out_std = 0.02f / std::sqrt(2.0f * float(cfg.n_layers));
  for (int i = 0; i < params.size(); i++) {
    const ParamInfo& info = params.info(i);
    float* p = params[i].f32();
    bool is_norm = info.shape.size() == 1;
    bool is_out = info.name.find("o_proj") != std::string::npos || info.name.find("down_proj") != std::string::npos;
    float std = is_out ? out_std : 0.02f;
    for (int64_t j = 0; j < info.numel; j++) p[j] = is_norm ? 1.0f : std * rng_normal(seed, uint64_t(i) + 1, uint64_t(j));
  }
}

Tensor Transformer::forward(const Tensor& ids) {
  QAT_CHECK(ids.ndim() == 2 && ids.dtype() == DType::s32, "forward: ids must be s32 (B, T), got ", ids.shape_string());
  int64_t B = ids.dim(0), T = ids.dim(1), H = cfg.n_heads, Hkv = cfg.n_kv_heads, D = cfg.head_dim();
  QAT_CHECK(T <= cfg.context, "forward: sequence length ", T, " exceeds the model context ", cfg.context);
  Tensor x = embedding(params[tok_embd], ids);  // (B, T, C)
  for (int l = 0; l < int(layers.size()); l++) {
    const LayerParams& L = layers[size_t(l)];
    Tensor h = rmsnorm(x, params[L.attn_norm], cfg.rms_eps);
    Tensor q = rope(project(h, params[L.wq], LinearKind::q, l).reshape({B, T, H, D}), 0, cfg.rope_base);
    Tensor k = rope(project(h, params[L.wk], LinearKind::k, l).reshape({B, T, Hkv, D}), 0, cfg.rope_base);
    Tensor v = project(h, params[L.wv], LinearKind::v, l).reshape({B, T, Hkv, D});
    Tensor a = causal_attention(q, k, v).reshape({B, T, H * D});
    x = add(x, project(a, params[L.wo], LinearKind::o, l));
    h = rmsnorm(x, params[L.mlp_norm], cfg.rms_eps);
    Tensor g = swiglu(project(h, params[L.w_gate], LinearKind::gate, l), project(h, params[L.w_up], LinearKind::up, l));
    x = add(x, project(g, params[L.w_down], LinearKind::down, l));
  }
  x = rmsnorm(x, params[final_norm], cfg.rms_eps);
  return project(x, params[lm_head], LinearKind::lm_head, -1);  // (B, T, V)
}

Tensor Transformer::loss(const Tensor& ids, const Tensor& targets) {
  Tensor logits = forward(ids);
  int64_t BT = ids.numel();
  return cross_entropy(logits.reshape({BT, cfg.vocab}), targets.reshape({BT}));
}

}  // namespace qat
