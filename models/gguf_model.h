// The deployable model file: GGUF v3 in the exact form llama.cpp's `llama` architecture reads
// (hyperparameters as llama.*, tensors token_embd / blk.N.* / output_norm / output, a gpt2 tokenizer
// with the gpt-2 pre-tokenizer), holding exactly the codes and f16 scales the QAT forward used.
// Our own facts (scheme, activation rule, per-tensor formats) go under qat.*, which llama.cpp ignores.
// Read next: models/quantized.h, src/io/gguf.h (the container).
#pragma once
#include <optional>
#include <string>

#include "data/tokenizer.h"
#include "models/quantized.h"
#include "src/io/gguf.h"

namespace qat {

// Writes m and its tokenizer to `path` (atomic). Throws for formats llama.cpp cannot hold (w4, w8:
// weight-only experiments) and for shapes GGUF's block types cannot hold.
void write_gguf_model(const std::string& path, const QuantizedModel& m, const Tokenizer& tok);

struct GgufModel {
  QuantizedModel model;
  std::optional<Tokenizer> tokenizer;
  int64_t file_bytes = 0;
};
// How read_gguf_model keeps quantized weights. eager: codes and scales in memory (what tests and
// re-exports inspect). lazy: a view of each weight's blocks in the file's mapping (ServedWeight::blocks),
// its pages given back once checked, so that serving holds the packed panels and not the codes too
// (docs/MEMORY.md, "Serving").
enum class GgufLoad : uint8_t { eager, lazy };
// Reads a GGUF written by write_gguf_model (or any llama-architecture GGUF with F32 / Q4_0 / Q8_0
// tensors and a gpt2 tokenizer of ours). Every key, shape and type is checked against the config, and
// every block's codes and scales, in both modes.
GgufModel read_gguf_model(const std::string& path, GgufLoad load = GgufLoad::eager);

}  // namespace qat
