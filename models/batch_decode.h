// Continuous batching's forward: several sequences, each with its own KV cache, advance together in
// one step. Every linear layer runs once per step on all the step's rows (M = the sum of each
// sequence's new tokens: 1 while it decodes, a chunk of its prompt while it prefills), attention runs
// per sequence over its own cache. Every row function is the one DecodeSession (decode.h) and the
// training forward use, and a linear layer's row does not depend on M (activations are quantized per
// row, integer dot products, one f32 epilogue order), so a sequence gets the logits it gets alone,
// bit for bit (DESIGN.md, invariant 8; tests/test_serve.cpp). Read next: serve_engine.h, its user.
#pragma once
#include <cstdint>
#include <vector>

#include "models/decode.h"

namespace qat {

// One sequence's KV cache: per layer (Hkv, cap, D), head-major like DecodeSession's. cap is fixed at
// creation (the request's prompt + token budget, at most the context), so memory follows the request.
struct SeqCache {
  SeqCache(const ModelConfig& c, int64_t cap);
  int64_t pos = 0;  // positions filled
  int64_t cap;
  std::vector<std::vector<float>> k, v;  // per layer: (Hkv, cap, D)
};

// A sequence's share of one step: its next n tokens, at positions cache->pos .. pos+n-1.
struct BatchItem {
  SeqCache* cache;
  const int32_t* tokens;  // (n)
  int64_t n;
};

class BatchDecoder {
 public:
  explicit BatchDecoder(const DecodeModel& model);
  // Runs every item's tokens in one forward and moves each cache's pos past them. Returns logits
  // (S, V): row s is item s's last token. An item that does not fit its cache: an Error, nothing run.
  Tensor step(const std::vector<BatchItem>& items);

 private:
  void reserve(int64_t rows, int64_t positions);
  void attention_block(int64_t l, const std::vector<BatchItem>& items, int64_t rows);
  void rope_into_caches(int64_t l, const std::vector<BatchItem>& items);
  void attend(int64_t l, const std::vector<BatchItem>& items);
  void mlp_block(int64_t l, int64_t rows);

  const DecodeModel& m_;
  // Activations of one step, rows = sum of n: x, h, o (rows, C); q, att (rows, H*D); k, v (rows, Hkv*D);
  // g, u (rows, F); scores (group * positions).
  std::vector<float> x_, h_, o_, q_, att_, k_, v_, g_, u_, scores_;
  std::vector<float> rope_cs_;  // (positions, D): rope_angles of every position seen so far
  int64_t rows_ = 0, positions_ = 0;
};

}  // namespace qat
