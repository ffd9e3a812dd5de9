// What a binary's --model names: a checkpoint directory (FP32 or QAT, with its tokenizer) or a GGUF
// file (a served model: ours, or an imported pretrained one with its own tokenizer). One loader for
// bin/generate, bin/eval, bin/quantize and bin/serve; the tokenizer is a Vocab (data/vocab.h).
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "data/corpus.h"
#include "data/vocab.h"
#include "models/gguf_model.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "models/checkpoint.h"

namespace qat {

struct ModelSource {
  std::string path;
  std::optional<LoadedCheckpoint> checkpoint;  // a directory
  std::optional<GgufModel> gguf;               // a .gguf file
  std::shared_ptr<const Vocab> tokenizer;     // ours or the model's
  std::optional<QatConfig> qat;                // a QAT checkpoint's scheme

  bool is_gguf() const { return gguf.has_value(); }
  const ModelConfig& config() const { return gguf ? gguf->model.cfg : checkpoint->config; }
  // The training model of a checkpoint (QAT layers included), weights loaded; of a GGUF file, the FP32
  // model of its weights as f32 (quantized blocks dequantized: models/import.h), read again from the file.
  // Frozen (no gradients): for forwards, PTQ and export; training builds its own (models/train).
  std::unique_ptr<Transformer> transformer() const;
  // A one-line description: "checkpoint runs/small (FP32, 1815744 parameters)" / "GGUF x.gguf (q4_0, 1815744 parameters)".
  std::string describe() const;
};

// Opens a checkpoint directory or a GGUF file; errors name the path and what is wrong.
// served false: a GGUF's weights are not read into their served form (bin/quantize wants only
// transformer(), which reads them as f32 itself; the served copy would be one more model in memory).
ModelSource open_model(const std::string& path, bool served = true);

// The text a model is measured on: `data` when given, else the corpus the checkpoint was trained on (its
// state.json records --data, "" there being the default corpus, and --documents as training resolved
// it, absent in checkpoints older than the option: blank-line, the rule they were trained with), else
// (a GGUF file, a checkpoint without training state) the default corpus. `documents`, when given,
// overrides the recorded mode. `why` says which, for a result line.
struct TrainingText {
  std::string data;  // for load_corpus ("" = the default corpus)
  DocMode mode;
  std::string why;
};
TrainingText training_text(const ModelSource& src, const std::string& data, bool data_given, const std::string& documents,
                           bool documents_given);

}  // namespace qat
