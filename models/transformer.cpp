// The training forward of the Llama-style decoder (see transformer.h).
#include "models/transformer.h"

#include <cmath>

#include "src/core/rng.h"
#include "src/quant/fake_quant.h"
#include "kernels/ref/quant.h"
#include "src/quant/scale_init.h"

namespace qat {

Transformer::Transformer(const ModelConfig& c, const QatConfig* q) : Transformer(c, q, LayoutOnly{}) {
  params.finalize();
}

std::vector<std::pair<std::string, Shape>> Transformer::param_layout(const ModelConfig& c, const QatConfig* q) {
  Transformer t(c, q, LayoutOnly{});
  std::vector<std::pair<std::string, Shape>> out;
  for (const ParamInfo& p : t.params.infos()) out.emplace_back(p.name, p.shape);
  return out;
}

// Declares every parameter (names, shapes, indices); the public constructor then allocates them.
Transformer::Transformer(const ModelConfig& c, const QatConfig* q, LayoutOnly) : cfg(c) {
  cfg.validate();
  if (q) qat = *q;
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
  if (qat) {
    QAT_CHECK(qat->n_layers == cfg.n_layers && qat->tied == cfg.tied, "QAT config does not match the model");
    // Scale parameters: (N, K/G) per quantized weight, (1) per static activation scale; no decay.
    auto add_scales = [&](int w, const LayerQuant& f, int* scale, int* act_scale) {
      if (!f.quantized()) return;
      const ParamInfo& info = params.info(w);
      int64_t N = info.shape[0], K = info.shape[1], G = f.group(K);
      QAT_CHECK(K % G == 0, "QAT ", f.name(), ": ", info.name, " has K = ", K, ", not a multiple of ", G);
      *scale = params.add(info.name + "_scale", {N, K / G}, false, true);
      if (act_scale && f.a == AQuant::int8_static)
        *act_scale = params.add(info.name.substr(0, info.name.size() - 7) + ".input_scale", {1}, false, true);
    };
    for (int64_t l = 0; l < cfg.n_layers; l++)
      for (int k = 0; k < 7; k++)
        add_scales(layers[size_t(l)].weight(k), qat->linear(int(l), k), &layers[size_t(l)].scale[k],
                   &layers[size_t(l)].act_scale[k]);
    if (cfg.tied) {
      add_scales(tok_embd, qat->embed, &embed_scale, nullptr);
      lm_head_scale = embed_scale;
      if (qat->lm_head.a == AQuant::int8_static) lm_head_act_scale = params.add("lm_head.input_scale", {1}, false, true);
    } else {
      add_scales(tok_embd, qat->embed, &embed_scale, nullptr);
      add_scales(lm_head, qat->lm_head, &lm_head_scale, &lm_head_act_scale);
    }
  }
}

Tensor Transformer::project(const Tensor& x, int kind, int layer) {
  const LayerParams* L = kind < 7 ? &layers[size_t(layer)] : nullptr;
  const Tensor& w = params[L ? L->weight(kind) : lm_head];
  if (!qat) return linear(x, w);
  const LayerQuant& f = qat->linear(layer, kind);
  if (!f.quantized()) return fixed_linear(x, w);
  int s = L ? L->scale[kind] : lm_head_scale, a = L ? L->act_scale[kind] : lm_head_act_scale;
  Tensor act = a >= 0 ? params[a] : Tensor();
  if (act.defined() && act.f32()[0] == 0.0f) {  // static activation scale: calibrated on the first batch
    Tensor xc = x.contiguous();
    float amax = 0;
    for (int64_t i = 0; i < xc.numel(); i++) amax = std::max(amax, std::fabs(xc.f32()[i]));
    act.f32()[0] = learned_scale(amax / 127.0f);
  }
  if (act_sqnr && f.a != AQuant::none) {
    NoGrad ng;
    Tensor xc = x.contiguous(), xh = fake_quant_act(xc, f.a, act);
    static const char* kinds[8] = {"q", "k", "v", "o", "gate", "up", "down", "lm_head"};
    act_sqnr->push_back({kind == 7 ? std::string("lm_head") : str("layers.", layer, ".", kinds[kind]),
                         sqnr_db(xc.f32(), xh.f32(), xc.numel())});
  }
  if (qat_noise < 1.0f) {
    const int wi = L ? L->weight(kind) : lm_head;
    return linear(fake_quant_act(x, f.a, act),
                  fake_quant_weight_partial(w, params[s], f, qat->identity_ste, qat_noise, qat_noise_key, uint64_t(wi)));
  }
  return quantized_linear(x, w, params[s], act, f, qat->identity_ste);
}

Tensor Transformer::embedding_table() {
  if (!qat || !qat->embed.quantized()) return params[tok_embd];
  if (qat_noise < 1.0f)
    return fake_quant_weight_partial(params[tok_embd], params[embed_scale], qat->embed, qat->identity_ste, qat_noise,
                                     qat_noise_key, uint64_t(tok_embd));
  return fake_quant_weight(params[tok_embd], params[embed_scale], qat->embed, qat->identity_ste);
}

void Transformer::for_each_quantized(const std::function<void(const std::string&, int, int, const LayerQuant&)>& f) const {
  if (!qat) return;
  for (int64_t l = 0; l < cfg.n_layers; l++)
    for (int k = 0; k < 7; k++) {
      const LayerParams& L = layers[size_t(l)];
      if (L.scale[k] >= 0) f(params.info(L.weight(k)).name, L.weight(k), L.scale[k], qat->linear(int(l), k));
    }
  if (embed_scale >= 0) f(params.info(tok_embd).name, tok_embd, embed_scale, qat->embed);
  if (!cfg.tied && lm_head_scale >= 0) f(params.info(lm_head).name, lm_head, lm_head_scale, qat->lm_head);
}

void Transformer::init_qat_scales() {
  for_each_quantized([&](const std::string&, int w, int s, const LayerQuant& f) {
    const ParamInfo& info = params.info(w);
    init_scales(params[w].f32(), info.shape[0], info.shape[1], f, qat->scale_init, params[s].f32());
  });
  for (const LayerParams& L : layers)
    for (int a : L.act_scale)
      if (a >= 0) params[a].f32()[0] = 0.0f;  // calibrated on the first forward
  if (lm_head_act_scale >= 0) params[lm_head_act_scale].f32()[0] = 0.0f;
}

void Transformer::dampen_qat_weights(float rate) {
  for_each_quantized([&](const std::string&, int w, int s, const LayerQuant& f) {
    const ParamInfo& info = params.info(w);
    dampen_toward_grid(params[w].f32(), params[s].f32(), info.shape[0], info.shape[1], f, rate);
  });
}

bool Transformer::is_scale_param(int index) const {
  const std::string& n = params.info(index).name;
  return n.size() > 6 && (n.compare(n.size() - 6, 6, "_scale") == 0 || n.compare(n.size() - 12, 12, ".input_scale") == 0);
}

void Transformer::clamp_qat_scales() {
  for (int i = 0; i < params.size(); i++)
    if (is_scale_param(i)) {
      float* p = params[i].f32();
      for (int64_t j = 0; j < params.info(i).numel; j++) p[j] = std::min(std::max(p[j], 6.103515625e-05f), 65504.0f);
    }
}

void Transformer::zero_qat_scale_grads() {
  for (int i = 0; i < params.size(); i++)
    if (is_scale_param(i)) params[i].zero_grad();
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
  Tensor x = embedding(embedding_table(), ids);  // (B, T, C)
  for (int l = 0; l < int(layers.size()); l++) {
    const LayerParams& L = layers[size_t(l)];
    Tensor h = rmsnorm(x, params[L.attn_norm], cfg.rms_eps);
    Tensor q = rope(project(h, 0, l).reshape({B, T, H, D}), 0, cfg.rope_base);
    Tensor k = rope(project(h, 1, l).reshape({B, T, Hkv, D}), 0, cfg.rope_base);
    Tensor v = project(h, 2, l).reshape({B, T, Hkv, D});
    Tensor a = causal_attention(q, k, v).reshape({B, T, H * D});
    x = add(x, project(a, 3, l));
    h = rmsnorm(x, params[L.mlp_norm], cfg.rms_eps);
    Tensor g = swiglu(project(h, 4, l), project(h, 5, l));
    x = add(x, project(g, 6, l));
  }
  x = rmsnorm(x, params[final_norm], cfg.rms_eps);
  return project(x, 7, -1);  // (B, T, V)
}

Tensor Transformer::loss(const Tensor& ids, const Tensor& targets) {
  Tensor logits = forward(ids);
  int64_t BT = ids.numel();
  return cross_entropy(logits.reshape({BT, cfg.vocab}), targets.reshape({BT}));
}

}  // namespace qat
