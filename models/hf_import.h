// Importing a Hugging Face Llama directory (LlamaForCausalLM) as a LoadedCheckpoint of f32 weights in our
// parameter names, which Transformer / load_params and decode_model_from_checkpoint consume:
//   config.json                         every key we use checked (hf_config_from_json)
//   model.safetensors, or               F32 / F16 / BF16 tensors, widened to f32 on read
//   model-0000N-of-0000M.safetensors + model.safetensors.index.json (parse_hf_index)
// Hugging Face stores q_proj / k_proj for the rotate-half RoPE (pairs (j, j + D/2) of each head); ours
// rotates adjacent pairs (2j, 2j + 1), as llama.cpp's `llama` architecture does, so the rows of q and k
// are permuted on import (permute_rotate_half_rows; the same permutation as llama.cpp's converter),
// and the result is an ordinary qat model (docs/LLAMACPP.md, "Importing a Hugging Face model").
// The tokenizer: ModelVocab::from_hf_tokenizer_json (data/model_vocab.h). Read next: models/checkpoint.h.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "models/checkpoint.h"
#include "models/config.h"
#include "src/io/json.h"

namespace qat {

struct HfImportOptions {
  // Bytes the import may take (its f32 weights); a larger model is refused, with its size, before any
  // tensor is allocated. < 0: this machine's physical memory. The tools pass what is available now.
  double memory_budget_bytes = -1;
};

// Reads and validates a Hugging Face Llama directory. Every rejection is one line naming the file and
// what is wrong. The result has no quantization, optimizer or state; tokenizer_path is the directory's
// tokenizer.json (a Hugging Face one: read it with ModelVocab::from_hf_tokenizer_json) or "" if absent.
LoadedCheckpoint read_hf_checkpoint(const std::string& dir, const HfImportOptions& opt = {});

// The ModelConfig of a Hugging Face config.json, `where` naming it in errors: architectures must be
// ["LlamaForCausalLM"] (model_type "llama" when given), hidden_act silu, no rope_scaling, no biases, no
// quantization_config, head_dim (when given) hidden_size / num_attention_heads; Hugging Face's defaults
// for absent keys (num_key_value_heads = heads, rope_theta 1e4, rms_norm_eps 1e-6, untied, context 2048).
ModelConfig hf_config_from_json(const Json& j, const std::string& where);

// model.safetensors.index.json's weight_map, tensor name -> shard file name (a plain file name ending in
// .safetensors: no directory part, so a hostile index cannot point outside the model's directory).
std::map<std::string, std::string> parse_hf_index(std::string_view text, const std::string& where);

// q or k (n_heads * D, C) from rotate-half rows to adjacent pairs, in place: within each head, row
// j + s * D/2 moves to row 2 j + s (j < D/2, s in {0, 1}). inverse: the other way (export to HF).
void permute_rotate_half_rows(Tensor& w, int64_t n_heads, bool inverse = false);

}  // namespace qat
