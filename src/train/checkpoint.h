// Checkpoint directories. One checkpoint = one directory holding
//   model.safetensors      every parameter (HF Llama names; QAT scales too), f32
//   config.json            the ModelConfig (+ "quantization_config" for QAT models)
//   tokenizer.json         the BPE tokenizer
//   optimizer.safetensors  AdamW moments per parameter ("exp_avg.<name>", "exp_avg_sq.<name>")
//   state.json             step, data-loader position, counters, and the training options
//   metrics.jsonl, loss.png (appended / redrawn between checkpoints)
// Writing never tears: the new checkpoint is built in "<dir>.ckpt-tmp" (every file fsynced), other
// files of <dir> are carried over, and the two directories are swapped in one atomic rename.
// Nothing non-finite is ever written. Read next: trainer.h.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "models/config.h"
#include "src/io/json.h"
#include "src/io/safetensors.h"
#include "src/nn/params.h"
#include "src/optim/adamw.h"

namespace qat {

struct CheckpointData {
  const ModelConfig* config = nullptr;
  Json quantization;                    // null for FP32 models
  const ParamStore* params = nullptr;
  AdamW* optimizer = nullptr;           // null: no optimizer.safetensors (exported / PTQ models)
  std::string tokenizer_json;           // serialized tokenizer
  Json state;                           // state.json contents (null: none)
};

// Writes the checkpoint atomically into `dir` (created if needed). Throws, leaving `dir` as it was,
// on a write error or when a parameter or moment holds NaN/inf.
void save_checkpoint(const std::string& dir, const CheckpointData& ck);

struct LoadedCheckpoint {
  std::string dir;
  ModelConfig config;
  Json quantization;                     // null when absent
  SafeTensors weights;
  std::optional<SafeTensors> optimizer;  // when present
  Json state;                            // null when absent
  std::string tokenizer_path;
};

// Reads and validates a checkpoint directory (config, weights, optional optimizer and state).
LoadedCheckpoint load_checkpoint(const std::string& dir);

// Copies weights into params: every parameter must be present with its shape, and no tensor may be
// left over (names them otherwise). `allow_missing` lists name suffixes that may be absent (e.g. QAT
// scales when a FP32 checkpoint initialises a QAT run); they keep their current values.
void load_params(ParamStore& params, const SafeTensors& weights, const std::string& what,
                 const std::vector<std::string>& allow_missing = {});
void load_optimizer(AdamW& opt, const ParamStore& params, const SafeTensors& st);

}  // namespace qat
