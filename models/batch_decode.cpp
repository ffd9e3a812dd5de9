// The batched KV-cache forward (see batch_decode.h). It follows DecodeSession::forward step for step,
// with the rows of several sequences stacked: x (rows, C) where item s owns rows r_s .. r_s + n_s - 1.
#include "models/batch_decode.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "src/core/parallel.h"
#include "src/ops/rowops.h"
#include "src/util/error.h"

namespace qat {

SeqCache::SeqCache(const ModelConfig& c, int64_t cap_)
    : layers(c.n_layers), context(c.context), row(c.n_kv_heads * c.head_dim()) {
  reuse(cap_);
}

// Positions are written (rope_into_caches) before any attention reads them, so the buffer is left
// uninitialised: its pages are first touched by the steps that fill them.
void SeqCache::reuse(int64_t cap_) {
  QAT_CHECK(cap_ >= 1 && cap_ <= context, "serve: a sequence of ", cap_, " positions does not fit the context of ", context);
  cap = cap_;
  pos = 0;
  if (cap_ > held) {
    buf_.reset();  // before the new one: peak memory is one buffer, not two
    buf_ = alloc_huge_floats(size_t(2 * layers * cap_ * row));
    held = cap_;
  }
}

void SeqCache::prefault() {
  for (int64_t l = 0; l < 2 * layers; l++) {  // K and V of each layer: the first cap positions
    float* p = buf_.get() + l * held * row;
    const int64_t n = cap * row;
    for (int64_t i = 0; i < n; i += 1024) p[i] = 0.0f;
    p[n - 1] = 0.0f;
  }
}

BatchDecoder::BatchDecoder(const DecodeModel& model) : m_(model) {}

void BatchDecoder::reserve(int64_t rows, int64_t positions) {
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model, HD = c.n_heads * c.head_dim(), KV = c.n_kv_heads * c.head_dim(), F = c.ffn, D = c.head_dim();
  if (rows > rows_) {
    for (auto [b, width] : {std::pair{&x_, C}, {&h_, C}, {&o_, C}, {&q_, HD}, {&att_, HD}, {&k_, KV}, {&v_, KV},
                            {&g_, F}, {&u_, F}})
      b->resize(size_t(rows * width));
    rows_ = rows;
  }
  if (positions > positions_) {
    scores_.resize(size_t(c.n_heads * positions));
    rope_cs_.resize(size_t(positions * D));
    for (int64_t p = positions_; p < positions; p++) rope_angles(p, D, c.rope_base, rope_cs_.data() + p * D);
    positions_ = positions;
  }
}

Tensor BatchDecoder::step(const std::vector<BatchItem>& items) {
  const ModelConfig& c = m_.cfg;
  const int64_t C = c.d_model, V = c.vocab, S = int64_t(items.size());
  QAT_CHECK(S >= 1, "serve: an empty step");
  int64_t rows = 0, positions = 0;
  for (const BatchItem& it : items) {
    QAT_CHECK(it.n >= 1 && it.cache->pos + it.n <= it.cache->cap, "serve: ", it.cache->pos + it.n,
              " positions do not fit a sequence's cache of ", it.cache->cap);
    for (int64_t i = 0; i < it.n; i++)
      QAT_CHECK(it.tokens[i] >= 0 && it.tokens[i] < V, "serve: token id ", it.tokens[i], " out of range");
    rows += it.n;
    positions = std::max(positions, it.cache->pos + it.n);
  }
  reserve(rows, positions);
  for (int64_t r = 0; const BatchItem& it : items)  // x = the embedding rows, items stacked
    for (int64_t i = 0; i < it.n; i++, r++)
      m_.tok_embd.row(it.tokens[i], x_.data() + r * C);
  for (int64_t l = 0; l < c.n_layers; l++) {
    attention_block(l, items, rows);
    mlp_block(l, rows);
  }
  // Logits of each item's last row: lm_head(rmsnorm(x)) on S rows (one GEMM).
  float* last = h_.data();  // (S, C) of h_'s (rows, C): h_ is free once the last layer is done
  for (int64_t s = 0, r = 0; s < S; s++) {
    r += items[size_t(s)].n;
    rmsnorm_row(x_.data() + (r - 1) * C, m_.final_norm.f32(), c.rms_eps, C, last + s * C);
  }
  Tensor out = Tensor::empty({S, V});
  m_.lm_head->forward(last, S, out.f32());
  for (const BatchItem& it : items) it.cache->pos += it.n;
  for (int64_t i = 0; i < S * V; i++)
    QAT_CHECK(std::isfinite(out.f32()[i]), "serve: a logit is not finite: the model's weights overflow f32");
  return out;
}

// DecodeSession::attention_block on the stacked rows: x += o(attention(...)); ends with h = rmsnorm(x, mlp_norm).
void BatchDecoder::attention_block(int64_t l, const std::vector<BatchItem>& items, int64_t rows) {
  const ModelConfig& c = m_.cfg;
  const DecodeLayer& L = m_.layers[size_t(l)];
  const int64_t C = c.d_model;
  for (int64_t i = 0; i < rows; i++) rmsnorm_row(x_.data() + i * C, L.attn_norm.f32(), c.rms_eps, C, h_.data() + i * C);
  L[Proj::q].forward(h_.data(), rows, q_.data());
  L[Proj::k].forward(h_.data(), rows, k_.data());
  L[Proj::v].forward(h_.data(), rows, v_.data());
  rope_into_caches(l, items);
  attend(l, items);
  L[Proj::o].forward(att_.data(), rows, o_.data());
  for (int64_t j = 0; j < rows * C; j++) x_[size_t(j)] = x_[size_t(j)] + o_[size_t(j)];
  for (int64_t i = 0; i < rows; i++) rmsnorm_row(x_.data() + i * C, L.mlp_norm.f32(), c.rms_eps, C, h_.data() + i * C);
}

// Rotates q (rows, H, D) in place and k (rows, Hkv, D) into each item's cache at its own positions.
void BatchDecoder::rope_into_caches(int64_t l, const std::vector<BatchItem>& items) {
  const ModelConfig& c = m_.cfg;
  const int64_t H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim(), kv_stride = Hkv * D;
  int64_t r = 0;
  for (const BatchItem& it : items) {
    float *kc = it.cache->k(l), *vc = it.cache->v(l);
    const int64_t p0 = it.cache->pos;
    for (int64_t i = 0; i < it.n; i++, r++) {
      const float* cs = rope_cs_.data() + (p0 + i) * D;
      for (int64_t hh = 0; hh < H; hh++) rope_row(q_.data() + (r * H + hh) * D, cs, D);
      for (int64_t hh = 0; hh < Hkv; hh++) {
        float* krow = k_.data() + r * kv_stride + hh * D;
        rope_row(krow, cs, D);
        std::memcpy(kc + ((p0 + i) * Hkv + hh) * D, krow, size_t(D) * 4);
        std::memcpy(vc + ((p0 + i) * Hkv + hh) * D, v_.data() + r * kv_stride + hh * D, size_t(D) * 4);
      }
    }
  }
}

// att (rows, H, D): each item's queries over its own cache, causal (token i sees positions 0..p0+i).
// One row's heads together (attention_heads): its cache is position-major, so a row reads its keys and
// values as two sequential runs, where head-by-head calls read Hkv strided ones (attention of 16
// sequences of the 300m shape at 50 positions, 2 threads: 7.2-12.5 ms a step against 10.0-16.3 head by
// head). Each head's output is attention_rows's, so the row's bits are DecodeSession's; rows are
// independent, so spreading them over threads changes no bit. A short step stays on the calling thread,
// as DecodeSession's does (a parallel region costs microseconds).
void BatchDecoder::attend(int64_t l, const std::vector<BatchItem>& items) {
  const ModelConfig& c = m_.cfg;
  const int64_t H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim(), group = H / Hkv;
  const float scale = 1.0f / std::sqrt(float(D));
  row_item_.clear();
  int64_t work = 0;
  for (size_t s = 0; s < items.size(); s++)
    for (int64_t i = 0; i < items[s].n; i++) {
      row_item_.push_back({int64_t(s), items[s].cache->pos + i + 1});
      work += H * (items[s].cache->pos + i + 1) * D;
    }
  const int64_t rows = int64_t(row_item_.size());
  // Pieces: each row's kv heads in `parts` ranges, enough pieces for every thread when the rows are few
  // (one decoding sequence: its heads in halves at 2 threads); a range is attention_heads on a slice of
  // the row (query heads g0 * group.., kv heads g0..), which changes no bit of any head.
  const int threads = num_threads();
  const bool parallel = threads > 1 && work > parallel_attention_work;
  const int64_t parts = parallel ? std::min<int64_t>(Hkv, (threads + rows - 1) / rows) : 1;
  auto piece = [&](int64_t p, float* scores) {
    const int64_t r = p / parts, part = p % parts, g0 = Hkv * part / parts, g1 = Hkv * (part + 1) / parts;
    const SeqCache& sc = *items[size_t(row_item_[size_t(r)].first)].cache;
    const int64_t at = (r * H + g0 * group) * D;
    attention_heads(q_.data() + at, (g1 - g0) * group, group, sc.k(l) + g0 * D, sc.v(l) + g0 * D, Hkv * D,
                    row_item_[size_t(r)].second, D, scale, scores, att_.data() + at);
  };
  const int64_t pieces = rows * parts;
  if (pieces == 1 || !parallel) {
    for (int64_t p = 0; p < pieces; p++) piece(p, scores_.data());
    return;
  }
  const int64_t per_thread = H * positions_;  // each thread's scores, kept between steps
  if (int64_t(thread_scores_.size()) < threads * per_thread) thread_scores_.resize(size_t(threads * per_thread));
#pragma omp parallel num_threads(threads)
#pragma omp for schedule(dynamic, 1)
  for (int64_t p = 0; p < pieces; p++) piece(p, thread_scores_.data() + omp_get_thread_num() * per_thread);
}

// x += down(swiglu(gate(h), up(h))).
void BatchDecoder::mlp_block(int64_t l, int64_t rows) {
  const ModelConfig& c = m_.cfg;
  const DecodeLayer& L = m_.layers[size_t(l)];
  const int64_t C = c.d_model, F = c.ffn;
  L[Proj::gate].forward(h_.data(), rows, g_.data());
  L[Proj::up].forward(h_.data(), rows, u_.data());
  swiglu_row(g_.data(), u_.data(), rows * F, g_.data());
  L[Proj::down].forward(g_.data(), rows, o_.data());
  for (int64_t j = 0; j < rows * C; j++) x_[size_t(j)] = x_[size_t(j)] + o_[size_t(j)];
}

}  // namespace qat
