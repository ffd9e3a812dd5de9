// Continuous batching's forward: several sequences, each with its own KV cache, advance together in
// one step. Every linear layer runs once per step on all the step's rows (M = the sum of each
// sequence's new tokens: 1 while it decodes, a chunk of its prompt while it prefills), attention runs
// per sequence over its own cache. Every row function is the one DecodeSession (decode.h) and the
// training forward use, and a linear layer's row does not depend on M (activations are quantized per
// row, integer dot products, one f32 epilogue order), so a sequence gets the logits it gets alone,
// bit for bit (DESIGN.md, invariant 8; tests/test_serve.cpp). Read next: serve_engine.h, its user.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "models/decode.h"
#include "src/core/storage.h"

namespace qat {

// One sequence's KV cache: one buffer of (layers, 2, held, Hkv, D), K then V of each layer
// position-major, so that a step reads a sequence's keys of every head as one dense run
// (DecodeSession's head-major cache, cap rows per head, made the 16-sequence step of the 300m shape
// ~1.3x slower). cap is the request's prompt + token budget (at most the context), and the buffer holds
// that many positions, so memory follows the request. It is allocated on 2 MiB pages where the kernel
// allows; a server faults its pages in before the request joins a step (prefault, on the client's thread:
// left to the steps, 12 fresh 100-position caches of the 300m shape stalled a step by ~0.5 s), and reuses
// a finished sequence's cache for the next request (reuse).
struct SeqCache {
  SeqCache(const ModelConfig& c, int64_t cap);
  void reuse(int64_t cap);  // empty again, for a request of `cap` positions (a new buffer if larger)
  // Faults in every page of the first cap positions (one write per 4 KiB), so that the steps filling
  // them take no page faults: a server calls it off the step's thread (serve_engine.cpp, submit).
  void prefault();
  float* k(int64_t l) const { return buf_.get() + 2 * l * held * row; }  // (held, Hkv, D)
  float* v(int64_t l) const { return buf_.get() + (2 * l + 1) * held * row; }
  int64_t pos = 0;  // positions filled
  int64_t cap = 0;
  int64_t held = 0;  // positions the buffer holds per layer (>= cap)
  int64_t layers, context, row;  // the model's layers and context; floats per position (Hkv x D)

 private:
  HugeFloats buf_;
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
  // A step's attention is spread over threads when its work (sum over rows of H x keys x D) is above
  // this; below, it runs on the calling thread. Tests set 0 to run the threaded path on a tiny model.
  static inline int64_t parallel_attention_work = 32768;

 private:
  void reserve(int64_t rows, int64_t positions);
  void attention_block(int64_t l, const std::vector<BatchItem>& items, int64_t rows);
  void rope_into_caches(int64_t l, const std::vector<BatchItem>& items);
  void attend(int64_t l, const std::vector<BatchItem>& items);
  void mlp_block(int64_t l, int64_t rows);

  const DecodeModel& m_;
  // Activations of one step, rows = sum of n: x, h, o (rows, C); q, att (rows, H*D); k, v (rows, Hkv*D);
  // g, u (rows, F); scores (H * positions); thread_scores (threads, H * positions) for threaded attention.
  std::vector<float> x_, h_, o_, q_, att_, k_, v_, g_, u_, scores_, thread_scores_;
  std::vector<float> rope_cs_;  // (positions, D): rope_angles of every position seen so far
  std::vector<std::pair<int64_t, int64_t>> row_item_;  // (rows) a row's item and the keys it sees
  int64_t rows_ = 0, positions_ = 0;
};

}  // namespace qat
