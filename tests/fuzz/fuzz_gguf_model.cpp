// libFuzzer target: the model-level GGUF loader (models/gguf_model.cpp, read_gguf_model) on hostile
// files (issue 8): the container checks of src/io/gguf.cpp, then every hyperparameter, tensor name,
// shape and type against the config, the Q8_0 / Q4_0 codes, and the gpt2 tokenizer. Invariants:
//  1. it returns or throws qat::Error with a one-line message naming the file: no crash, no UB, no
//     leak, no read outside the mapping (ASan/UBSan);
//  2. an accepted model is consistent: a valid config, every weight (N, K) with N*K codes and the
//     scales its format needs (or an f32 tensor of that shape), norms of C values, every value and
//     scale finite (issue 8: non-finite weights are reported), a tokenizer of exactly vocab tokens;
//  3. an accepted model written back by write_gguf_model loads to the same codes, scales and values.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "models/gguf_model.h"
#include "src/io/file.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

namespace {
bool all_finite(const float* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(p[i])) return false;
  return true;
}

void check_weight(const ServedWeight& w, int64_t N, int64_t K) {
  FUZZ_CHECK(w.N == N && w.K == K, "weight shape");
  if (w.q.w == WQuant::none) {
    FUZZ_CHECK(w.f32.shape() == Shape({N, K}) && w.codes.empty(), "f32 weight");
    FUZZ_CHECK(all_finite(w.f32.f32(), size_t(N * K)), "f32 weights are finite");
    return;
  }
  if (w.q.format().post_training) {  // K-quants: their blocks, decoded and found finite by the reader
    FUZZ_CHECK(w.codes.empty() && int64_t(w.owned_blocks.size()) == w.storage_bytes(), "post-training blocks");
    return;
  }
  FUZZ_CHECK(int64_t(w.codes.size()) == N * K, "codes");
  int64_t want = w.q.w == WQuant::int8_pc ? N : N * K / 32;
  FUZZ_CHECK(int64_t(w.scales.size()) == want, "scales");
  FUZZ_CHECK(all_finite(w.scales.data(), w.scales.size()), "scales are finite");
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.f32(), b.f32(), a.nbytes()) == 0;
}

bool same_weight(const ServedWeight& a, const ServedWeight& b) {
  if (a.q.name() != b.q.name() || a.N != b.N || a.K != b.K || a.codes != b.codes || a.owned_blocks != b.owned_blocks)
    return false;
  if (a.scales.size() != b.scales.size() ||
      (!a.scales.empty() && std::memcmp(a.scales.data(), b.scales.data(), a.scales.size() * sizeof(float)) != 0))
    return false;
  if (a.q.w != WQuant::none) return true;
  return same_tensor(a.f32, b.f32);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = fuzz_scratch("gguf-model", ".gguf"), again_path = fuzz_scratch("gguf-model-again", ".gguf");
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(data), size));
  std::optional<GgufModel> g;
  try {
    g = read_gguf_model(path);
  } catch (const Error& e) {
    std::string m = e.what();
    FUZZ_CHECK(m.find(path) != std::string::npos, "the message names the file");
    FUZZ_CHECK(m.find('\n') == std::string::npos, "the message is one line");
    return 0;
  }
  const QuantizedModel& m = g->model;
  const ModelConfig& c = m.cfg;
  c.validate();
  FUZZ_CHECK(g->tokenizer && g->tokenizer->vocab_size() == c.vocab, "tokenizer size");
  const int64_t C = c.d_model;
  check_weight(m.embed, c.vocab, C);
  FUZZ_CHECK(int64_t(m.layers.size()) == c.n_layers && int64_t(m.attn_norm.size()) == c.n_layers &&
                 int64_t(m.mlp_norm.size()) == c.n_layers,
             "layers");
  for (int64_t l = 0; l < c.n_layers; l++) {
    FUZZ_CHECK(m.layers[size_t(l)].size() == size_t(kBlockProjs), "7 weights per layer");
    for (Proj p : kBlockProj) check_weight(m.layers[size_t(l)][size_t(p)], c.proj_rows(p), c.proj_cols(p));
    FUZZ_CHECK(m.attn_norm[size_t(l)].shape() == Shape{C} && m.mlp_norm[size_t(l)].shape() == Shape{C}, "norms");
    FUZZ_CHECK(all_finite(m.attn_norm[size_t(l)].f32(), size_t(C)) && all_finite(m.mlp_norm[size_t(l)].f32(), size_t(C)),
               "norms are finite");
  }
  FUZZ_CHECK(m.final_norm.shape() == Shape{C} && all_finite(m.final_norm.f32(), size_t(C)), "final norm");
  if (!c.tied) check_weight(m.lm_head, c.vocab, C);

  try {
    write_gguf_model(again_path, m, *g->tokenizer);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    FUZZ_CHECK(false, "an accepted model must be writable");
  }
  std::optional<GgufModel> h;
  try {
    h = read_gguf_model(again_path);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    FUZZ_CHECK(false, "an accepted model, written back, must load");
  }
  const QuantizedModel& n = h->model;
  FUZZ_CHECK(n.cfg.vocab == c.vocab && n.cfg.d_model == C && n.cfg.n_layers == c.n_layers && n.cfg.tied == c.tied &&
                 n.cfg.ffn == c.ffn && n.cfg.n_heads == c.n_heads && n.cfg.n_kv_heads == c.n_kv_heads &&
                 n.cfg.context == c.context && n.cfg.rms_eps == c.rms_eps && n.cfg.rope_base == c.rope_base,
             "config round trip");
  FUZZ_CHECK(h->tokenizer->fingerprint() == g->tokenizer->fingerprint(), "tokenizer round trip");
  FUZZ_CHECK(same_weight(m.embed, n.embed) && same_tensor(m.final_norm, n.final_norm), "embedding / final norm");
  if (!c.tied) FUZZ_CHECK(same_weight(m.lm_head, n.lm_head), "lm_head");
  for (size_t l = 0; l < m.layers.size(); l++) {
    FUZZ_CHECK(same_tensor(m.attn_norm[l], n.attn_norm[l]) && same_tensor(m.mlp_norm[l], n.mlp_norm[l]), "layer norms");
    for (size_t k = 0; k < size_t(kBlockProjs); k++) FUZZ_CHECK(same_weight(m.layers[l][k], n.layers[l][k]), "layer weight");
  }
  return 0;
}
