// The model shape of a new training run: a preset, then a Hugging Face config.json (--config), then
// one flag per field (--layers --dim --heads --kv-heads --ffn --rope-theta; --vocab and --ctx keep
// their own meaning in TrainOptions); and the check that such flags agree with the checkpoint of a
// --init / --resume run, whose shape is the checkpoint's. Read next: memory.h (the budget it must fit).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "models/config.h"

namespace qat {

struct ShapeFlags {
  std::string config;             // --config FILE.json ("": none)
  int64_t layers = 0, dim = 0, heads = 0, kv_heads = 0, ffn = 0;  // 0: not given
  double rope_theta = 0;          // 0: not given
  bool vocab_given = false;       // --vocab was given: it wins over the file's vocab_size
  bool custom() const;            // --config or any of the flags above: the shape is no preset's
};

// A new run's shape: preset `preset` (its context; vocab = `vocab`, the BPE size), the keys of the
// --config file, then the flags; `ctx` > 0 (--ctx) sets the context last. Validated; a bad one is a
// UsageError of one line. `note` hears the defaulted rope_layout of a --config file.
ModelConfig new_run_shape(const std::string& preset, int64_t vocab, int64_t ctx, const ShapeFlags& f,
                          const std::function<void(const std::string&)>& note);

// With --init / --resume the shape is the checkpoint's `ck`: a --config key or a flag that says
// otherwise is a UsageError naming the field, e.g. "--layers 6 conflicts with CKPT's num_hidden_layers 4".
void check_shape_agrees(const ModelConfig& ck, const ShapeFlags& f, const std::string& ck_name);

// --config, --layers, --dim, --heads, --kv-heads, --ffn, --rope-theta into *sh (bin/train, bin/qat-study).
class ArgParser;
void declare_shape_options(ArgParser& p, ShapeFlags* sh);

}  // namespace qat
