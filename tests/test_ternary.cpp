// The ternary formats (llama.cpp's TQ1_0 and TQ2_0): llama.cpp's own blocks and dequantized values
// reproduced byte for byte (tests/fixtures/tq_golden.bin, written by tools/golden/make-golden.sh
// from quantize_row_tq*_ref / dequantize_row_tq* of llama.cpp c392e50), and every code pattern of both
// packings surviving a round trip.
//
// Fixture layout (little-endian): u32 magic 0x51475454, version 1, NB, K (256), sizeof tq1_0 (54),
// sizeof tq2_0 (66); NB*K f32 inputs; NB tq1_0 blocks; NB tq2_0 blocks; NB*K f32 dequantized tq1_0;
// NB*K f32 dequantized tq2_0. Blocks 0-7 are edge cases (zeros, all equal, ties, negative max, tiny,
// near f16's top, exact halves, just below and above a half of a d that f16 rounds), 8-15 pseudo-random in [-3, 3].
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/ref/quant.h"
#include "tests/golden_blocks.h"

using namespace qat;
using namespace qat::test;

namespace {

struct TernaryGolden {
  std::vector<float> x, y1, y2;  // inputs, llama.cpp's dequantized tq1_0 and tq2_0 (NB * 256 each)
  std::vector<BlockTQ1_0> t1;    // (NB)
  std::vector<BlockTQ2_0> t2;    // (NB)
};

TernaryGolden load_ternary_golden() {
  std::ifstream in;
  const size_t nb = open_golden(in, "tq_golden.bin", 0x51475454u, sizeof(BlockTQ1_0), sizeof(BlockTQ2_0));
  TernaryGolden g;
  read_into(in, g.x, nb * QKK);
  read_into(in, g.t1, nb);
  read_into(in, g.t2, nb);
  read_into(in, g.y1, nb * QKK);
  read_into(in, g.y2, nb * QKK);
  require_golden_end(in);
  return g;
}

}  // namespace

TEST_CASE("tq1_0 and tq2_0 reproduce llama.cpp's blocks and dequantized values byte for byte", "[quant][ternary]") {
  TernaryGolden g = load_ternary_golden();
  const int64_t n = int64_t(g.x.size());
  std::vector<BlockTQ1_0> t1(g.t1.size());
  std::vector<BlockTQ2_0> t2(g.t2.size());
  quantize_tq1_0(g.x.data(), n, t1.data());
  quantize_tq2_0(g.x.data(), n, t2.data());
  CHECK(count_different(t1, g.t1, 1) == 0);
  CHECK(count_different(t2, g.t2, 1) == 0);

  std::vector<float> y1(g.x.size()), y2(g.x.size());
  dequantize_tq1_0(g.t1.data(), n, y1.data());
  dequantize_tq2_0(g.t2.data(), n, y2.data());
  CHECK(count_different(y1, g.y1, QKK) == 0);
  CHECK(count_different(y2, g.y2, QKK) == 0);

  // The codes + scales path (what fake quant and the packers will use) gives the same blocks.
  std::vector<int8_t> q(g.x.size());
  std::vector<float> d(g.t1.size());
  quantize_ternary(g.x.data(), n, q.data(), d.data());
  tq1_0_from_codes(q.data(), d.data(), n, t1.data());
  tq2_0_from_codes(q.data(), d.data(), n, t2.data());
  CHECK(count_different(t1, g.t1, 1) == 0);
  CHECK(count_different(t2, g.t2, 1) == 0);
}

TEST_CASE("tq1_0 and tq2_0 packings: every code pattern comes back, sizes and refusals", "[quant][ternary]") {
  // Two blocks whose positions cycle through all 3^5 = 243 trit patterns of a TQ1_0 byte (and so every
  // 2-bit pattern of TQ2_0): position p gets trit (p / 3^k) % 3 in slot k of its byte's group.
  std::vector<int8_t> q(2 * QKK), back(q.size());
  for (size_t i = 0; i < q.size(); i++) q[i] = int8_t((i * 7 + i / 3 * 5 + i / 81) % 3) - 1;
  const float d[2] = {0.5f, 3.0f};
  float d_back[2];
  std::vector<BlockTQ1_0> t1(2);
  std::vector<BlockTQ2_0> t2(2);
  tq1_0_from_codes(q.data(), d, int64_t(q.size()), t1.data());
  tq1_0_to_codes(t1.data(), int64_t(q.size()), back.data(), d_back);
  CHECK(back == q);
  CHECK((d_back[0] == 0.5f && d_back[1] == 3.0f));
  tq2_0_from_codes(q.data(), d, int64_t(q.size()), t2.data());
  tq2_0_to_codes(t2.data(), int64_t(q.size()), back.data(), d_back);
  CHECK(back == q);
  // Exhaustive over one byte's five trits: all 243 values decode to themselves.
  for (int v = 0; v < 243; v++) {
    std::vector<int8_t> one(QKK, 0);
    for (int k = 0, r = v; k < 5; k++, r /= 3) one[size_t(32 * (4 - k))] = int8_t(r % 3 - 1);  // byte 0's trits
    BlockTQ1_0 b;
    float s = 1.0f;
    tq1_0_from_codes(one.data(), &s, QKK, &b);
    std::vector<int8_t> got(QKK);
    tq1_0_to_codes(&b, QKK, got.data(), &s);
    INFO("trit pattern " << v);
    REQUIRE(got == one);
  }
  std::vector<float> x(100);
  CHECK_THROWS_WITH(quantize_tq2_0(x.data(), 100, t2.data()),
                    Catch::Contains("100 elements are not a whole number of blocks of 256"));
}
