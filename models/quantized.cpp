// Served weights: from QAT, PTQ or f32, and into the inference model (see quantized.h).
#include "models/quantized.h"

#include <cmath>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "kernels/qgemm.h"
#include "src/quant/fake_quant.h"
#include "kernels/ref/quant.h"
#include "src/quant/scale_init.h"

namespace qat {

void ServedWeight::codes_scales(std::vector<int8_t>* qv, std::vector<float>* dv) const {
  if (!lazy()) {
    *qv = codes;
    *dv = scales;
    return;
  }
  // The blocks were checked when the file was read (codes in range, finite scales, one scale per row
  // for per-channel formats): this is the same decode, without the checks.
  const int64_t n = N * K, blocks_n = n / int64_t(ggml_type_info(uint32_t(q.format().ggml))->block_elems);
  std::vector<float> d(static_cast<size_t>(blocks_n));
  qv->resize(size_t(n));
  q.format().codec->to_codes(blocks, n, qv->data(), d.data());
  if (q.format().group > 0) {
    *dv = std::move(d);
    return;
  }
  dv->resize(size_t(N));  // per channel: every block of row r carries the row's scale
  for (int64_t r = 0; r < N; r++) (*dv)[size_t(r)] = d[size_t(r * (K / 32))];  // per channel: Q8_0 blocks
}

Tensor ServedWeight::dequantized() const {
  if (!q.quantized()) return f32;
  if (const BlockRule* rule = q.format().post_training) {
    Tensor out = Tensor::empty({N, K});
    rule->dequantize(block_data(), N * K, out.f32());
    return out;
  }
  std::vector<int8_t> qv;
  std::vector<float> dv;
  const std::vector<int8_t>* cq = &codes;
  const std::vector<float>* cd = &scales;
  if (lazy()) {
    codes_scales(&qv, &dv);
    cq = &qv;
    cd = &dv;
  }
  Tensor out = Tensor::empty({N, K});
  dequantize(cq->data(), cd->data(), N * K, q.group(K), out.f32());
  return out;
}

int64_t ServedWeight::held_bytes() const {
  return int64_t(codes.capacity() + scales.capacity() * sizeof(float) + owned_blocks.capacity()) +
         (f32.defined() ? int64_t(f32.nbytes()) : 0);
}

int64_t QuantizedModel::storage_bytes() const {
  int64_t b = embed.storage_bytes() + (cfg.tied ? 0 : lm_head.storage_bytes()) + int64_t(final_norm.nbytes());
  for (size_t l = 0; l < layers.size(); l++) {
    b += int64_t(attn_norm[l].nbytes() + mlp_norm[l].nbytes());
    for (const ServedWeight& w : layers[l]) b += w.storage_bytes();
  }
  return b;
}

namespace {
// Builds a QuantizedModel, asking `make` for each weight (index into t.params, format, scale index).
template <class Make>
QuantizedModel build(const Transformer& t, Make make, const QatConfig* formats) {
  QuantizedModel m;
  m.cfg = t.cfg;
  auto fmt = [&](int layer, Proj p) { return formats ? formats->linear(layer, p) : LayerQuant{}; };
  m.embed = make(t.tok_embd, formats ? formats->embed : LayerQuant{}, t.embed_scale);
  for (int l = 0; l < int(t.layers.size()); l++) {
    const LayerParams& L = t.layers[size_t(l)];
    std::vector<ServedWeight> ws;
    for (Proj p : kBlockProj) ws.push_back(make(L.weight(p), fmt(l, p), L.scale[int(p)]));
    m.layers.push_back(std::move(ws));
    m.attn_norm.push_back(t.params[L.attn_norm].clone());
    m.mlp_norm.push_back(t.params[L.mlp_norm].clone());
  }
  if (!t.cfg.tied) m.lm_head = make(t.lm_head, fmt(-1, Proj::lm_head), t.lm_head_scale);
  m.final_norm = t.params[t.final_norm].clone();
  m.scheme = formats ? formats->scheme : "f32";
  m.activations = formats ? formats->lm_head.name() : "f32";
  return m;
}

ServedWeight base_weight(const Transformer& t, int w, const LayerQuant& q) {
  ServedWeight s;
  s.name = t.params.info(w).name;
  s.q = q;
  s.N = t.params.info(w).shape[0];
  s.K = t.params.info(w).shape[1];
  if (!q.quantized()) s.f32 = t.params[w].clone();
  return s;
}
}  // namespace

QuantizedModel quantized_from_qat(const Transformer& t) {
  QAT_CHECK(t.qat.has_value(), "quantized_from_qat: not a QAT model");
  return build(t, [&](int w, const LayerQuant& q, int scale) {
    ServedWeight s = base_weight(t, w, q);
    if (q.quantized()) quantize_weight(t.params[w], t.params[scale], q, &s.codes, &s.scales);
    return s;
  }, &*t.qat);
}

QuantizedModel quantized_from_ptq(const Transformer& t, const QatConfig& formats, const std::string& method) {
  QAT_CHECK(!t.qat.has_value(), "PTQ starts from an FP32 model");
  return build(t, [&](int w, const LayerQuant& q, int) {
    ServedWeight s = base_weight(t, w, q);
    if (q.quantized()) {
      if (s.K % q.group(s.K) != 0)
        throw UsageError(str("PTQ ", q.name(), ": ", s.name, " has K = ", s.K, ", not a multiple of ", q.group(s.K),
                             " (choose dims that are, or keep it in another format: --qat-keep)"));
      if (const BlockRule* rule = q.format().post_training) {
        // Rows are whole super-blocks, so chunks of rows quantize independently (same bytes at any thread count).
        s.owned_blocks.resize(size_t(s.storage_bytes()));
        const int64_t row_bytes = s.storage_bytes() / s.N;
        const KRule r = method == "mse" ? KRule::mse : KRule::ggml;
        QAT_CHECK(method == "minmax" || method == "mse", "PTQ: method must be minmax or mse, got '", method, "'");
        const float* x = t.params[w].f32();
        // The rule refuses a non-finite value by throwing, which must not happen inside the parallel loop.
        for (int64_t i = 0; i < s.N * s.K; i++)
          QAT_CHECK(std::isfinite(x[i]), "PTQ ", q.name(), ": ", s.name, " holds a non-finite value (", x[i], " at index ", i, ")");
#pragma omp parallel for schedule(dynamic, 16)
        for (int64_t n = 0; n < s.N; n++) rule->quantize(x + n * s.K, s.K, s.owned_blocks.data() + n * row_bytes, r);
        return s;
      }
      s.codes.resize(size_t(s.N * s.K));
      s.scales.resize(size_t(s.N * s.K / q.group(s.K)));
      ptq_quantize(t.params[w].f32(), s.N, s.K, q, method, s.codes.data(), s.scales.data());
    }
    return s;
  }, &formats);
}

QuantizedModel quantized_from_f32(const Transformer& t) {
  return build(t, [&](int w, const LayerQuant& q, int) { return base_weight(t, w, q); }, nullptr);
}

namespace {
// A lazy weight's codes live only while it is packed: decoded here, packed, dropped, and its file pages
// given back, so loading holds the packed panels plus one weight's codes at a time.
// The freed codes go back to the system at once: glibc's dynamic mmap threshold puts such multi-MB
// temporaries on the heap after the first one is freed, between packed panels that stay, where their
// pages would remain resident (measured: 15 MiB of a 300M q4_0 model's peak RSS).
std::unique_ptr<Linear> linear_of(const ServedWeight& w, Backend backend) {
  if (!w.q.served()) {
    std::unique_ptr<Linear> lin = make_f32_linear(backend, w.dequantized());
    w.release_blocks();  // a lazy post-training weight: its file pages are no longer needed
    return lin;
  }
  if (!w.lazy()) return make_quant_linear(backend, w.q.format().family, w.codes.data(), w.scales.data(), w.N, w.K);
  std::unique_ptr<Linear> lin;
  {
    std::vector<int8_t> q;
    std::vector<float> d;
    w.codes_scales(&q, &d);
    lin = make_quant_linear(backend, w.q.format().family, q.data(), d.data(), w.N, w.K);
  }
  w.release_blocks();
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
  return lin;
}

// The embedding as rows to look up: f32 for f32 weights, else codes (1 byte per weight) and scales,
// dequantized a row at a time (EmbedTable::row) by the products dequantized() would have made.
EmbedTable embed_table(const ServedWeight& w) {
  EmbedTable e;
  e.C = w.K;
  if (!w.q.quantized() || w.q.format().post_training) {
    e.f32 = w.dequantized();  // the f32 weight itself (a shared tensor), or the K-quant's values
    w.release_blocks();       // a lazy post-training weight: its file pages are no longer needed
    return e;
  }
  e.group = w.q.group(w.K);
  w.codes_scales(&e.codes, &e.scales);
  return e;
}
}  // namespace

DecodeModel decode_model(const QuantizedModel& m, Backend backend) {
  DecodeModel d;
  d.cfg = m.cfg;
  d.tok_embd = embed_table(m.embed);
  for (size_t l = 0; l < m.layers.size(); l++) {
    DecodeLayer L;
    L.attn_norm = m.attn_norm[l];
    L.mlp_norm = m.mlp_norm[l];
    for (Proj p : kBlockProj) L.lin[int(p)] = linear_of(m.layers[l][size_t(p)], backend);
    d.layers.push_back(std::move(L));
  }
  d.final_norm = m.final_norm;
  // A tied embedding served as f32 rows (an f32 weight, or a post-training format's dequantized values)
  // is the lm_head's weight as it is: one (V, C) tensor shared, not its values made twice.
  if (m.cfg.tied && d.tok_embd.f32.defined()) d.lm_head = make_f32_linear(backend, d.tok_embd.f32);
  else d.lm_head = linear_of(m.cfg.tied ? m.embed : m.lm_head, backend);
  return d;
}

}  // namespace qat
