// The parsers of a Hugging Face Llama directory's JSON files (see hf_import.h): config.json ->
// ModelConfig (hf_config_from_json) and model.safetensors.index.json's weight_map (parse_hf_index).
// Apart from the import so that the fuzz target (tests/fuzz/fuzz_hf_config.cpp) links them alone.
// Read next: models/hf_import.cpp.
#include "models/hf_import.h"

#include <algorithm>
#include <cctype>

#include "src/io/format_util.h"
#include "src/io/json.h"
#include "src/util/error.h"

namespace qat {
namespace {

constexpr size_t kMaxIndexEntries = size_t(1) << 20;

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

// A key that must be absent, null or equal to `ok` (a JSON value of another meaning is refused).
void require_absent_or(const Json& j, const char* key, const Json& ok, const std::string& where, const char* why) {
  const Json* v = j.find(key);
  if (!v || v->is_null()) return;
  if (v->type() == ok.type() && v->dump() == ok.dump()) return;
  std::string shown = v->dump();
  if (shown.size() > 100) shown = shown.substr(0, 100) + "...";
  fail(where, ": ", key, " is ", shown, ": ", why);
}

void check_architecture(const Json& j, const std::string& where) {
  const Json* a = j.find("architectures");
  QAT_CHECK(a, where, ": no architectures (expected [\"LlamaForCausalLM\"])");
  QAT_CHECK(a->is_array() && a->items().size() == 1 && a->items()[0].is_string() &&
                a->items()[0].as_string() == "LlamaForCausalLM",
            where, ": architectures is ", a->dump(), ", expected [\"LlamaForCausalLM\"] (only Llama models are imported)");
  require_absent_or(j, "model_type", Json("llama"), where, "expected \"llama\"");
}

}  // namespace

ModelConfig hf_config_from_json(const Json& j, const std::string& where) {
  QAT_CHECK(j.is_object(), where, ": expected a JSON object");
  check_architecture(j, where);
  require_absent_or(j, "hidden_act", Json("silu"), where, "only silu (SwiGLU) is supported");
  require_absent_or(j, "rope_scaling", Json(), where, "RoPE scaling is not supported (plain RoPE only)");
  require_absent_or(j, "attention_bias", Json(false), where, "attention biases are not supported");
  require_absent_or(j, "mlp_bias", Json(false), where, "MLP biases are not supported");
  require_absent_or(j, "quantization_config", Json(), where, "a quantized checkpoint; import its f16/bf16/f32 original");
  QAT_CHECK(!j.contains("rope_layout"), where,
            ": has rope_layout, so it is a qat checkpoint (adjacent-pair q/k): load it as a checkpoint directory");
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"})
    QAT_CHECK(j.contains(key), where, ": no ", key);
  ModelConfig base;  // Hugging Face LlamaConfig's defaults for the keys a config may leave out
  base.context = 2048;
  base.rms_eps = 1e-6f;
  base.rope_base = 10000.0f;
  base.tied = false;
  base.preset = "";
  ModelConfig c;
  try {
    bool rope_defaulted = false;
    c = apply_config_keys(base, j, &rope_defaulted);
    if (const Json* hd = j.find("head_dim"); hd && !hd->is_null())
      QAT_CHECK(hd->is_number() && hd->as_double() == double(c.d_model / c.n_heads) && c.d_model % c.n_heads == 0,
                "config: head_dim ", hd->dump(), " is not hidden_size / num_attention_heads (", c.d_model, " / ",
                c.n_heads, ")");
    c.validate();
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  return c;
}

std::map<std::string, std::string> parse_hf_index(std::string_view text, const std::string& where) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  QAT_CHECK(j.is_object(), where, ": expected a JSON object");
  const Json* map = j.find("weight_map");
  QAT_CHECK(map && map->is_object(), where, ": expected a \"weight_map\" object (tensor name -> file)");
  QAT_CHECK(map->members().size() <= kMaxIndexEntries, where, ": weight_map has ", map->members().size(),
            " entries, at most ", kMaxIndexEntries);
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : map->members()) {
    QAT_CHECK(file.is_string(), where, ": weight_map[", fmt::quote(name), "] is ", file.dump(), ", expected a file name");
    const std::string& f = file.as_string();
    const bool plain = std::all_of(f.begin(), f.end(), [](char c) { return std::isalnum(uint8_t(c)) || c == '.' || c == '-' || c == '_'; });
    QAT_CHECK(plain && !f.empty() && f.size() <= 255 && f[0] != '.' && ends_with(f, ".safetensors"), where, ": weight_map[",
              fmt::quote(name), "] is ", fmt::quote(f),
              ", expected a file name of [A-Za-z0-9._-] ending in .safetensors, in the model's directory");
    out.emplace(name, f);
  }
  return out;
}

}  // namespace qat
