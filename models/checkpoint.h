// Checkpoint directories. One checkpoint = one directory holding
//   model.safetensors      every parameter (HF Llama names; QAT scales too), f32
//   config.json            the ModelConfig (+ "quantization_config" for QAT models)
//   tokenizer.json         the BPE tokenizer (or tokenizer.gguf: an imported model's vocabulary, data/vocab.h)
//   optimizer.safetensors  AdamW moments per parameter ("exp_avg.<name>", "exp_avg_sq.<name>")
//   state.json             step, data-loader position, counters, and the training options
//   metrics.jsonl, loss.png (appended / redrawn between checkpoints)
// Writing never tears: the new checkpoint is built in "<dir>.ckpt-tmp" (every file fsynced), every
// other entry of <dir> (metrics, a user's files and subdirectories) is carried over by hard links, and
// the two directories are swapped in one atomic rename; so nothing but the replaced files is removed.
// A training run claims its --out first (claim_output_dir): a foreign directory is refused, and a lock
// keeps a second run out. Loading never renames anything. Nothing non-finite is ever written.
// Read next: trainer.h.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "data/vocab.h"
#include "models/config.h"
#include "src/io/file.h"
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
  std::string tokenizer_json;           // the tokenizer file's bytes (Vocab::file_bytes)
  Json state;                           // state.json contents (null: none)
  std::string tokenizer_name = "tokenizer.json";  // its file name (Vocab::file_name)
};

// Writes the checkpoint atomically into `dir` (created if needed; a symlink is followed and stays).
// Throws, leaving `dir` as it was, on a write error or when a parameter or moment holds NaN/inf.
void save_checkpoint(const std::string& dir, const CheckpointData& ck);

// What a training run does first with its --out (`out` as the user gave it): refuses, in one line
// naming `out`, a path that exists and is not a directory, a mount point, and a non-empty directory
// that is neither a bin/train checkpoint (state.json) nor what a run killed before its first checkpoint
// leaves; then locks it for the caller's lifetime (a second run is refused, naming the holder's pid;
// the lock file is "<out>.lock" beside it) and finishes a save that a crash interrupted.
FileLock claim_output_dir(const std::string& out);

struct LoadedCheckpoint {
  std::string dir;
  ModelConfig config;
  Json quantization;                     // null when absent
  SafeTensors weights;
  std::optional<SafeTensors> optimizer;  // when present
  Json state;                            // null when absent
  std::string tokenizer_path;            // tokenizer.gguf when the directory has one, else tokenizer.json
  std::shared_ptr<const Vocab> vocab;    // set by an import (models/import.h); null: read tokenizer_path
};

// The checkpoint's tokenizer: an import's vocabulary, or its tokenizer file (load_vocab_file).
std::shared_ptr<const Vocab> checkpoint_vocab(const LoadedCheckpoint& ck);

// Reads and validates a checkpoint directory (config, weights, optional optimizer and state).
LoadedCheckpoint load_checkpoint(const std::string& dir);

// Copies weights into params: every parameter must be present with its shape, and no tensor may be
// left over (names them otherwise). `allow_missing` lists name suffixes that may be absent (e.g. QAT
// scales when a FP32 checkpoint initialises a QAT run); they keep their current values.
void load_params(ParamStore& params, const SafeTensors& weights, const std::string& what,
                 const std::vector<std::string>& allow_missing = {});
void load_optimizer(AdamW& opt, const ParamStore& params, const SafeTensors& st);

}  // namespace qat
