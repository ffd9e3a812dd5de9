// The reference quantizer (src/quant): llama.cpp's own q4_0 / q8_0 blocks reproduced byte for byte
// (tests/fixtures/q4_0_q8_0_golden.bin, see /work/shared/golden/README.md for how it was made), round
// trips within named tolerances, code ranges, and the learned rule's edge cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "src/core/dtype.h"
#include "src/core/rng.h"
#include "kernels/ref/quant.h"
#include "src/quant/formats.h"
#include "src/quant/scheme.h"

using namespace qat;

namespace {

struct Golden {
  std::vector<float> x;       // (NB * 32)
  std::vector<BlockQ4_0> q4;  // (NB)
  std::vector<BlockQ8_0> q8;  // (NB)
};

std::string fixture(const std::string& name) {
  std::string f = __FILE__;
  return f.substr(0, f.find_last_of('/') + 1) + "fixtures/" + name;
}

Golden load_golden() {
  std::ifstream in(fixture("q4_0_q8_0_golden.bin"), std::ios::binary);
  REQUIRE(in.good());
  uint32_t hdr[4];
  in.read(reinterpret_cast<char*>(hdr), sizeof hdr);
  REQUIRE(hdr[0] == 0x51474C44u);
  REQUIRE(hdr[1] == 1u);
  REQUIRE(hdr[3] == 32u);
  const size_t nb = hdr[2];
  Golden g;
  g.x.resize(nb * 32);
  g.q4.resize(nb);
  g.q8.resize(nb);
  in.read(reinterpret_cast<char*>(g.x.data()), std::streamsize(g.x.size() * 4));
  in.read(reinterpret_cast<char*>(g.q4.data()), std::streamsize(nb * sizeof(BlockQ4_0)));
  in.read(reinterpret_cast<char*>(g.q8.data()), std::streamsize(nb * sizeof(BlockQ8_0)));
  REQUIRE(in.good());
  in.peek();
  REQUIRE(in.eof());
  return g;
}

template <class Block>
void require_same_blocks(const std::vector<Block>& ours, const std::vector<Block>& gold, const char* fmt) {
  int first_bad = -1, bad = 0;
  for (size_t b = 0; b < gold.size(); b++)
    if (std::memcmp(&ours[b], &gold[b], sizeof(Block)) != 0) {
      bad++;
      if (first_bad < 0) first_bad = int(b);
    }
  INFO(fmt << ": " << bad << " of " << gold.size() << " blocks differ, first " << first_bad
           << (first_bad >= 0 ? " (d ours " + std::to_string(ours[size_t(first_bad)].d) + " golden " +
                                    std::to_string(gold[size_t(first_bad)].d) + ")"
                              : std::string()));
  CHECK(bad == 0);
}

std::vector<float> random_values(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) v[size_t(i)] = scale * (2.0f * rng_uniform(seed, 0, uint64_t(i)) - 1.0f);
  return v;
}

// Named tolerances of the round trips (|x - dequantize(quantize(x))|, in units of the block's |d|):
// int8 rounds to the nearest code (0.5) and the stored scale is f16(d) (relative error 2^-11, times a
// code of at most 127); int4's ggml rule also clips (x*id in (7.5, 8] -> code 7: up to 1.0).
constexpr float kTolInt8 = 0.5f + 127.0f / 2048.0f + 1e-3f;
constexpr float kTolInt4 = 1.0f + 8.0f / 2048.0f + 1e-3f;

}  // namespace

TEST_CASE("q4_0 and q8_0 ggml rule reproduce llama.cpp's blocks byte for byte", "[quant]") {
  Golden g = load_golden();
  const int64_t n = int64_t(g.x.size());
  std::vector<BlockQ4_0> q4(g.q4.size());
  std::vector<BlockQ8_0> q8(g.q8.size());
  quantize_q4_0(g.x.data(), n, q4.data());
  quantize_q8_0(g.x.data(), n, q8.data());
  require_same_blocks(q4, g.q4, "q4_0");
  require_same_blocks(q8, g.q8, "q8_0");

  // The codes + scales path gives the same blocks.
  std::vector<int8_t> q(static_cast<size_t>(n));
  std::vector<float> d(static_cast<size_t>(n / QK));
  quantize_int4_ggml(g.x.data(), n, QK, q.data(), d.data());
  q4_0_from_codes(q.data(), d.data(), n, q4.data());
  require_same_blocks(q4, g.q4, "q4_0 via codes");
  quantize_int8_ggml(g.x.data(), n, QK, ScaleRound::f16, q.data(), d.data());
  q8_0_from_codes(q.data(), d.data(), n, q8.data());
  require_same_blocks(q8, g.q8, "q8_0 via codes");

  // Blocks -> codes -> blocks is the identity.
  std::vector<BlockQ4_0> q4b(g.q4.size());
  q4_0_to_codes(g.q4.data(), n, q.data(), d.data());
  q4_0_from_codes(q.data(), d.data(), n, q4b.data());
  require_same_blocks(q4b, g.q4, "q4_0 codes round trip");
}

TEST_CASE("round trips stay within the named tolerances and codes within their ranges", "[quant]") {
  const int64_t n = 32 * 64;
  for (float scale : {0.02f, 1.0f, 3e4f}) {  // d stays in f16's normal range
    std::vector<float> x = random_values(n, 7, scale), y(static_cast<size_t>(n));
    std::vector<int8_t> q(static_cast<size_t>(n));
    std::vector<float> d(static_cast<size_t>(n / QK));
    INFO("scale " << scale);

    quantize_int8_ggml(x.data(), n, QK, ScaleRound::f16, q.data(), d.data());
    dequantize(q.data(), d.data(), n, QK, y.data());
    float worst = 0;
    for (int64_t i = 0; i < n; i++) {
      REQUIRE(q[size_t(i)] >= kQ8Min);
      REQUIRE(q[size_t(i)] <= kQ8Max);
      worst = std::max(worst, std::fabs(x[size_t(i)] - y[size_t(i)]) / std::fabs(d[size_t(i / QK)]));
    }
    INFO("int8 worst error / |d| = " << worst);
    CHECK(worst <= kTolInt8);

    quantize_int4_ggml(x.data(), n, QK, q.data(), d.data());
    dequantize(q.data(), d.data(), n, QK, y.data());
    worst = 0;
    for (int64_t i = 0; i < n; i++) {
      REQUIRE(q[size_t(i)] >= kQ4Min);
      REQUIRE(q[size_t(i)] <= kQ4Max);
      worst = std::max(worst, std::fabs(x[size_t(i)] - y[size_t(i)]) / std::fabs(d[size_t(i / QK)]));
    }
    INFO("int4 worst error / |d| = " << worst);
    CHECK(worst <= kTolInt4);

    // q4_0 / q8_0 blocks dequantize to exactly code * d.
    std::vector<BlockQ4_0> b4(static_cast<size_t>(n / QK));
    std::vector<float> y2(static_cast<size_t>(n));
    quantize_q4_0(x.data(), n, b4.data());
    dequantize_q4_0(b4.data(), n, y2.data());
    CHECK(std::memcmp(y.data(), y2.data(), size_t(n) * 4) == 0);
  }
}

TEST_CASE("int8 ggml rule: the max element maps to +-127, zeros to a zero scale, totals on inf/NaN", "[quant]") {
  std::vector<float> x(64, 0.0f);
  x[3] = -2.5f;
  x[10] = 1.0f;
  std::vector<int8_t> q(64);
  float d[2];
  quantize_int8_ggml(x.data(), 64, 32, ScaleRound::f32, q.data(), d);
  CHECK(d[0] == 2.5f / 127.0f);  // f32 scale kept as is
  CHECK(q[3] == -127);
  CHECK(q[10] == 51);  // 1.0 / (2.5/127) = 50.8
  CHECK(d[1] == 0.0f);
  for (int j = 32; j < 64; j++) CHECK(q[size_t(j)] == 0);

  // Per token: one f32 scale per row; per tensor: one for all.
  std::vector<float> d2(2);
  quantize_per_token_int8(x.data(), 2, 32, q.data(), d2.data());
  CHECK(d2[0] == d[0]);
  CHECK(quantize_per_tensor_int8(x.data(), 64, q.data()) == d[0]);

  // inf / NaN inputs: no undefined conversion, codes in range, NaN -> 0.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  float y[32] = {inf, -1.0f, nan, 2.0f};
  int8_t c[32];
  quantize_int8_ggml(y, 32, 32, ScaleRound::f16, c, d);
  CHECK(c[0] == 0);  // inf * (1/inf = 0) is NaN
  CHECK(c[2] == 0);
  float t[32] = {1e-38f, -1e-38f};  // d = amax / 127 is subnormal: 1/d overflows to inf
  quantize_int8_ggml(t, 32, 32, ScaleRound::f32, c, d);
  CHECK(c[0] == 127);
  CHECK(c[1] == -127);
  CHECK(c[2] == 0);  // 0 * inf is NaN
}

TEST_CASE("learned rule: ties round away from zero, both sides clamp, scales clamp to f16 normals", "[quant]") {
  const float s = 0.25f;  // a power of two: x / s is exact
  float x[32] = {0.625f, -0.625f, 0.375f, -0.375f, 100.0f, -100.0f, -2.125f, -1.875f, 0.0f, -0.0f, 1.75f};
  int8_t q[32];
  float s16;
  quantize_learned(x, 32, 32, &s, kQ4Min, kQ4Max, q, &s16);
  CHECK(s16 == 0.25f);
  CHECK(q[0] == 3);   // 2.5 -> 3
  CHECK(q[1] == -3);  // -2.5 -> -3
  CHECK(q[2] == 2);   // 1.5 -> 2
  CHECK(q[3] == -2);
  CHECK(q[4] == 7);   // clamped high
  CHECK(q[5] == -8);  // clamped low
  CHECK(q[6] == -8);  // -8.5 -> -9 -> -8
  CHECK(q[7] == -8);  // -7.5 -> -8
  CHECK(q[8] == 0);
  CHECK(q[9] == 0);
  CHECK(q[10] == 7);  // 7.0
  quantize_learned(x, 32, 32, &s, kQ8Min, kQ8Max, q, &s16);
  CHECK(q[4] == 127);   // 400 -> 127
  CHECK(q[5] == -127);  // never -128
  CHECK(q[6] == -9);

  CHECK(learned_scale(0.1f) == round_to_f16(0.1f));
  CHECK(learned_scale(1e-10f) == 6.103515625e-05f);
  CHECK(learned_scale(0.0f) == 6.103515625e-05f);
  CHECK(learned_scale(-3.0f) == 6.103515625e-05f);
  CHECK(learned_scale(std::numeric_limits<float>::quiet_NaN()) == 6.103515625e-05f);
  CHECK(learned_scale(1e9f) == 65504.0f);
  CHECK(learned_scale(65519.0f) == 65504.0f);

  // Tiny scale + huge input, huge scale + tiny input, inf and NaN inputs.
  const float inf = std::numeric_limits<float>::infinity();
  float y[32] = {3e38f, -3e38f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1e-3f};
  float tiny = 1e-20f, huge = 1e20f;
  quantize_learned(y, 32, 32, &tiny, kQ8Min, kQ8Max, q, &s16);
  CHECK(q[0] == 127);
  CHECK(q[1] == -127);
  CHECK(q[2] == 127);
  CHECK(q[3] == -127);
  CHECK(q[4] == 0);
  CHECK(q[5] == 16);  // 1e-3 / 2^-14 = 16.38
  quantize_learned(y, 32, 32, &huge, kQ8Min, kQ8Max, q, &s16);
  CHECK(s16 == 65504.0f);
  CHECK(q[5] == 0);

  // Blocks: stored d = f16(s16), codes as above.
  std::vector<float> w = random_values(64, 3, 1.0f), scales = {0.1f, 0.02f};
  BlockQ4_0 b4[2];
  BlockQ8_0 b8[2];
  quantize_q4_0_learned(w.data(), scales.data(), 64, b4);
  quantize_q8_0_learned(w.data(), scales.data(), 64, b8);
  int8_t c[64];
  float d[2];
  q4_0_to_codes(b4, 64, c, d);
  CHECK(d[0] == learned_scale(0.1f));
  int8_t q64[64];
  quantize_learned(w.data(), 64, 32, scales.data(), kQ4Min, kQ4Max, q64, nullptr);
  CHECK(std::memcmp(c, q64, 64) == 0);
  q8_0_to_codes(b8, 64, c, d);
  CHECK(d[1] == learned_scale(0.02f));
  for (int j = 0; j < 64; j++) {
    CHECK(c[j] >= kQ8Min);
    CHECK(c[j] <= kQ8Max);
  }
}

TEST_CASE("per-channel int4 / int8 use one scale per row", "[quant]") {
  const int64_t N = 3, K = 64;
  std::vector<float> w = random_values(N * K, 11, 2.0f);
  std::vector<int8_t> q(static_cast<size_t>(N * K));
  std::vector<float> d(static_cast<size_t>(N));
  quantize_per_channel_int8(w.data(), N, K, q.data(), d.data());
  for (int64_t n = 0; n < N; n++) {
    float amax = 0;
    for (int64_t k = 0; k < K; k++) amax = std::max(amax, std::fabs(w[size_t(n * K + k)]));
    CHECK(d[size_t(n)] == round_to_f16(amax / 127.0f));
  }
  quantize_per_channel_int4(w.data(), N, K, q.data(), d.data());
  for (int64_t n = 0; n < N; n++) {
    int hits = 0;  // the largest-magnitude element gets code -8
    for (int64_t k = 0; k < K; k++) hits += q[size_t(n * K + k)] == -8;
    CHECK(hits >= 1);
  }
  CHECK_THROWS_WITH(quantize_q4_0(w.data(), 33, nullptr), Catch::Contains("groups of 32"));
}

TEST_CASE("clamp_round is roundf then clamp, for halves, their neighbours and random floats", "[quant]") {
  auto reference = [](float v, int lo, int hi) -> int {  // the definition, with the libm roundf
    if (std::isnan(v)) return 0;
    float r = std::roundf(v);
    return r >= float(hi) ? hi : r <= float(lo) ? lo : int(r);
  };
  std::vector<float> vals = {0.0f, -0.0f, 0.49999997f, -0.49999997f, 0.5f, -0.5f, 1e-30f, 3e38f, -3e38f,
                             std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN(), 8388607.5f, 8388609.0f, 255.5f, -256.5f};
  for (int k = -600; k <= 600; k++) {
    const float v = float(k) * 0.5f;
    vals.insert(vals.end(), {v, std::nextafter(v, -1e9f), std::nextafter(v, 1e9f)});
  }
  for (uint64_t i = 0; i < 200000; i++) {  // random bit patterns: every magnitude
    uint32_t bits = uint32_t(rng_bits(17, 0, i));
    vals.push_back(f32_from_bits(bits));
  }
  int bad = 0;
  for (float v : vals)
    for (auto [lo, hi] : {std::pair<int, int>{-8, 7}, {-127, 127}})
      if (clamp_round(v, lo, hi) != reference(v, lo, hi)) {
        if (!bad) INFO("first mismatch at " << v);
        bad++;
      }
  CHECK(bad == 0);
}

TEST_CASE("the weight-format table: a row per WQuant in order, agreeing with the quantizer and ggml", "[quant]") {
  int rows = 0;
  for (const WeightFormat& f : kWeightFormats) {
    INFO(f.name);
    CHECK(int(f.w) == rows++);  // weight_format(w) indexes the table
    CHECK(&weight_format(f.w) == &f);
    if (f.w == WQuant::none) continue;
    if (f.post_training) {  // K-quants: super-blocks of 256 with their own rule, no codes + scales codec
      CHECK((f.codec == nullptr && f.group == QKK && f.gguf && !f.kernel));
      const GgmlTypeInfo* g = ggml_type_info(uint32_t(f.ggml));
      REQUIRE(g != nullptr);
      CHECK(g->block_elems == uint32_t(QKK));
      CHECK(g->block_bytes == (f.w == WQuant::q4_k ? sizeof(BlockQ4_K) : sizeof(BlockQ6_K)));
      continue;
    }
    // Codes: the reference quantizer's ranges (int4 [-8, 7], int8 symmetric [-127, 127], ternary [-1, 1]).
    CHECK(((f.code_min == kQ4Min && f.code_max == kQ4Max) || (f.code_min == kQ8Min && f.code_max == kQ8Max) ||
           (f.code_min == -1 && f.code_max == 1 && f.group == QKK)));
    if (!f.gguf) continue;
    // A block format's GGUF type holds exactly its group in one block.
    const GgmlTypeInfo* g = ggml_type_info(uint32_t(f.ggml));
    REQUIRE(g != nullptr);
    CHECK((f.group == 0 || int64_t(g->block_elems) == f.group));
    const size_t block = f.w == WQuant::tq2_0 ? sizeof(BlockTQ2_0) : f.w == WQuant::tq1_0 ? sizeof(BlockTQ1_0)
                         : f.code_max == kQ4Max ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
    CHECK(g->block_bytes == block);
  }
  CHECK(rows == int(WQuant::q6_k) + 1);
  CHECK(LayerQuant{WQuant::q4_0, AQuant::q8_0}.group(96) == 32);
  CHECK(LayerQuant{WQuant::int8_pc, AQuant::int8_token}.group(96) == 96);
}
