// The KV-cache forward (see decode.h). Shapes: n new tokens, C channels, H heads of D, Hkv kv-heads.
#include "models/decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/ref/quant.h"
#include "src/core/parallel.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

namespace qat {

void EmbedTable::row(int32_t id, float* out) const {
  if (f32.defined()) {
    std::memcpy(out, f32.f32() + int64_t(id) * C, size_t(C) * 4);
    return;
  }
  dequantize(codes.data() + int64_t(id) * C, scales.data() + int64_t(id) * (C / group), C, group, out);
}

int64_t EmbedTable::bytes() const {
  return f32.defined() ? int64_t(f32.nbytes()) : int64_t(codes.size() + scales.size() * sizeof(float));
}

int64_t DecodeModel::weight_bytes() const {
  int64_t b = tok_embd.bytes() + int64_t(final_norm.nbytes());
  for (const DecodeLayer& l : layers) {
    b += int64_t(l.attn_norm.nbytes() + l.mlp_norm.nbytes());
    for (Proj p : kBlockProj) b += l[p].weight_bytes();
  }
  if (lm_head) b += lm_head->weight_bytes();
  return b;
}

DecodeSession::DecodeSession(const DecodeModel& model, int64_t max_ctx, int64_t rows)
    : m_(model), max_ctx_(max_ctx) {
  QAT_CHECK(max_ctx >= 1 && rows >= 1, "decode: context and reserved rows must be positive");
  // Buffers for a forward of min(max_ctx, kReserveTokens) tokens, allocated and touched (zeroed) here,
  // not by the first forward: on this VM a first-touch page fault costs several microseconds, and a
  // 172-token prefill of `base` spent 4.8 of its 17.7 ms faulting in buffers it had just grown. Beyond
  // that, memory follows the tokens actually held (a file's context length is only a limit).
  const int64_t n = std::min(max_ctx, kReserveTokens);
  if (num_threads() >= 2) pool_ = std::make_unique<WorkerPool>(num_threads());
  reserve_rows(std::min(n, rows));
  reserve_positions(n);
}

void DecodeSession::reserve_rows(int64_t n) {
  if (n <= rows_) return;
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model, HD = c.n_heads * c.head_dim(), KV = c.n_kv_heads * c.head_dim(), F = c.ffn;
  for (auto [b, width] : {std::pair{&x_, C}, {&h_, C}, {&o_, C}, {&q_, HD}, {&att_, HD}, {&k_, KV}, {&v_, KV},
                          {&g_, F}, {&u_, F}})
    b->resize(size_t(n * width));
  rows_ = n;
}

// The cache doubles (up to max_ctx) so that decoding token by token copies each key O(1) times.
void DecodeSession::reserve_positions(int64_t positions) {
  if (positions <= cap_) return;
  const ModelConfig& c = m_.cfg;
  const int64_t D = c.head_dim(), Hkv = c.n_kv_heads, cap = std::min(max_ctx_, std::max(positions, 2 * cap_));
  scores_.resize(size_t(c.n_heads / Hkv * cap));
  rope_cs_.resize(size_t(cap * D));  // (cos, sin) of every position, computed once
  for (int64_t p = cap_; p < cap; p++) rope_angles(p, D, c.rope_base, rope_cs_.data() + p * D);
  for (std::vector<Tensor>* cache : {&k_cache_, &v_cache_}) {
    cache->resize(size_t(c.n_layers));
    for (Tensor& old : *cache) {  // (Hkv, cap_, D) -> (Hkv, cap, D): each head's rows move to its new start
      Tensor t = Tensor::zeros({Hkv, cap, D});
      for (int64_t h = 0; old.defined() && h < Hkv; h++)
        std::memcpy(t.f32() + h * cap * D, old.f32() + h * cap_ * D, size_t(pos_ * D) * 4);
      old = t;
    }
  }
  cap_ = cap;
}

// Finite weights can still overflow f32 (a norm weight of 3e38): a NaN or inf logit would be sampled
// as a token or reported as a perplexity of nan, so serving stops here with one line instead.
// logits (rows, V) of positions p0.. .
static void check_logits_finite(const float* logits, int64_t rows, int64_t V, int64_t p0) {
  for (int64_t i = 0; i < rows * V; i++)
    if (!std::isfinite(logits[i]))
      fail("decode: the logits at position ", p0 + i / V, " are not finite (", logits[i], " for token id ", i % V,
           "): the model's weights overflow f32");
}

// Profiler costs of one linear layer: 2 n N K operations, weight bytes streamed.
static void linear(const char* name, const Linear& e, const float* x, int64_t n, float* y) {
  prof::Scope s(name, prof::Phase::forward, 2.0 * double(n * e.rows() * e.cols()), double(e.weight_bytes()));
  e.forward(x, n, y);
}

Tensor DecodeSession::forward(const int32_t* tokens, int64_t n, bool all_logits) {
  const ModelConfig& c = m_.cfg;
  const int64_t p0 = pos_;
  QAT_CHECK(n >= 1, "decode: no tokens");
  QAT_CHECK(p0 + n <= max_ctx_, "decode: context full (", p0 + n, " tokens > ", max_ctx_, ")");
  for (int64_t i = 0; i < n; i++)
    QAT_CHECK(tokens[i] >= 0 && tokens[i] < c.vocab, "decode: token id ", tokens[i], " out of range");
  reserve_rows(n);
  reserve_positions(p0 + n);
  // The pool follows the thread count now, not the one at construction: a session made at 2 threads
  // and run after set_num_threads(1) must not decode on 2 (bench serve's 1-thread rows did).
  const int threads = num_threads();
  if (threads < 2) pool_.reset();
  else if (!pool_ || pool_->size() != threads) pool_ = std::make_unique<WorkerPool>(threads);
  PoolScope pool_scope(pool_.get());
  // Exclusive time: this row keeps what no named row below takes (the embedding copy, logits checks, glue).
  QAT_PROF("embed (rest of forward)", forward, 0.0, 8.0 * double(n * c.d_model));
  embed(tokens, n);
  for (int64_t l = 0; l < c.n_layers; l++) {
    attention_block(l, n);
    mlp_block(l, n);
  }
  pos_ += n;
  return logits(n, all_logits);
}

// x (n, C) = the embedding rows of the tokens.
void DecodeSession::embed(const int32_t* tokens, int64_t n) {
  const int64_t C = m_.cfg.d_model;
  for (int64_t i = 0; i < n; i++) m_.tok_embd.row(tokens[i], x_.data() + i * C);
}

// x += o(attention(rope(q(h)), cache + rope(k(h)), cache + v(h))) for h = rmsnorm(x, attn_norm), at positions
// pos_..pos_+n-1; it ends with h = rmsnorm(x, mlp_norm), mlp_block's input (one pass over x: the training
// forward's residual+rmsnorm row).
void DecodeSession::attention_block(int64_t l, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const DecodeLayer& L = m_.layers[size_t(l)];
  const int64_t C = c.d_model;
  {
    QAT_PROF("rmsnorm", forward, 4.0 * double(n * C), 8.0 * double(n * C));
    for (int64_t i = 0; i < n; i++) rmsnorm_row(x_.data() + i * C, L.attn_norm.f32(), c.rms_eps, C, h_.data() + i * C);
  }
  linear("linear q", L[Proj::q], h_.data(), n, q_.data());
  linear("linear k", L[Proj::k], h_.data(), n, k_.data());
  linear("linear v", L[Proj::v], h_.data(), n, v_.data());
  rope_into_cache(l, n);
  attend(l, n);
  linear("linear o", L[Proj::o], att_.data(), n, o_.data());
  QAT_PROF("residual+rmsnorm", forward, 5.0 * double(n * C), 12.0 * double(n * C));
  for (int64_t j = 0; j < n * C; j++) x_[size_t(j)] = x_[size_t(j)] + o_[size_t(j)];
  for (int64_t i = 0; i < n; i++) rmsnorm_row(x_.data() + i * C, L.mlp_norm.f32(), c.rms_eps, C, h_.data() + i * C);
}

// Rotates q (n, H, D) in place and k (n, Hkv, D) into layer l's cache, which also takes v; head-major.
void DecodeSession::rope_into_cache(int64_t l, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const int64_t H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim(), kv_stride = Hkv * D, p0 = pos_;
  QAT_PROF("rope", forward, 3.0 * double(n * (H + Hkv) * D), 8.0 * double(n * (H + Hkv) * D));
  const float* cs = rope_cs_.data() + p0 * D;  // RoPE (cos, sin) of the new positions
  float *kc = k_cache_[size_t(l)].f32(), *vc = v_cache_[size_t(l)].f32();
  for (int64_t i = 0; i < n; i++) {
    for (int64_t hh = 0; hh < H; hh++) rope_row(q_.data() + (i * H + hh) * D, cs + i * D, D);
    for (int64_t hh = 0; hh < Hkv; hh++) {
      float* krow = k_.data() + i * kv_stride + hh * D;
      rope_row(krow, cs + i * D, D);
      std::memcpy(kc + (hh * cap_ + p0 + i) * D, krow, size_t(D) * 4);
      std::memcpy(vc + (hh * cap_ + p0 + i) * D, v_.data() + i * kv_stride + hh * D, size_t(D) * 4);
    }
  }
}

// att (n, H, D): causal attention of the new queries over layer l's cache (positions 0..p0+i for token i).
void DecodeSession::attend(int64_t l, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const int64_t H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim(), group = H / Hkv, p0 = pos_;
  QAT_PROF("attention", forward, 4.0 * double(n * H * (p0 + n) * D), 8.0 * double((p0 + n) * Hkv * D));
  const float *kc = k_cache_[size_t(l)].f32(), *vc = v_cache_[size_t(l)].f32();
  const float scale = 1.0f / std::sqrt(float(D));
  auto rows = [&](int64_t r, float* s) {  // the `group` query heads of one kv-head of token i
    int64_t i = r / Hkv, g = r % Hkv, kv0 = g * cap_ * D, row = i * H + g * group;
    attention_rows(q_.data() + row * D, D, group, kc + kv0, vc + kv0, D, p0 + i + 1, D, scale, s, att_.data() + row * D,
                   D, nullptr);
  };
  // A parallel region costs a few microseconds even with one thread (2.4 us measured here: as much as a
  // decode token's attention for one layer), so decoding runs on the calling thread, the session's scratch.
  if (n == 1 || num_threads() < 2 || n * H * (p0 + n) * D <= 32768) {
    for (int64_t r = 0; r < n * Hkv; r++) rows(r, scores_.data());
    return;
  }
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(group * (p0 + n)));
#pragma omp for schedule(dynamic, 1)
    for (int64_t r = 0; r < n * Hkv; r++) rows(r, s.data());
  }
}

// x += down(swiglu(gate(h), up(h))), h = rmsnorm(x, mlp_norm) as attention_block left it.
void DecodeSession::mlp_block(int64_t l, int64_t n) {
  const ModelConfig& c = m_.cfg;
  const DecodeLayer& L = m_.layers[size_t(l)];
  const int64_t C = c.d_model, F = c.ffn;
  linear("linear gate", L[Proj::gate], h_.data(), n, g_.data());
  linear("linear up", L[Proj::up], h_.data(), n, u_.data());
  {
    QAT_PROF("swiglu", forward, 6.0 * double(n * F), 12.0 * double(n * F));
    swiglu_row(g_.data(), u_.data(), n * F, g_.data());
  }
  linear("linear down", L[Proj::down], g_.data(), n, o_.data());
  QAT_PROF("residual", forward, double(n * C), 12.0 * double(n * C));
  for (int64_t j = 0; j < n * C; j++) x_[size_t(j)] = x_[size_t(j)] + o_[size_t(j)];
}

// Logits (rows, V) of the last token, or of all n when all_logits: lm_head(rmsnorm(x)).
Tensor DecodeSession::logits(int64_t n, bool all_logits) {
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model, V = c.vocab, first = all_logits ? 0 : n - 1, rows = n - first;
  {
    QAT_PROF("rmsnorm", forward, 4.0 * double(rows * C), 8.0 * double(rows * C));
    for (int64_t i = first; i < n; i++) rmsnorm_row(x_.data() + i * C, m_.final_norm.f32(), c.rms_eps, C, h_.data() + i * C);
  }
  Tensor out = Tensor::empty({rows, V});
  linear("linear lm_head", *m_.lm_head, h_.data() + first * C, rows, out.f32());
  check_logits_finite(out.f32(), rows, V, pos_ - n + first);
  return out;
}

}  // namespace qat
