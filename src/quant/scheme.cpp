// Scheme names, overrides and their JSON form (see scheme.h).
#include "src/quant/scheme.h"
#include "src/util/cli.h"

#include "src/util/error.h"

namespace qat {

const SchemeInfo* find_scheme(const std::string& name) {
  for (const SchemeInfo& s : kSchemes)
    if (name == s.name) return &s;
  return nullptr;
}

std::string scheme_names(SchemeSet set) {
  std::vector<std::string> names;
  for (const SchemeInfo& s : kSchemes)
    if (set == SchemeSet::all || (set == SchemeSet::exported && s.exported()) ||
        (set == SchemeSet::quantized && s.w != WQuant::none) || (set == SchemeSet::trainable && s.trainable()))
      names.push_back(s.name);
  return list_text(names, "or");
}

bool LayerQuant::served() const {
  for (const SchemeInfo& s : kSchemes)
    if (s.w == w && s.a == a) return s.served;
  return false;
}

std::string LayerQuant::name() const {
  if (w == WQuant::none) return "f32";  // whatever the activation format: nothing is quantized
  for (const SchemeInfo& s : kSchemes)
    if (s.w == w && s.a == a) return s.name;
  return "custom";
}

LayerQuant scheme_layer(const std::string& name) {
  const SchemeInfo* s = find_scheme(name);
  if (!s) throw UsageError("unknown quantization scheme '" + name + "' (expected " + scheme_names(SchemeSet::all) + ")");
  return {s->w, s->a};
}

const SchemeInfo* scheme_read_from_gguf(GgmlType t, const std::string& hint) {
  const SchemeInfo* s = find_scheme(hint);
  if (s && s->exported() && weight_format(s->w).ggml == t) return s;
  for (const SchemeInfo& r : kSchemes)
    if (r.exported() && weight_format(r.w).ggml == t) return &r;
  return nullptr;
}

namespace {
// llama.cpp's Q4_K_M mixture for the llama architecture (llama_tensor_get_type in src/llama-quant.cpp,
// c392e50): Q4_K everywhere except Q6_K for the output tensor (the embedding too when it is tied: it is
// the output) and for attn_v and ffn_down in the layers where use_more_bits holds: the first and last
// eighth of the layers and every third one between them. The embedding of an untied model stays Q4_K.
void apply_q4_k_m(QatConfig* c) {
  const LayerQuant q6{WQuant::q6_k, AQuant::none};
  const int64_t n = c->n_layers;
  auto more_bits = [n](int64_t i) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; };
  c->lm_head = q6;
  if (c->tied) c->embed = q6;
  for (int64_t l = 0; l < n; l++)
    if (more_bits(l)) {
      c->layers[size_t(l)][size_t(Proj::v)] = q6;
      c->layers[size_t(l)][size_t(Proj::down)] = q6;
    }
}
}  // namespace

void QatConfig::require_trainable(const char* flag) const {
  auto check = [&](const LayerQuant& q, const std::string& slot) {
    if (q.format().post_training)
      throw UsageError(str(flag, " ", scheme, ": ", slot, " is ", q.name(), ", a post-training format (llama.cpp's K-quants: ",
                           "bin/quantize --ptq or bin/eval --ptq); QAT trains ", scheme_names(SchemeSet::trainable)));
  };
  check(embed, "embed");
  check(lm_head, "lm_head");
  for (size_t l = 0; l < layers.size(); l++)
    for (Proj p : kBlockProj) check(layers[l][size_t(p)], str("layers.", l, ".", proj_info(p).name));
}

QatConfig QatConfig::make(const std::string& scheme, const std::string& keep, int64_t n_layers, bool tied) {
  QatConfig c;
  c.scheme = scheme;
  c.keep = keep;
  c.n_layers = n_layers;
  c.tied = tied;
  LayerQuant base = scheme_layer(scheme);
  c.embed = c.lm_head = base;
  c.layers.assign(size_t(n_layers), std::vector<LayerQuant>(kBlockProjs, base));
  if (find_scheme(scheme)->mixture) apply_q4_k_m(&c);
  bool embed_set = false, head_set = false;
  LayerQuant embed_fmt, head_fmt;
  for (const std::string& item : split(keep, ',')) {
    size_t eq = item.find('=');
    std::string slot = item.substr(0, eq);
    LayerQuant f = eq == std::string::npos ? LayerQuant{} : scheme_layer(item.substr(eq + 1));
    std::vector<std::string> parts = split(slot, '.');
    bool matched = false;
    if (slot == "embed") { c.embed = f; embed_set = true; embed_fmt = f; matched = true; }
    else if (slot == "lm_head") { c.lm_head = f; head_set = true; head_fmt = f; matched = true; }
    else {
      // [layers.N.]kind | layers.N | attn | mlp | kind
      int64_t layer = -1;
      std::string kind = slot;
      if (parts.size() >= 2 && parts[0] == "layers") {
        char* end = nullptr;
        layer = std::strtoll(parts[1].c_str(), &end, 10);
        if (*end != '\0' || layer < 0 || layer >= n_layers)
          throw UsageError(str("--qat-keep: '", item, "': layer index must be in [0, ", n_layers, ")"));
        kind = parts.size() == 3 ? parts[2] : parts.size() == 2 ? "all" : "?";
      }
      for (int64_t l = 0; l < n_layers; l++) {
        if (layer >= 0 && l != layer) continue;
        for (Proj p : kBlockProj) {
          const ProjInfo& pi = proj_info(p);
          bool hit = kind == "all" || kind == pi.name || (kind == "attn" && pi.attn) || (kind == "mlp" && !pi.attn);
          if (hit) { c.layers[size_t(l)][size_t(p)] = f; matched = true; }
        }
      }
    }
    if (!matched)
      throw UsageError(str("--qat-keep: unknown layer '", slot,
                           "' (expected embed, lm_head, q, k, v, o, gate, up, down, attn, mlp, layers.N[.kind])"));
  }
  if (tied) {
    if (embed_set && head_set && !(embed_fmt == head_fmt))
      throw UsageError(str("--qat-keep: the embedding and lm_head are tied (one tensor), so they need one format; got embed=",
                           embed_fmt.name(), " and lm_head=", head_fmt.name()));
    if (embed_set) c.lm_head = c.embed;
    if (head_set) c.embed = c.lm_head;
  }
  // The embedding is a table lookup: its "activation" format is meaningless. A tied table keeps the
  // lm_head's weight format for both uses.
  return c;
}

const LayerQuant& QatConfig::linear(int layer, Proj p) const {
  if (p == Proj::lm_head) return lm_head;
  return layers[size_t(layer)][size_t(p)];
}

bool QatConfig::any_static_acts() const {
  if (lm_head.a == AQuant::int8_static) return true;
  for (const auto& l : layers)
    for (const LayerQuant& q : l)
      if (q.a == AQuant::int8_static) return true;
  return false;
}

Json QatConfig::to_json() const {
  Json j = Json::object();
  j.set("quant_method", "qat");
  j.set("scheme", scheme);
  j.set("keep", keep);
  j.set("scale_init", scale_init);
  j.set("freeze_scales", freeze_scales);
  j.set("identity_ste", identity_ste);
  Json layers_j = Json::object();
  layers_j.set("embed", embed.name());
  layers_j.set("lm_head", lm_head.name());
  for (size_t l = 0; l < layers.size(); l++)
    for (Proj p : kBlockProj) layers_j.set(str("layers.", l, ".", proj_info(p).name), layers[l][size_t(p)].name());
  j.set("layers", layers_j);  // informational: make() rebuilds them from scheme + keep
  return j;
}

QatConfig QatConfig::from_json(const Json& j, int64_t n_layers, bool tied) {
  QAT_CHECK(j.is_object() && j.contains("scheme"), "quantization_config: expected an object with a 'scheme'");
  QatConfig c;
  try {
    c = make(j.at("scheme").as_string(), j.contains("keep") ? j.at("keep").as_string() : "", n_layers, tied);
  } catch (const UsageError& e) {
    fail("quantization_config: ", e.what());
  }
  if (const Json* v = j.find("scale_init")) c.scale_init = v->as_string();
  if (const Json* v = j.find("freeze_scales")) c.freeze_scales = v->as_bool();
  if (const Json* v = j.find("identity_ste")) c.identity_ste = v->as_bool();
  QAT_CHECK(c.scale_init == "minmax" || c.scale_init == "mse", "quantization_config: scale_init must be minmax or mse");
  return c;
}

}  // namespace qat
