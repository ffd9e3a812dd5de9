// The K-quants (llama.cpp's Q4_K and Q6_K): llama.cpp's own blocks and dequantized values reproduced
// byte for byte (tests/fixtures/kq_golden.bin, written by tools/golden/make-kquant-golden.sh from
// quantize_row_q4_K_ref / quantize_row_q6_K_ref / dequantize_row_q*_K of llama.cpp c392e50), the MSE
// variant of the search, and the refusals.
//
// Fixture layout (little-endian): u32 magic 0x5147514b, version 1, NB, K (256), sizeof q4_K (144),
// sizeof q6_K (210); NB*K f32 inputs; NB q4_K blocks; NB q6_K blocks; NB*K f32 dequantized q4_K;
// NB*K f32 dequantized q6_K. Blocks 0-8 are edge cases (zeros, all equal of each sign, ties of |max|,
// below ggml's GROUP_MAX_EPS, near f16's top, positive with a zero sub-block, one outlier, f16-subnormal
// scales), 9-15 pseudo-random (uniform, and near-normal with outliers).
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/ref/quant.h"

using namespace qat;

namespace {

struct KGolden {
  std::vector<float> x, y4, y6;  // inputs, llama.cpp's dequantized q4_K and q6_K (NB * 256 each)
  std::vector<BlockQ4_K> q4;     // (NB)
  std::vector<BlockQ6_K> q6;     // (NB)
};

template <class T>
void read_into(std::ifstream& in, std::vector<T>& v, size_t n) {
  v.resize(n);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(T)));
}

KGolden load_k_golden() {
  std::string f = __FILE__;
  std::ifstream in(f.substr(0, f.find_last_of('/') + 1) + "fixtures/kq_golden.bin", std::ios::binary);
  REQUIRE(in.good());
  uint32_t h[6];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  REQUIRE(h[0] == 0x5147514bu);
  REQUIRE(h[1] == 1u);
  REQUIRE(h[3] == uint32_t(QKK));
  REQUIRE(h[4] == sizeof(BlockQ4_K));
  REQUIRE(h[5] == sizeof(BlockQ6_K));
  const size_t nb = h[2];
  KGolden g;
  read_into(in, g.x, nb * QKK);
  read_into(in, g.q4, nb);
  read_into(in, g.q6, nb);
  read_into(in, g.y4, nb * QKK);
  read_into(in, g.y6, nb * QKK);
  REQUIRE(in.good());
  in.peek();
  REQUIRE(in.eof());
  return g;
}

// Items (blocks, or runs of per floats) that differ, naming the first.
template <class T>
int count_different(const std::vector<T>& ours, const std::vector<T>& gold, size_t per) {
  int bad = 0, first = -1;
  for (size_t b = 0; b * per < gold.size(); b++)
    if (std::memcmp(&ours[b * per], &gold[b * per], per * sizeof(T)) != 0) {
      bad++;
      if (first < 0) first = int(b);
    }
  UNSCOPED_INFO(bad << " of " << gold.size() / per << " differ, the first " << first);
  return bad;
}

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); i++) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return e;
}

}  // namespace

TEST_CASE("q4_k and q6_k reproduce llama.cpp's blocks and dequantized values byte for byte", "[quant][kquant]") {
  KGolden g = load_k_golden();
  const int64_t n = int64_t(g.x.size());
  std::vector<BlockQ4_K> q4(g.q4.size());
  std::vector<BlockQ6_K> q6(g.q6.size());
  quantize_q4_k(g.x.data(), n, q4.data(), KRule::ggml);
  quantize_q6_k(g.x.data(), n, q6.data(), KRule::ggml);
  CHECK(count_different(q4, g.q4, 1) == 0);
  CHECK(count_different(q6, g.q6, 1) == 0);
  // Dequantizing llama.cpp's blocks gives llama.cpp's floats, bit for bit.
  std::vector<float> y4(g.x.size()), y6(g.x.size());
  dequantize_q4_k(g.q4.data(), n, y4.data());
  dequantize_q6_k(g.q6.data(), n, y6.data());
  CHECK(count_different(y4, g.y4, QKK) == 0);
  CHECK(count_different(y6, g.y6, QKK) == 0);
}

TEST_CASE("q4_k and q6_k: the unweighted (mse) search has the smaller squared error, and refusals", "[quant][kquant]") {
  KGolden g = load_k_golden();
  // The random blocks (9-15): the ggml rule minimises a weighted error, the mse rule the plain one.
  std::vector<float> x(g.x.begin() + 9 * QKK, g.x.end());
  const int64_t n = int64_t(x.size());
  std::vector<BlockQ4_K> q4(size_t(n / QKK));
  std::vector<BlockQ6_K> q6(size_t(n / QKK));
  std::vector<float> y(x.size());
  double e[2][2];  // [q4_k, q6_k][ggml, mse]
  for (KRule r : {KRule::ggml, KRule::mse}) {
    quantize_q4_k(x.data(), n, q4.data(), r);
    dequantize_q4_k(q4.data(), n, y.data());
    e[0][int(r)] = squared_error(x, y);
    quantize_q6_k(x.data(), n, q6.data(), r);
    dequantize_q6_k(q6.data(), n, y.data());
    e[1][int(r)] = squared_error(x, y);
  }
  INFO("q4_k ggml " << e[0][0] << " mse " << e[0][1] << "; q6_k ggml " << e[1][0] << " mse " << e[1][1]);
  CHECK(e[0][1] < e[0][0]);
  CHECK(e[1][1] < e[1][0]);
  CHECK(e[0][0] > 0);  // not a lossless accident

  std::vector<float> bad(QKK, 1.0f);
  bad[7] = NAN;
  CHECK_THROWS_WITH(quantize_q4_k(bad.data(), QKK, q4.data(), KRule::ggml), Catch::Contains("element 7 is not finite"));
  bad[7] = INFINITY;
  CHECK_THROWS_WITH(quantize_q6_k(bad.data(), QKK, q6.data(), KRule::ggml), Catch::Contains("element 7 is not finite"));
  CHECK_THROWS_WITH(quantize_q4_k(x.data(), 100, q4.data(), KRule::ggml),
                    Catch::Contains("100 elements are not a whole number of blocks of 256"));
  CHECK_THROWS_WITH(dequantize_q6_k(q6.data(), 300, y.data()), Catch::Contains("not a whole number of blocks"));
}
