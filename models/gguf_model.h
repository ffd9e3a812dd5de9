// The deployable model file: GGUF v3 in the exact form llama.cpp's `llama` architecture reads
// (hyperparameters as llama.*, tensors token_embd / blk.N.* / output_norm / output, the model's own
// tokenizer as tokenizer.ggml.*), holding exactly the codes and f16 scales the QAT forward used.
// Our own facts (scheme, activation rule, per-tensor formats) go under qat.*, which llama.cpp ignores.
// The reader also imports `llama` GGUFs not written by us (F32 / F16 / BF16 / Q8_0 / Q4_0 tensors, any
// tokenizer data/model_vocab.h reads). GGUF llama files hold q and k in the layout llama.cpp's
// converter permutes them to, adjacent pairs, which is ours: no permutation on import.
// Read next: models/quantized.h, src/io/gguf.h (the container).
#pragma once
#include <optional>
#include <string>

#include <memory>

#include "data/vocab.h"
#include "models/quantized.h"
#include "src/io/gguf.h"

namespace qat {

// Writes m and its tokenizer to `path` (atomic). Throws for formats llama.cpp cannot hold (w4, w8:
// weight-only experiments) and for shapes GGUF's block types cannot hold.
void write_gguf_model(const std::string& path, const QuantizedModel& m, const Vocab& tok);

struct GgufModel {
  QuantizedModel model;
  std::shared_ptr<const Vocab> tokenizer;  // ours (Tokenizer) or the model's (ModelVocab): vocab.h decides
  int64_t file_bytes = 0;
};
// How read_gguf_model keeps quantized weights. eager: codes and scales in memory (what tests and
// re-exports inspect). lazy: a view of each weight's blocks in the file's mapping (ServedWeight::blocks),
// its pages given back once checked, so that serving holds the packed panels and not the codes too
// (docs/MEMORY.md, "Serving"). header: the config, scheme and tokenizer, no weight read (a caller that
// wants only the latent f32 weights reads them itself: models/import.h; the model's weight lists stay
// empty).
enum class GgufLoad : uint8_t { eager, lazy, header };
// Reads a GGUF written by write_gguf_model, or any llama-architecture GGUF with F32 / F16 / BF16 /
// Q4_0 / Q8_0 weights (F16 and BF16 become f32 weights) and a tokenizer vocab_from_gguf reads. Every
// key, shape and type is checked against the config, and every block's codes and scales, in both modes.
// A model whose weights would not fit in the available memory is refused with its size before any
// weight is decoded.
GgufModel read_gguf_model(const std::string& path, GgufLoad load = GgufLoad::eager);

}  // namespace qat
