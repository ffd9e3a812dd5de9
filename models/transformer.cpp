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

Transformer::Transformer(const ModelConfig& c, const QatConfig* q, Frozen) : Transformer(c, q, LayoutOnly{}) {
  params.finalize(false);
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
  const int64_t C = cfg.d_model;
  tok_embd = params.add("model.embed_tokens.weight", {cfg.vocab, C}, false);
  for (int64_t l = 0; l < cfg.n_layers; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerParams L;
    L.attn_norm = params.add(p + "input_layernorm.weight", {C}, false);
    auto add_proj = [&](Proj j) {  // HF name and (N, K) shape from the projection table
      L.w[int(j)] = params.add(p + proj_info(j).hf + ".weight", {cfg.proj_rows(j), cfg.proj_cols(j)}, true);
    };
    for (Proj j : {Proj::q, Proj::k, Proj::v, Proj::o}) add_proj(j);  // parameter order: init_weights' keys
    L.mlp_norm = params.add(p + "post_attention_layernorm.weight", {C}, false);
    for (Proj j : {Proj::gate, Proj::up, Proj::down}) add_proj(j);
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
      if (K % G != 0)
        throw UsageError(str("QAT ", f.name(), ": ", info.name, " has K = ", K, ", not a multiple of ", G,
                             " (choose dims that are, or keep it in another format: --qat-keep)"));
      *scale = params.add(info.name + "_scale", {N, K / G}, false, true);
      if (act_scale && f.a == AQuant::int8_static)
        *act_scale = params.add(info.name.substr(0, info.name.size() - 7) + ".input_scale", {1}, false, true);
    };
    for (int64_t l = 0; l < cfg.n_layers; l++)
      for (Proj j : kBlockProj) {
        LayerParams& L = layers[size_t(l)];
        add_scales(L.weight(j), qat->linear(int(l), j), &L.scale[int(j)], &L.act_scale[int(j)]);
      }
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

Tensor Transformer::project(const Tensor& x, Proj p, int layer, const QatStep* step) {
  const LayerParams* L = p != Proj::lm_head ? &layers[size_t(layer)] : nullptr;
  const int wi = L ? L->weight(p) : lm_head;
  const Tensor& w = params[wi];
  if (!qat) return linear(x, w);
  const LayerQuant& f = qat->linear(layer, p);
  if (!f.quantized()) return fixed_linear(x, w);
  int s = L ? L->scale[int(p)] : lm_head_scale, a = L ? L->act_scale[int(p)] : lm_head_act_scale;
  Tensor act = a >= 0 ? params[a] : Tensor();
  if (act.defined() && act.f32()[0] == 0.0f) {  // static activation scale: calibrated on the first batch
    Tensor xc = x.contiguous();
    float amax = 0;
    for (int64_t i = 0; i < xc.numel(); i++) amax = std::max(amax, std::fabs(xc.f32()[i]));
    act.f32()[0] = learned_scale(amax / 127.0f);
  }
  if (step && step->act_sqnr && f.a != AQuant::none) {
    NoGrad ng;
    Tensor xc = x.contiguous(), xh = fake_quant_act(xc, f.a, act);
    step->act_sqnr->push_back({L ? str("layers.", layer, ".", proj_info(p).name) : std::string(proj_info(p).name),
                         sqnr_db(xc.f32(), xh.f32(), xc.numel())});
  }
  if (step && step->noise < 1.0f) {
    return linear(fake_quant_act(x, f.a, act), fake_quant_weight_partial(w, params[s], f, qat->identity_ste, step->noise,
                                                                         step->noise_key, uint64_t(wi)));
  }
  return quantized_linear(x, w, params[s], act, f, qat->identity_ste);
}

Tensor Transformer::embedding_table(const QatStep* step) {
  if (!qat || !qat->embed.quantized()) return params[tok_embd];
  if (step && step->noise < 1.0f)
    return fake_quant_weight_partial(params[tok_embd], params[embed_scale], qat->embed, qat->identity_ste, step->noise,
                                     step->noise_key, uint64_t(tok_embd));
  return fake_quant_weight(params[tok_embd], params[embed_scale], qat->embed, qat->identity_ste);
}

void Transformer::for_each_quantized(const std::function<void(const std::string&, int, int, const LayerQuant&)>& f) const {
  if (!qat) return;
  for (int64_t l = 0; l < cfg.n_layers; l++)
    for (Proj p : kBlockProj) {
      const LayerParams& L = layers[size_t(l)];
      const int s = L.scale[int(p)];
      if (s >= 0) f(params.info(L.weight(p)).name, L.weight(p), s, qat->linear(int(l), p));
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

Tensor Transformer::forward(const Tensor& ids, const QatStep* step) {
  QAT_CHECK(ids.ndim() == 2 && ids.dtype() == DType::s32, "forward: ids must be s32 (B, T), got ", ids.shape_string());
  int64_t B = ids.dim(0), T = ids.dim(1), H = cfg.n_heads, Hkv = cfg.n_kv_heads, D = cfg.head_dim();
  QAT_CHECK(T <= cfg.context, "forward: sequence length ", T, " exceeds the model context ", cfg.context);
  Tensor x = embedding(embedding_table(step), ids);  // (B, T, C)
  for (int l = 0; l < int(layers.size()); l++) {
    const LayerParams& L = layers[size_t(l)];
    Tensor h = rmsnorm(x, params[L.attn_norm], cfg.rms_eps);
    Tensor q = rope(project(h, Proj::q, l, step).reshape({B, T, H, D}), 0, cfg.rope_base);
    Tensor k = rope(project(h, Proj::k, l, step).reshape({B, T, Hkv, D}), 0, cfg.rope_base);
    Tensor v = project(h, Proj::v, l, step).reshape({B, T, Hkv, D});
    Tensor a = causal_attention(q, k, v).reshape({B, T, H * D});
    x = add(x, project(a, Proj::o, l, step));
    h = rmsnorm(x, params[L.mlp_norm], cfg.rms_eps);
    Tensor g = swiglu(project(h, Proj::gate, l, step), project(h, Proj::up, l, step));
    x = add(x, project(g, Proj::down, l, step));
  }
  x = rmsnorm(x, params[final_norm], cfg.rms_eps);
  return project(x, Proj::lm_head, -1, step);  // (B, T, V)
}

Tensor Transformer::loss(const Tensor& ids, const Tensor& targets, const QatStep* step) {
  Tensor logits = forward(ids, step);
  int64_t BT = ids.numel();
  return cross_entropy(logits.reshape({BT, cfg.vocab}), targets.reshape({BT}));
}

}  // namespace qat
