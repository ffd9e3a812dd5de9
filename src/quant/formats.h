// The weight formats: one row per format with everything the other layers need to know about it (the
// quantizer's group and code range, the integer kernel family that runs it, the GGUF tensor type it is
// exported as, its bytes). LayerQuant's rules, fake quant's packing, the served model and GGUF I/O read
// this table instead of each keeping its own switch. Read next: scheme.h (formats per layer).
#pragma once
#include <cstdint>

#include "kernels/qgemm.h"
#include "src/io/gguf.h"

namespace qat {

enum class WQuant : uint8_t { none, q4_0, q8_0, int8_pc, int4_pc, tq2_0, tq1_0, q4_k, q6_k };

// A GGUF block type's codec (kernels/ref/quant.h): n elements of blocks <-> codes q (n) and one scale
// per block d (n / block_elems).
struct BlockCodec {
  void (*to_codes)(const void* blocks, int64_t n, int8_t* q, float* d);
  void (*from_codes)(const int8_t* q, const float* d, int64_t n, void* blocks);
};
template <class Block, void (*To)(const Block*, int64_t, int8_t*, float*),
          void (*From)(const int8_t*, const float*, int64_t, Block*)>
inline constexpr BlockCodec kCodec = {
    [](const void* b, int64_t n, int8_t* q, float* d) { To(static_cast<const Block*>(b), n, q, d); },
    [](const int8_t* q, const float* d, int64_t n, void* b) { From(q, d, n, static_cast<Block*>(b)); }};
inline constexpr const BlockCodec* kQ4_0Codec = &kCodec<BlockQ4_0, q4_0_to_codes, q4_0_from_codes>;
inline constexpr const BlockCodec* kQ8_0Codec = &kCodec<BlockQ8_0, q8_0_to_codes, q8_0_from_codes>;
inline constexpr const BlockCodec* kTQ2_0Codec = &kCodec<BlockTQ2_0, tq2_0_to_codes, tq2_0_from_codes>;
inline constexpr const BlockCodec* kTQ1_0Codec = &kCodec<BlockTQ1_0, tq1_0_to_codes, tq1_0_from_codes>;

// A post-training block format (the K-quants): no codes + one scale per block, only f32 -> blocks (by
// ggml's rule or its unweighted MSE variant) and blocks -> f32. Such a weight is quantized once, by PTQ,
// and served as its dequantized f32 values; QAT does not train it.
struct BlockRule {
  void (*quantize)(const float* x, int64_t n, void* blocks, KRule rule);  // x (n) -> n / 256 blocks
  void (*dequantize)(const void* blocks, int64_t n, float* y);            // -> y (n)
};
template <class Block, void (*Q)(const float*, int64_t, Block*, KRule), void (*D)(const Block*, int64_t, float*)>
inline constexpr BlockRule kBlockRule = {
    [](const float* x, int64_t n, void* b, KRule r) { Q(x, n, static_cast<Block*>(b), r); },
    [](const void* b, int64_t n, float* y) { D(static_cast<const Block*>(b), n, y); }};
inline constexpr const BlockRule* kQ4_KRule = &kBlockRule<BlockQ4_K, quantize_q4_k, dequantize_q4_k>;
inline constexpr const BlockRule* kQ6_KRule = &kBlockRule<BlockQ6_K, quantize_q6_k, dequantize_q6_k>;

struct WeightFormat {
  WQuant w;
  const char* name;      // "f32", "q4_0", "q8_0", "int8_pc", "int4_pc", "tq2_0", "tq1_0", "q4_k", "q6_k"
  int64_t group;         // elements per scale: 32 or 256 (blocks), 0 = one per output channel (K), -1: no codes
                         // (post-training formats: their super-block, the unit K must be a multiple of)
  int code_min, code_max;  // (post-training formats: the stored code range, for reference)
  bool kernel;           // an integer kernel family runs it ...
  WFormat family;        // ... this one (meaningful when kernel)
  bool gguf;             // exported to and read from GGUF ...
  GgmlType ggml;         // ... as this tensor type (per-channel int8: Q8_0 blocks repeating the row's scale)
  const BlockCodec* codec;  // that type's blocks as codes + scales (null: f32, not in GGUF, post-training)
  const BlockRule* post_training = nullptr;  // a post-training block format: its rule (codec null)
};

inline constexpr WeightFormat kWeightFormats[] = {
    {WQuant::none, "f32", -1, 0, 0, false, WFormat::q4_0, true, GgmlType::F32, nullptr},
    {WQuant::q4_0, "q4_0", 32, kQ4Min, kQ4Max, true, WFormat::q4_0, true, GgmlType::Q4_0, kQ4_0Codec},
    {WQuant::q8_0, "q8_0", 32, kQ8Min, kQ8Max, true, WFormat::q8_0, true, GgmlType::Q8_0, kQ8_0Codec},
    {WQuant::int8_pc, "int8_pc", 0, kQ8Min, kQ8Max, true, WFormat::s8_pc, true, GgmlType::Q8_0, kQ8_0Codec},
    {WQuant::int4_pc, "int4_pc", 0, kQ4Min, kQ4Max, false, WFormat::q4_0, false, GgmlType::F32, nullptr},
    // Ternary: codes in [-1, 1], one f16 scale per 256; one kernel family, two GGUF layouts.
    {WQuant::tq2_0, "tq2_0", QKK, -1, 1, true, WFormat::tq, true, GgmlType::TQ2_0, kTQ2_0Codec},
    {WQuant::tq1_0, "tq1_0", QKK, -1, 1, true, WFormat::tq, true, GgmlType::TQ1_0, kTQ1_0Codec},
    // The K-quants: post-training only, served as their dequantized f32 values (kernels/ref/kquants.cpp).
    {WQuant::q4_k, "q4_k", QKK, 0, 15, false, WFormat::q4_0, true, GgmlType::Q4_K, nullptr, kQ4_KRule},
    {WQuant::q6_k, "q6_k", QKK, -32, 31, false, WFormat::q4_0, true, GgmlType::Q6_K, nullptr, kQ6_KRule},
};

inline const WeightFormat& weight_format(WQuant w) { return kWeightFormats[int(w)]; }
static_assert(kWeightFormats[int(WQuant::q6_k)].w == WQuant::q6_k, "kWeightFormats is indexed by WQuant");

// Two formats that hold the same values in different layouts: one kernel family, the same code range,
// one scale per the same group (tq2_0 and tq1_0). Fake quantization reads only these (scale_init.cpp
// rounds both ternary formats by one rule), so QAT under either trains the same weights bit for bit.
inline bool same_grid(WQuant a, WQuant b) {
  const WeightFormat &x = weight_format(a), &y = weight_format(b);
  return a == b || (x.kernel && y.kernel && x.family == y.family && x.group == y.group && x.code_min == y.code_min &&
                    x.code_max == y.code_max);
}

// Bytes of an (N, K) weight as stored: a GGUF format as ggml sizes its tensor type (blocks with their
// scales; per-channel int8 as Q8_0 blocks, f32 4 bytes an element), int4_pc (not in GGUF) as packed
// nibbles and one f16 scale per row.
inline int64_t stored_bytes(WQuant w, int64_t N, int64_t K) {
  const WeightFormat& f = weight_format(w);
  if (!f.gguf) return N * K / 2 + N * 2;
  const GgmlTypeInfo* t = ggml_type_info(uint32_t(f.ggml));
  return N * K / int64_t(t->block_elems) * int64_t(t->block_bytes);
}

}  // namespace qat
