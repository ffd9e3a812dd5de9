// Inference with a KV cache: prefill a prompt (many tokens at once) and decode one token at a time.
// Every row computation is the function the training forward uses (src/ops/rowops.h: rmsnorm_row,
// rope_angles/rope_row, attention_rows, swiglu_row), and every linear layer is a Linear, so for a
// QAT model the served logits are bit-identical to the trained ones (DESIGN.md, invariant 2).
// Read next: src/ops/rowops.h, src/nn/linear.h.
#pragma once
#include <memory>
#include <vector>

#include "models/config.h"
#include "src/core/parallel.h"
#include "src/nn/linear.h"
#include "src/core/tensor.h"
#include "src/nn/proj.h"

namespace qat {

struct DecodeLayer {
  Tensor attn_norm, mlp_norm;                     // (C)
  std::unique_ptr<Linear> lin[kBlockProjs];   // q k v o gate up down: (N, K) of config's proj_rows/cols
  const Linear& operator[](Proj p) const { return *lin[int(p)]; }
};

// The token embedding (V, C) as served: f32 rows, or integer codes (V, C) with scales (V, C/group)
// dequantized one looked-up row at a time (code * scale, the products of dequantize(), so the rows are
// the bits of the dequantized matrix) at a quarter of the f32 table's memory.
struct EmbedTable {
  Tensor f32;                  // (V, C) when the embedding is f32
  std::vector<int8_t> codes;   // (V, C) otherwise
  std::vector<float> scales;   // (V, C / group)
  int64_t group = 0, C = 0;    // elements per scale (32, or C per channel)
  void row(int32_t id, float* out) const;  // out (C)
  int64_t bytes() const;
};

struct DecodeModel {
  ModelConfig cfg;
  EmbedTable tok_embd;                // (V, C): rows are looked up
  std::vector<DecodeLayer> layers;
  Tensor final_norm;                  // (C)
  std::unique_ptr<Linear> lm_head;  // (V, C)
  int64_t weight_bytes() const;
};

// Memory follows the tokens held, not max_ctx (a file may claim a context of 2^20 tokens): the
// constructor sizes and touches the buffers for min(max_ctx, kReserveTokens) tokens, a forward grows
// them to what it needs (the KV cache geometrically). Results do not depend on the capacity.
class DecodeSession {
 public:
  // Tokens the constructor prepares for: every preset's full context, so the first forward of a
  // project model faults in no pages (a first-touch fault costs microseconds on the VMs measured).
  static constexpr int64_t kReserveTokens = 512;
  // reserve_rows: tokens the activation buffers are prepared for (a caller that knows its prompt
  // length, bin/generate, passes it: a 300M model's 512 rows are 25 MiB); the KV cache is prepared for
  // min(max_ctx, kReserveTokens) positions either way.
  DecodeSession(const DecodeModel& model, int64_t max_ctx, int64_t reserve_rows = kReserveTokens);

  // Runs `n` tokens at positions pos()..pos()+n-1 and appends their keys/values to the cache.
  // Returns logits (n, V) when all_logits, else (1, V) for the last token.
  Tensor forward(const int32_t* tokens, int64_t n, bool all_logits = false);
  int64_t pos() const { return pos_; }
  int64_t max_ctx() const { return max_ctx_; }
  void reset() { pos_ = 0; }
  int pool_threads() const { return pool_ ? pool_->size() : 1; }
  int64_t reserved_rows() const { return rows_; }  // tokens one forward can take without growing

 private:
  // Grows the activations to `n` rows and the positions (cache, RoPE table, scores) to `positions`.
  void reserve_rows(int64_t n);
  void reserve_positions(int64_t positions);
  // The steps of forward, on the session's buffers for n tokens at positions pos_..pos_+n-1.
  void embed(const int32_t* tokens, int64_t n);
  void attention_block(int64_t l, int64_t n);
  void rope_into_cache(int64_t l, int64_t n);
  void attend(int64_t l, int64_t n);
  void mlp_block(int64_t l, int64_t n);
  Tensor logits(int64_t n, bool all_logits);  // after pos_ has moved past the n tokens

  const DecodeModel& m_;
  // num_threads() >= 2: the workers of this session's one-token matvecs (src/core/parallel.h), installed
  // for each forward, parked between tokens, stopped and joined with the session.
  std::unique_ptr<WorkerPool> pool_;
  int64_t max_ctx_, pos_ = 0;
  int64_t rows_ = 0;  // tokens one forward can take (activation buffers)
  int64_t cap_ = 0;   // positions the KV cache holds, <= max_ctx
  // Per layer (Hkv, cap, D): head-major, so attention streams one head's keys and values contiguously.
  std::vector<Tensor> k_cache_, v_cache_;
  // Activations of the last forward, kept so that decoding a token allocates nothing but its logits:
  // x, h, o (n, C); q, att (n, H*D); k, v (n, Hkv*D); g, u (n, F) for n = rows; scores (group * cap).
  std::vector<float> x_, h_, o_, q_, att_, k_, v_, g_, u_, scores_;
  std::vector<float> rope_cs_;  // (cap, D): rope_angles of every position held
};

}  // namespace qat
