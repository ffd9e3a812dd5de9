// Pretrained models from outside: what `bin/train --init`, `--distill` (and, through ModelSource,
// `bin/eval` and `bin/generate`) start from. An imported model is the same thing as a checkpoint
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

// The one dispatch on what a path names: a checkpoint directory (load_checkpoint) or a GGUF file
// (import_gguf). Errors name the path.
LoadedCheckpoint load_start_model(const std::string& path);

}  // namespace qat
