// Hugging Face Llama import (see hf_import.h): config.json -> ModelConfig (models/hf_config.cpp), the shard
// plan (one file or an index), a memory check from the config's shapes before any tensor is read, the shards read with their
// names and shapes checked from each header, q / k permuted to our RoPE layout.
// Read next: tests/test_hf_import.cpp (the PyTorch golden check), tests/reference/hf_llama_golden.py.
#include "models/hf_import.h"

#include <unistd.h>

#include <cstring>
#include <set>

#include "models/transformer.h"
#include "src/io/file.h"
#include "src/io/format_util.h"
#include "src/util/error.h"

namespace qat {
namespace {

constexpr uint64_t kMaxConfigBytes = uint64_t(1) << 20;  // a config.json is a few KB
constexpr uint64_t kMaxIndexBytes = uint64_t(1) << 26;   // Llama 405B's index is ~100 KB

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

std::string human_size(double bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  for (; u < 4 && bytes >= 1024; u++) bytes /= 1024;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f %s", bytes, unit[u]);
  return buf;
}

}  // namespace

void permute_rotate_half_rows(Tensor& w, int64_t n_heads, bool inverse) {
  const int64_t rows = w.shape()[0], C = w.shape()[1], D = rows / n_heads, half = D / 2;
  QAT_CHECK(w.dtype() == DType::f32 && w.is_contiguous() && rows == n_heads * D && D % 2 == 0,
            "permute_rotate_half_rows: expected (heads * even D, C) f32 rows");
  Tensor out = Tensor::empty(w.shape(), DType::f32);
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t h = 0; h < n_heads; h++)
    for (int64_t j = 0; j < half; j++)
      for (int64_t s = 0; s < 2; s++) {
        const int64_t hf_row = h * D + s * half + j, our_row = h * D + 2 * j + s;
        const int64_t from = inverse ? our_row : hf_row, to = inverse ? hf_row : our_row;
        std::memcpy(dst + to * C, src + from * C, size_t(C) * sizeof(float));
      }
  w = out;
}

namespace {

// What a Llama directory may hold besides our parameters: the rotary inv_freq buffers older exports
// saved (unused: RoPE is recomputed) and, when tied, an lm_head.weight equal to the embedding.
std::map<std::string, Shape> accepted_tensors(const ModelConfig& c, const std::vector<std::pair<std::string, Shape>>& layout) {
  std::map<std::string, Shape> ok(layout.begin(), layout.end());
  for (int64_t l = 0; l < c.n_layers; l++)
    ok.emplace("model.layers." + std::to_string(l) + ".self_attn.rotary_emb.inv_freq", Shape{c.head_dim() / 2});
  if (c.tied) ok.emplace("lm_head.weight", Shape{c.vocab, c.d_model});
  return ok;
}

// The shards and the tensors each must hold: model.safetensors alone (it holds what it holds), or the
// index's weight_map, every name in it one we accept and every parameter listed.
std::map<std::string, std::vector<std::string>> plan_shards(const std::string& dir, const std::map<std::string, Shape>& ok,
                                                            const std::vector<std::pair<std::string, Shape>>& layout) {
  std::map<std::string, std::vector<std::string>> shards;
  if (file_exists(dir + "/model.safetensors")) {
    for (const auto& [name, shape] : ok) shards["model.safetensors"].push_back(name);
    return shards;
  }
  const std::string index = dir + "/model.safetensors.index.json";
  QAT_CHECK(file_exists(index), dir, ": no model.safetensors or model.safetensors.index.json (only safetensors "
            "weights are imported; convert a pytorch_model.bin first)");
  for (const auto& [name, file] : parse_hf_index(read_file(index, kMaxIndexBytes), index)) {
    QAT_CHECK(ok.count(name), index, ": weight_map names tensor ", fmt::quote(name), ", which is not part of this Llama config");
    shards[file].push_back(name);
  }
  std::set<std::string> listed;
  for (const auto& [file, names] : shards) listed.insert(names.begin(), names.end());
  for (const auto& [name, shape] : layout) QAT_CHECK(listed.count(name), index, ": weight_map lacks ", fmt::quote(name));
  for (const auto& [file, names] : shards)
    QAT_CHECK(file_exists(dir + "/" + file), dir, "/", file, ": missing (model.safetensors.index.json lists ",
              names.size(), " tensors in it)");
  return shards;
}

// Refuses, before anything is allocated, a model whose f32 weights exceed the budget.
void check_memory(const std::string& dir, const ModelConfig& c, const std::map<std::string, std::vector<std::string>>& shards,
                  const std::map<std::string, Shape>& ok, double budget) {
  double values = 0;
  for (const auto& [file, names] : shards)
    for (const std::string& n : names)
      if (file != "model.safetensors" || !ends_with(n, ".inv_freq")) values += double(shape_numel(ok.at(n)));
  if (shards.count("model.safetensors") && c.tied) values -= double(c.vocab * c.d_model);  // an lm_head copy is optional
  if (budget < 0) budget = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
  QAT_CHECK(budget <= 0 || 4 * values <= budget, dir, ": the model's f32 weights take ", human_size(4 * values), " (",
            int64_t(values), " values), more than the ", human_size(budget), " of memory this import may use");
}

// Reads one shard; every tensor it must hold is there (names and shapes checked from its header).
SafeTensors read_shard(const std::string& dir, const std::string& file, const std::vector<std::string>& names,
                       const std::map<std::string, Shape>& ok, bool single) {
  std::vector<std::pair<std::string, Shape>> expect;
  for (const std::string& n : names) expect.emplace_back(n, ok.at(n));
  const std::string path = dir + "/" + file;
  SafeTensors st = load_safetensors(path, {.reject_nonfinite = true, .expect = &expect, .to_f32 = true});
  if (!single)
    for (const std::string& n : names)
      QAT_CHECK(st.find(n), path, ": no tensor ", fmt::quote(n), " (model.safetensors.index.json puts it in this file)");
  return st;
}

// A tied model's stored lm_head must be the embedding (else tie_word_embeddings is wrong for it).
void check_tied_copy(const std::string& dir, const Tensor& lm_head, const Tensor& embed) {
  QAT_CHECK(std::memcmp(lm_head.data<float>(), embed.data<float>(), size_t(embed.numel()) * sizeof(float)) == 0, dir,
            ": tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight");
}

}  // namespace

LoadedCheckpoint read_hf_checkpoint(const std::string& dir, const HfImportOptions& opt) {
  QAT_CHECK(is_directory(dir), dir, ": not a directory (a Hugging Face model is a directory with config.json)");
  LoadedCheckpoint ck;
  ck.dir = dir;
  const std::string config_path = dir + "/config.json";
  QAT_CHECK(file_exists(config_path), config_path, ": missing");
  Json config;
  try {
    config = Json::parse(read_file(config_path, kMaxConfigBytes));
  } catch (const Error& e) {
    fail(config_path, ": ", e.what());
  }
  ck.config = hf_config_from_json(config, config_path);
  const auto layout = Transformer::param_layout(ck.config);
  const auto ok = accepted_tensors(ck.config, layout);
  const auto shards = plan_shards(dir, ok, layout);
  check_memory(dir, ck.config, shards, ok, opt.memory_budget_bytes);

  std::map<std::string, Tensor> got;
  for (const auto& [file, names] : shards) {
    SafeTensors st = read_shard(dir, file, names, ok, shards.size() == 1 && file == "model.safetensors");
    for (auto& [name, t] : st.tensors) got.emplace(name, std::move(t));  // names are unique across shards
  }
  ck.weights.path = dir;
  for (const auto& [name, shape] : layout) {
    auto it = got.find(name);
    QAT_CHECK(it != got.end(), dir, "/model.safetensors: no tensor ", fmt::quote(name));
    ck.weights.tensors.emplace_back(name, it->second);
  }
  if (auto it = got.find("lm_head.weight"); ck.config.tied && it != got.end())
    check_tied_copy(dir, it->second, got.at("model.embed_tokens.weight"));
  // Rotate-half rows -> adjacent pairs: q has num_attention_heads heads, k num_key_value_heads.
  for (auto& [name, t] : ck.weights.tensors) {
    if (ends_with(name, ".self_attn.q_proj.weight")) permute_rotate_half_rows(t, ck.config.n_heads);
    if (ends_with(name, ".self_attn.k_proj.weight")) permute_rotate_half_rows(t, ck.config.n_kv_heads);
  }
  if (file_exists(dir + "/tokenizer.json")) ck.tokenizer_path = dir + "/tokenizer.json";
  return ck;
}

}  // namespace qat
