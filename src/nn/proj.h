// The linear projections of a Llama decoder block, and the lm_head: one enum, and one table of their
// names wherever they appear (our short names in --qat-keep, logs and sensitivity scans; Hugging Face's
// tensor names; GGUF's) and of their weight shapes (N, K) in the model's dimensions. Every loop over a
// block's linear layers reads it, and the forward names them: project(h, Proj::gate, l).
// Read next: models/transformer.cpp (the forward), models/config.h (proj_rows / proj_cols).
#pragma once
#include <cstdint>

namespace qat {

enum class Proj : uint8_t { q, k, v, o, gate, up, down, lm_head };
constexpr int kBlockProjs = 7;  // q .. down: the linear layers of one block (index = int(Proj))

// A dimension of a weight: d_model, heads x head dim, kv heads x head dim, ffn hidden, vocabulary.
enum class Dim : uint8_t { C, HD, HkvD, F, V };

struct ProjInfo {
  const char* name;  // "q" .. "down", "lm_head"
  const char* hf;    // Hugging Face: "model.layers.L." + hf + ".weight" ("lm_head.weight" at the top)
  const char* gguf;  // GGUF: "blk.L." + gguf + ".weight" ("output.weight" at the top)
  bool attn;         // part of the attention half of a block (--qat-keep attn / mlp)
  Dim rows, cols;    // the weight (N, K): y = x W^T maps K inputs to N outputs
};

inline constexpr ProjInfo kProjInfo[kBlockProjs + 1] = {
    {"q", "self_attn.q_proj", "attn_q", true, Dim::HD, Dim::C},
    {"k", "self_attn.k_proj", "attn_k", true, Dim::HkvD, Dim::C},
    {"v", "self_attn.v_proj", "attn_v", true, Dim::HkvD, Dim::C},
    {"o", "self_attn.o_proj", "attn_output", true, Dim::C, Dim::HD},
    {"gate", "mlp.gate_proj", "ffn_gate", false, Dim::F, Dim::C},
    {"up", "mlp.up_proj", "ffn_up", false, Dim::F, Dim::C},
    {"down", "mlp.down_proj", "ffn_down", false, Dim::C, Dim::F},
    {"lm_head", "lm_head", "output", false, Dim::V, Dim::C},
};
inline constexpr Proj kBlockProj[kBlockProjs] = {Proj::q, Proj::k, Proj::v, Proj::o, Proj::gate, Proj::up, Proj::down};

inline const ProjInfo& proj_info(Proj p) { return kProjInfo[int(p)]; }

}  // namespace qat
