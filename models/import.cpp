// Importing a pretrained GGUF as f32 latent weights (see import.h).
#include "models/import.h"

#include "data/model_vocab.h"
#include "models/gguf_model.h"
#include "models/hf_import.h"
#include "src/io/file.h"
#include "src/io/json.h"
#include "src/util/error.h"
#include "src/util/sysmem.h"

namespace qat {

namespace {

// The f32 weights a training run holds of the model, against the memory left after the file is read.
void check_f32_fits(const std::string& path, const ModelConfig& c) {
  const double bytes = 4.0 * double(c.n_params());
  std::string source;
  const double avail = available_memory_bytes(&source);
  QAT_CHECK(avail <= 0 || bytes <= avail, path, ": the model's ", c.n_params(), " parameters take ", human_bytes(bytes),
            " as f32 latent weights; ", human_bytes(avail), " are available (", source, ")");
}

// The served model's tensors as f32, in the Transformer's parameter names (models/transformer.cpp).
std::vector<std::pair<std::string, Tensor>> f32_tensors(QuantizedModel& m) {
  std::vector<std::pair<std::string, Tensor>> out;
  auto weight = [&](ServedWeight& w) {
    out.emplace_back(w.name, w.dequantized());
    w = ServedWeight();  // its codes go as soon as the f32 copy exists
  };
  weight(m.embed);
  for (size_t l = 0; l < m.layers.size(); l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "input_layernorm.weight", m.attn_norm[l]);
    out.emplace_back(p + "post_attention_layernorm.weight", m.mlp_norm[l]);
    for (ServedWeight& w : m.layers[l]) weight(w);
  }
  out.emplace_back("model.norm.weight", m.final_norm);
  if (!m.cfg.tied) weight(m.lm_head);
  return out;
}

}  // namespace

LoadedCheckpoint import_gguf(const std::string& path) {
  GgufModel g = read_gguf_model(path, GgufLoad::eager);
  check_f32_fits(path, g.model.cfg);
  LoadedCheckpoint ck;
  ck.dir = path;
  ck.config = g.model.cfg;
  ck.weights.path = path;
  ck.weights.tensors = f32_tensors(g.model);
  ck.vocab = g.tokenizer;
  return ck;
}

bool is_hf_directory(const std::string& dir) {
  const std::string cfg = dir + "/config.json";
  if (!is_directory(dir) || !file_exists(cfg)) return false;
  try {
    return Json::parse(read_file(cfg)).find("rope_layout") == nullptr;
  } catch (const Error&) {
    return false;  // not ours to judge: load_checkpoint names what is wrong with it
  }
}

LoadedCheckpoint import_hf(const std::string& dir) {
  HfImportOptions opt;
  std::string source;
  opt.memory_budget_bytes = available_memory_bytes(&source);
  if (opt.memory_budget_bytes <= 0) opt.memory_budget_bytes = -1;  // unreadable: physical memory
  LoadedCheckpoint ck = read_hf_checkpoint(dir, opt);
  QAT_CHECK(!ck.tokenizer_path.empty() && file_exists(ck.tokenizer_path), dir,
            " has no tokenizer.json (a Hugging Face model needs its tokenizer)");
  ck.vocab = std::make_shared<ModelVocab>(ModelVocab::from_hf_tokenizer_json(ck.tokenizer_path));
  return ck;
}

LoadedCheckpoint load_start_model(const std::string& path) {
  QAT_CHECK(file_exists(path), path, " does not exist (a checkpoint directory, a Hugging Face directory or a GGUF file)");
  if (is_hf_directory(path)) return import_hf(path);
  if (is_directory(path)) return load_checkpoint(path);
  return import_gguf(path);  // any other file must be a GGUF (read_gguf names what is wrong)
}

}  // namespace qat
