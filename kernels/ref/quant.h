// The reference quantizer: THE spec of every integer format in qat. Fake quant (training), weight
// packing, the GGUF export and kernels/scalar call these functions or match them bit for bit; the SIMD
// kernels match kernels/scalar. Plain pointer + count functions, shapes in the comments.
// Read next: q4_0.cpp (the ggml rule, line by line against llama.cpp), then kernels/kernels.h.
//
// Notation: G = elements sharing one scale (a "group"). G = 32 gives the q4_0 / q8_0 blocks, G = K the
// per-output-channel formats (rows of a weight (N, K)), G = n per-tensor. n % G == 0 everywhere.
// f16(x) = f32_to_f16 (round to nearest even, src/core/dtype.h); "d" below is always the f32 VALUE of the
// stored scale (f16_to_f32(f16(d)) where the scale is stored as f16).
//
// Rules (every code is an int8_t; int8 codes are in [-127, 127], never -128; int4 codes in [-8, 7]):
//  * int4 ggml rule (q4_0 init / PTQ; exactly ggml's quantize_row_q4_0_ref):
//      m  = the element of largest |x| in the group (the first one on ties; NaN never wins)
//      d  = m / -8                    (may be negative)
//      id = d != 0 ? 1/d : 0          (f32; multiply by id, do not divide by d)
//      nibble = min(15, (int)trunc(x*id + 8.5)),  code = nibble - 8,  stored d = f16(d)
//  * int8 ggml rule (q8_0 blocks, per-channel and per-tensor int8, all dynamic activation scales):
//      amax = max |x| over the group (NaN ignored), d = amax / 127, id = d != 0 ? 1/d : 0 (f32)
//      code = roundf(x*id)            (round half away from zero)
//      stored d = f16(d) (ScaleRound::f16: q8_0, per-channel weights) or d itself (ScaleRound::f32:
//      per-token and per-tensor activations, per-tensor weights)
//  * learned rule (QAT with LSQ, any range [lo, hi]):
//      s16  = f16(min(max(s, 2^-14), 65504))    (f16's normal range; NaN or s <= 0 give 2^-14)
//      code = clamp(roundf(x / s16), lo, hi),   stored d = s16
//  * ternary rule (TQ1_0 / TQ2_0 blocks of 256; exactly ggml's quantize_row_tq1_0_ref / tq2_0_ref):
//      d  = max |x| over the block (NaN ignored), id = d != 0 ? 1/d : 0 (f32, from the UNROUNDED d)
//      code = roundf(x*id) in [-1, 1],  stored d = f16(d)
//  * dequantize: value = code * d (one f32 multiply).
// Where ggml's rules would convert an out-of-range float to an integer (undefined behaviour: only for
// NaN / inf inputs or a scale below f32's normal range, where id overflows), ours are total: the code
// is clamped to its range and a NaN product gives code 0. For every finite input whose ggml result is
// defined, the results are identical (tests/test_quant.cpp checks llama.cpp's own blocks byte for byte).
#pragma once
#include <cmath>
#include <cstdint>

namespace qat {

constexpr int64_t QK = 32;  // G of the q4_0 / q8_0 block formats

constexpr int kQ4Min = -8, kQ4Max = 7;      // int4 code range
constexpr int kQ8Min = -127, kQ8Max = 127;  // int8 code range (symmetric: -128 never appears)

// The llama.cpp block formats (ggml layout, little-endian, no padding).
struct BlockQ4_0 {
  uint16_t d;           // f16 scale
  uint8_t qs[QK / 2];   // element j: low nibble of qs[j]; element j + 16: high nibble; nibble = code + 8
};
struct BlockQ8_0 {
  uint16_t d;           // f16 scale
  int8_t qs[QK];        // codes
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ8_0) == 34, "ggml block sizes");

enum class ScaleRound : uint8_t { f16, f32 };  // how an int8 ggml-rule scale is stored

// ---- element rules (inline: fake quant, the packers and kernels/scalar share these lines) ----

// roundf(v) (half away from zero) clamped to [lo, hi]; NaN -> 0. Never converts an out-of-range float.
// roundf is computed as trunc(c + copysign(h, c)) with h = 0x1.fffffep-2, the float just below 0.5:
// equal to roundf for every float (below a half the sum stays below the next integer; from a half up
// it rounds up to it), branch-free and vectorizable, and the same steps the SIMD quantizers use.
inline int8_t clamp_round(float v, int lo, int hi) {
  if (!(v == v)) return 0;
  const float c = v < -256.0f ? -256.0f : (v > 256.0f ? 256.0f : v);  // the code clamps below anyway
  const int r = int(c + std::copysign(0x1.fffffep-2f, c));
  return int8_t(r < lo ? lo : (r > hi ? hi : r));
}
// int4 ggml rule for one element, id = 1/d as above: returns the code (nibble - 8).
inline int8_t code_int4_ggml(float x, float id) {
  float t = x * id + 8.5f;
  int nib = t >= 15.0f ? 15 : t > 0.0f ? int(t) : (t == t ? 0 : 8);  // int(t) truncates like ggml's cast
  return int8_t(nib - 8);
}
// int8 ggml rule for one element.
inline int8_t code_int8_ggml(float x, float id) { return clamp_round(x * id, kQ8Min, kQ8Max); }
// learned rule for one element, s16 from learned_scale().
inline int8_t code_learned(float x, float s16, int lo, int hi) { return clamp_round(x / s16, lo, hi); }

// s16 of the learned rule (an f16 value, returned as f32).
float learned_scale(float s);

// ---- codes + scales, groups of G ----
// int4 ggml rule: x (n) -> q (n) codes in [-8, 7], d (n/G) f16-rounded scales (may be negative).
void quantize_int4_ggml(const float* x, int64_t n, int64_t G, int8_t* q, float* d);
// int8 ggml rule: x (n) -> q (n) codes in [-127, 127], d (n/G) scales stored as `round`.
void quantize_int8_ggml(const float* x, int64_t n, int64_t G, ScaleRound round, int8_t* q, float* d);
// learned rule: x (n), s (n/G) positive scales -> q (n) codes in [lo, hi], s16 (n/G, may be null).
void quantize_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q,
                      float* s16);
// y (n) = q (n) * d (n/G)
void dequantize(const int8_t* q, const float* d, int64_t n, int64_t G, float* y);

// ---- canonical ggml blocks (G = 32; n % 32 == 0) ----
void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* y);  // x (n) -> y (n/32), int4 ggml rule
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y);  // int8 ggml rule, ScaleRound::f16
void quantize_q4_0_learned(const float* x, const float* s, int64_t n, BlockQ4_0* y);  // s (n/32)
void quantize_q8_0_learned(const float* x, const float* s, int64_t n, BlockQ8_0* y);
void dequantize_q4_0(const BlockQ4_0* x, int64_t n, float* y);  // y (n)
void dequantize_q8_0(const BlockQ8_0* x, int64_t n, float* y);
// Blocks <-> codes + scales. d values are stored as f16(d) (exact when d came from a rule above).
void q4_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockQ4_0* y);  // q (n), d (n/32)
void q4_0_to_codes(const BlockQ4_0* x, int64_t n, int8_t* q, float* d);
void q8_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockQ8_0* y);
void q8_0_to_codes(const BlockQ8_0* x, int64_t n, int8_t* q, float* d);

// ---- ternary blocks (llama.cpp's TQ1_0 and TQ2_0, QKK = 256 elements; n % 256 == 0; ternary.cpp) ----
constexpr int64_t QKK = 256;  // elements per ternary block (ggml's QK_K)
struct BlockTQ2_0 {           // 2 bits per code: 66 bytes, 2.0625 bits per weight
  uint8_t qs[QKK / 4];        // byte 32c + m holds elements 128c + 32l + m at bits 2l (l = 0..3); code + 1
  uint16_t d;                 // f16 scale
};
struct BlockTQ1_0 {           // 5 codes per byte in base 3: 54 bytes, 1.6875 bits per weight
  uint8_t qs[48];             // bytes 0-31: elements 32n + m (n = 0..4); bytes 32-47: 160 + 16n + m
  uint8_t qh[4];              // byte j: elements 240 + 4n + j (n = 0..3), a fifth trit of 0 below them
  uint16_t d;                 // f16 scale
};
static_assert(sizeof(BlockTQ2_0) == 66 && sizeof(BlockTQ1_0) == 54, "ggml ternary block sizes");

// ternary rule: x (n) -> q (n) codes in [-1, 1], d (n/256) f16-rounded scales.
void quantize_ternary(const float* x, int64_t n, int8_t* q, float* d);
void quantize_tq2_0(const float* x, int64_t n, BlockTQ2_0* y);  // x (n) -> y (n/256)
void quantize_tq1_0(const float* x, int64_t n, BlockTQ1_0* y);
void dequantize_tq2_0(const BlockTQ2_0* x, int64_t n, float* y);  // y (n)
void dequantize_tq1_0(const BlockTQ1_0* x, int64_t n, float* y);
void tq2_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockTQ2_0* y);  // q (n), d (n/256)
void tq2_0_to_codes(const BlockTQ2_0* x, int64_t n, int8_t* q, float* d);
void tq1_0_from_codes(const int8_t* q, const float* d, int64_t n, BlockTQ1_0* y);
void tq1_0_to_codes(const BlockTQ1_0* x, int64_t n, int8_t* q, float* d);

// ---- K-quants (llama.cpp's Q4_K and Q6_K, super-blocks of QKK = 256; n % 256 == 0; kquants.cpp) ----
// Post-training formats only (no QAT, no integer kernel here): what the community ships, kept so that
// QAT q4_0 can be compared with them byte for byte. A weight in them is served as its dequantized f32.
//  * Q4_K: 8 sub-blocks of 32, value = d * sc_j * q - dmin * m_j, q in [0, 15]; sc_j, m_j 6-bit, d and
//    dmin f16. 144 bytes: 4.5 bits per weight.
//  * Q6_K: 16 sub-blocks of 16, value = d * sc_j * (q - 32), q in [0, 63], sc_j int8, d f16. 210 bytes:
//    6.5625 bits per weight.
// Rules: KRule::ggml is exactly ggml's quantize_row_q4_K_ref / quantize_row_q6_K_ref (what llama-quantize
// writes without an importance matrix): each sub-block's scale (and min) is searched to minimise a
// WEIGHTED squared error (Q4_K: weights avg|x| + |x|; Q6_K: x^2), then the sub-block scales are
// themselves quantized to 6 / 8 bits against the super-block's f16 d. KRule::mse runs the same search
// with every weight 1 (plain squared error). Non-finite inputs are refused.
struct BlockQ4_K {
  uint16_t d, dmin;      // f16 super-block scales of the sub-block scales and mins
  uint8_t scales[12];    // sc_j, m_j (6 bits each): j < 4 in the low 6 bits of bytes j, j + 4; j >= 4 split
                         // into byte j + 4 (low nibbles) and the top 2 bits of bytes j - 4, j
  uint8_t qs[QKK / 2];   // sub-blocks 2i, 2i + 1: low, high nibbles of bytes 32i .. 32i + 31
};
struct BlockQ6_K {
  uint8_t ql[QKK / 2];   // low 4 bits of q
  uint8_t qh[QKK / 4];   // high 2 bits of q
  int8_t scales[QKK / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210, "ggml K-quant block sizes");
enum class KRule : uint8_t { ggml, mse };
void quantize_q4_k(const float* x, int64_t n, BlockQ4_K* y, KRule rule);  // x (n) -> y (n/256)
void quantize_q6_k(const float* x, int64_t n, BlockQ6_K* y, KRule rule);
void dequantize_q4_k(const BlockQ4_K* x, int64_t n, float* y);            // y (n)
void dequantize_q6_k(const BlockQ6_K* x, int64_t n, float* y);

// ---- named layouts of a weight W (N, K) and of activations X (M, K) ----
// Per output channel (G = K): int8 with the f16 scale (served as q8_0 blocks repeating it), int4 with
// the int4 ggml rule. Per tensor int8: one f32 scale. Per token int8 (dynamic activations): one f32
// scale per row of X; per 32-block int8 activations are quantize_int8_ggml(G = 32, f16) = q8_0.
void quantize_per_channel_int8(const float* w, int64_t N, int64_t K, int8_t* q, float* d);  // d (N)
void quantize_per_channel_int4(const float* w, int64_t N, int64_t K, int8_t* q, float* d);  // d (N)
float quantize_per_tensor_int8(const float* x, int64_t n, int8_t* q);                        // returns d
void quantize_per_token_int8(const float* x, int64_t M, int64_t K, int8_t* q, float* d);     // d (M)

}  // namespace qat
