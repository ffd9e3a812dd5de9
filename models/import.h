// Pretrained models from outside: what `bin/train --init`, `--distill` (and, through ModelSource,
// `bin/eval` and `bin/generate`) start from: a GGUF file or a Hugging Face directory. An imported model is the same thing as a checkpoint
// directory once read: f32 weights in our parameter names (Hugging Face Llama names, q/k in the
// adjacent-pairs RoPE layout) + its vocabulary (LoadedCheckpoint::vocab). A GGUF of the `llama`
// architecture holds q/k already in that layout (llama.cpp's converter permutes HF's rotate-half
// weights when it writes one), so nothing is permuted here. Read next: models/gguf_model.h.
#pragma once
#include <string>

#include "models/checkpoint.h"

namespace qat {

// A `llama` GGUF file as f32 latent weights: F32 / F16 / BF16 tensors converted, Q8_0 / Q4_0 blocks
// dequantized (codes x scales). Bounded and validated by read_gguf_model; a model whose f32 weights
// would not fit in the available memory is refused with its size before they are allocated.
LoadedCheckpoint import_gguf(const std::string& path);

// A Hugging Face Llama directory (models/hf_import.h) with its tokenizer.json as the vocabulary; the
// f32 weights must fit in the memory available now (refused with their size before allocating).
LoadedCheckpoint import_hf(const std::string& dir);
// A directory whose config.json has no "rope_layout" (every checkpoint of ours writes one; no Hugging
// Face config has it).
bool is_hf_directory(const std::string& dir);

// The one dispatch on what a path names: a checkpoint directory (load_checkpoint), a Hugging Face
// directory (import_hf) or a GGUF file (import_gguf). Errors name the path.
LoadedCheckpoint load_start_model(const std::string& path);

}  // namespace qat
