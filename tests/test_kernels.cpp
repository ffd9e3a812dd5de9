// The integer and fixed-order f32 kernels (kernels/): the scalar table against the reduction orders of
// kernels.h written out here, every other table (native where the CPU has it, SIMDe always) bit-exact
// with scalar over edge shapes and extreme codes, the integer accumulators exact, the products against
// f32 matmuls of the dequantized operands, and the same bits at 1-4 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "src/nn/linear.h"
#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/qgemm.h"
#include "src/core/dtype.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/ops/rowops.h"
#include "src/util/error.h"

using namespace qat;

namespace {

const WFormat kFormats[] = {WFormat::q4_0, WFormat::q8_0, WFormat::s8_pc, WFormat::tq};

// A test's K for format f: tq rows are whole 256-blocks, so its K is 8x the K the other formats take
// (32 -> 256, 96 -> 768: the same number of tq blocks as the others have q8_0 blocks).
int64_t kfit(WFormat f, int64_t K) { return f == WFormat::tq ? K * 8 : K; }
int code_lo(WFormat f) { return f == WFormat::q4_0 ? kQ4Min : f == WFormat::tq ? -1 : kQ8Min; }
int code_hi(WFormat f) { return f == WFormat::q4_0 ? kQ4Max : f == WFormat::tq ? 1 : kQ8Max; }

// Named tolerance of "kernel vs f32 matmul of the dequantized operands": |y - ref| <= kTolDequant *
// sum_k |w_k a_k| (ref in double). The kernel rounds one f32 product and one fma per block: K/32 <= 128
// roundings of 2^-24 each, well inside 1e-5.
constexpr double kTolDequant = 1e-5;

struct Weights {
  WFormat f;
  int64_t N, K;
  std::vector<int8_t> q;  // (N, K)
  std::vector<float> d;   // (N, K/G) f16 values: G = 32, 256 (tq), or K (s8_pc)
  int64_t groups() const { return K / wformat_group(f, K); }
  float scale(int64_t n, int64_t k) const { return d[size_t(n * groups() + k / wformat_group(f, K))]; }
};

int8_t rand_code(uint64_t seed, uint64_t i, int lo, int hi) {
  return int8_t(lo + int(rng_bits(seed, 1, i) % uint64_t(hi - lo + 1)));
}

// Random codes over the whole range and random signed f16 scales; `zero_every` > 0 zeroes some scales.
Weights make_weights(WFormat f, int64_t N, int64_t K, uint64_t seed, int zero_every = 0) {
  Weights w{f, N, K, {}, {}};
  const int lo = code_lo(f), hi = code_hi(f);
  w.q.resize(size_t(N * K));
  for (int64_t i = 0; i < N * K; i++) w.q[size_t(i)] = rand_code(seed, uint64_t(i), lo, hi);
  w.d.resize(size_t(N * w.groups()));
  for (size_t i = 0; i < w.d.size(); i++) {
    float v = (rng_uniform(seed, 2, i) - 0.3f) * 0.05f;
    w.d[i] = (zero_every && i % size_t(zero_every) == 0) ? 0.0f : round_to_f16(v);
  }
  return w;
}

// Activations from random f32 values (the quantize kernel of table t), with some exact zero rows/blocks.
QuantActs make_acts(bool per_token, int64_t M, int64_t K, uint64_t seed, const Kernels& t) {
  std::vector<float> x(size_t(M * K));
  for (int64_t i = 0; i < M * K; i++) x[size_t(i)] = rng_normal(seed, 3, uint64_t(i)) * 2.0f;
  if (M > 2)
    for (int64_t k = 0; k < std::min<int64_t>(K, 64); k++) x[size_t(2 * K + k)] = 0.0f;  // zero scales
  QuantActs a;
  quantize_acts(per_token, x.data(), M, K, &a, t);
  return a;
}

// The reduction orders of kernels.h, written out independently of kernels/scalar.
std::vector<float> reference(const Weights& w, const QuantActs& a) {
  const int64_t M = a.M, N = w.N, K = w.K, nb = K / QK;
  std::vector<float> y(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      const int8_t* wq = &w.q[size_t(n * K)];
      const int8_t* aq = &a.q[size_t(m * K)];
      if (w.f == WFormat::s8_pc) {
        int32_t isum = 0;
        for (int64_t k = 0; k < K; k++) isum += wq[k] * aq[k];
        y[size_t(m * N + n)] = (w.d[size_t(n)] * a.d[size_t(m)]) * float(isum);
        continue;
      }
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; b++) {
        int32_t isum = 0;
        for (int64_t j = b * QK; j < (b + 1) * QK; j++) isum += wq[j] * aq[j];
        acc = std::fma(w.scale(n, b * QK) * a.d[size_t(m * nb + b)], float(isum), acc);
      }
      y[size_t(m * N + n)] = acc;
    }
  return y;
}

std::vector<float> run(const Weights& w, const QuantActs& a, const Kernels& t) {
  PackedWeights p;
  pack_weights(w.f, w.q.data(), w.d.data(), w.N, w.K, &p, t);
  std::vector<float> y(size_t(a.M * w.N), std::numeric_limits<float>::quiet_NaN());
  qgemm(p, a, y.data());
  return y;
}

// Bitwise comparison; on failure prints where and the first values.
void require_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); i++)
    if (f32_bits(got[i]) != f32_bits(want[i])) {
      if (!bad) first = i;
      bad++;
    }
  INFO(what << ": " << bad << " of " << got.size() << " outputs differ"
            << (bad ? ", first at " + std::to_string(first) + ": " + std::to_string(got[first]) + " vs " +
                          std::to_string(want[first])
                    : std::string()));
  CHECK(bad == 0);
}

std::string shape_name(WFormat f, int64_t M, int64_t N, int64_t K) {
  return str(wformat_name(f), " M=", M, " N=", N, " K=", K);
}

// Every table but scalar that this CPU can run; the others are skipped with a visible message.
std::vector<const Kernels*> tables_to_test() {
  std::vector<const Kernels*> v;
  for (Isa isa : all_isas()) {
    if (isa == Isa::scalar) continue;
    if (!isa_supported(isa)) {
      WARN("SKIP " << isa_name(isa) << ": this CPU (" << cpu_features().brand << ") has only "
                   << cpu_features().flags() << "; the same source's SIMDe build is tested instead");
      continue;
    }
    v.push_back(&kernels_for(isa));
  }
  return v;
}

}  // namespace

TEST_CASE("scalar kernels compute the reduction orders of kernels.h", "[kernels]") {
  const Kernels& s = kernels_for(Isa::scalar);
  for (WFormat f : kFormats)
    for (int64_t K0 : {32, 96, 256})
      for (int64_t M : {1, 3}) {
        const int64_t K = kfit(f, K0);
        Weights w = make_weights(f, 5, K, 11 + uint64_t(K), 3);
        QuantActs a = make_acts(uses_per_token(f), M, K, 5, s);
        require_same_bits(run(w, a, s), reference(w, a), shape_name(f, M, 5, K));
      }
}

TEST_CASE("every table is bit-exact with scalar on edge shapes", "[kernels]") {
  const Kernels& s = kernels_for(Isa::scalar);
  for (const Kernels* t : tables_to_test()) {
    const bool simde = std::string(t->name).find("simde") != std::string::npos;
    for (WFormat f : kFormats) {
      for (int64_t K0 : {32, 64, 96})
        for (int64_t N : {1, 7, 16, 17, 64, 129})
          for (int64_t M : {1, 2, 3, 7, 16, 33}) {
            const int64_t K = kfit(f, K0);
            if (simde && M * N * K > 100000) continue;  // SIMDe is slow: its big shapes run below
            Weights w = make_weights(f, N, K, uint64_t(N * 131 + K), 5);
            QuantActs a = make_acts(uses_per_token(f), M, K, uint64_t(M), s);
            require_same_bits(run(w, a, *t), run(w, a, s), str(t->name, " ", shape_name(f, M, N, K)));
          }
      // K = 4096 and a few large shapes (not the full cross product).
      for (auto [M, N, K0] : {std::tuple<int64_t, int64_t, int64_t>{1, 17, 4096}, {7, 16, 4096}, {33, 129, 96},
                              {2, 64, 4096}})
        if (const int64_t K = f == WFormat::tq && K0 < 256 ? kfit(f, K0) : K0; !simde || M * N * K <= 200000) {
          Weights w = make_weights(f, N, K, 99, 7);
          QuantActs a = make_acts(uses_per_token(f), M, K, 4, s);
          require_same_bits(run(w, a, *t), run(w, a, s), str(t->name, " ", shape_name(f, M, N, K)));
        }
    }
  }
}

TEST_CASE("activation quantization rounds every half away from zero, in every table", "[kernels]") {
  // Blocks led by 127 have d = 1 and id = 1, so the codes are roundf(x) of the values that follow:
  // every half in (-127, 127) and the floats just below and above it.
  std::vector<float> ties;
  for (int h = -253; h <= 253; h += 2) {
    const float v = float(h) * 0.5f;
    ties.insert(ties.end(), {v, std::nextafter(v, -200.0f), std::nextafter(v, 200.0f)});
  }
  std::vector<float> x;
  for (size_t i = 0; i < ties.size(); i++) {
    if (x.size() % 32 == 0) x.push_back(127.0f);
    x.push_back(ties[i]);
  }
  while (x.size() % 32) x.push_back(0.0f);
  const int64_t K = int64_t(x.size());
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &kernels_for(Isa::scalar));
  for (const Kernels* t : tables)
    for (bool per_token : {false, true}) {
      QuantActs a;
      quantize_acts(per_token, x.data(), 1, K, &a, *t);
      INFO(t->name << (per_token ? " per token" : " q8_0"));
      REQUIRE(a.d[0] == 1.0f);
      int bad = 0;
      for (int64_t k = 0; k < K; k++) bad += a.q[size_t(k)] != int8_t(std::roundf(x[size_t(k)]));
      CHECK(bad == 0);
    }
}

TEST_CASE("activation quantization is bit-exact with scalar in every table", "[kernels]") {
  const Kernels& s = kernels_for(Isa::scalar);
  const int64_t M = 5, K = 160;
  std::vector<float> x(size_t(M * K));
  for (int64_t i = 0; i < M * K; i++) x[size_t(i)] = rng_normal(9, 0, uint64_t(i)) * 3.0f;
  for (int64_t k = 0; k < 32; k++) x[size_t(k)] = float(k - 16) * 0.5f;   // exact halves after scaling
  for (int64_t k = 32; k < 64; k++) x[size_t(k)] = 0.0f;                  // a zero block
  for (int64_t k = 64; k < 96; k++) x[size_t(k)] = 1e-39f * float(k);     // subnormal: 1/d overflows
  x[size_t(K + 3)] = std::numeric_limits<float>::infinity();
  x[size_t(2 * K + 5)] = std::numeric_limits<float>::quiet_NaN();
  x[size_t(3 * K + 7)] = -std::numeric_limits<float>::infinity();
  for (const Kernels* t : tables_to_test())
    for (bool per_token : {false, true}) {
      QuantActs a, b;
      quantize_acts(per_token, x.data(), M, K, &a, *t);
      quantize_acts(per_token, x.data(), M, K, &b, s);
      INFO(t->name << (per_token ? " per token" : " q8_0"));
      CHECK(a.q == b.q);
      CHECK(std::memcmp(a.d.data(), b.d.data(), a.d.size() * 4) == 0);
      CHECK(a.s == b.s);
    }
}

TEST_CASE("extreme codes: integer accumulators exact, sign-trick worst case, zero scales", "[kernels]") {
  // Unit scales and K <= 1024 keep every partial f32 sum an exact integer (< 2^24), so y is the integer
  // accumulator itself; it must equal the int64 sum of products.
  const Kernels& s = kernels_for(Isa::scalar);
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &s);
  const int64_t M = 3, N = 17, K = 1024;
  struct Case {
    const char* name;
    int wcode, acode;  // constant codes; 0 = alternate +-127 (w) / +-8 (q4)
  };
  for (WFormat f : kFormats) {
    const int wmax = code_hi(f), wmin = code_lo(f);
    for (Case c : {Case{"max x max", wmax, 127}, Case{"min x min", wmin, -127}, Case{"min x max", wmin, 127},
                   Case{"max x min", wmax, -127}, Case{"alternating", 0, 127}}) {
      Weights w{f, N, K, std::vector<int8_t>(size_t(N * K)), {}};
      for (int64_t i = 0; i < N * K; i++) w.q[size_t(i)] = int8_t(c.wcode ? c.wcode : (i % 2 ? wmax : wmin));
      w.d.assign(size_t(N * w.groups()), 1.0f);
      std::vector<int8_t> aq(size_t(M * K));
      for (int64_t i = 0; i < M * K; i++) aq[size_t(i)] = int8_t(c.wcode ? c.acode : (i % 3 ? 127 : -127));
      std::vector<float> ad(size_t(uses_per_token(f) ? M : M * K / QK), 1.0f);
      QuantActs a;
      acts_from_codes(uses_per_token(f), aq.data(), ad.data(), M, K, &a);
      std::vector<float> want(size_t(M * N));
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
          int64_t sum = 0;
          for (int64_t k = 0; k < K; k++) sum += int64_t(w.q[size_t(n * K + k)]) * aq[size_t(m * K + k)];
          want[size_t(m * N + n)] = float(sum);
        }
      for (const Kernels* t : tables) {
        require_same_bits(run(w, a, *t), want, str(t->name, " ", wformat_name(f), " ", c.name));
        if (f == WFormat::s8_pc) {  // the int32 accumulators themselves
          PackedWeights p;
          pack_weights(f, w.q.data(), w.d.data(), N, K, &p, *t);
          std::vector<int32_t> y32(size_t(M * N));
          qgemm_s32(p, a, y32.data());
          for (size_t i = 0; i < y32.size(); i++) CHECK(float(y32[i]) == want[i]);
        }
      }
      // Zero scales (weights and activations) with the same codes: every table agrees with scalar.
      for (size_t i = 0; i < w.d.size(); i += 3) w.d[i] = 0.0f;
      for (size_t i = 0; i < ad.size(); i += 2) ad[i] = 0.0f;
      acts_from_codes(uses_per_token(f), aq.data(), ad.data(), M, K, &a);
      for (const Kernels* t : tables)
        require_same_bits(run(w, a, *t), run(w, a, s), str(t->name, " ", wformat_name(f), " ", c.name, " zero scales"));
    }
  }
}

TEST_CASE("integer GEMMs agree with f32 matmuls of the dequantized operands", "[kernels]") {
  const int64_t M = 4, N = 9, K = 4096;
  for (WFormat f : kFormats) {
    Weights w = make_weights(f, N, K, 21);
    QuantActs a = make_acts(uses_per_token(f), M, K, 8, kernels());
    std::vector<float> y = run(w, a, kernels());
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; k++) {
          double ad = a.per_token ? a.d[size_t(m)] : a.d[size_t(m * (K / QK) + k / QK)];
          double p = double(w.q[size_t(n * K + k)]) * w.scale(n, k) * (double(a.q[size_t(m * K + k)]) * ad);
          ref += p;
          mag += std::fabs(p);
        }
        worst = std::max(worst, std::fabs(y[size_t(m * N + n)] - ref) / (mag > 0 ? mag : 1));
      }
    INFO(wformat_name(f) << " on " << kernels().name << ": worst |y - ref| / sum|w a| = " << worst);
    CHECK(worst <= kTolDequant);
  }
}

TEST_CASE("every entry point gives the same bits at 1, 2, 3 and 4 threads", "[kernels]") {
  // Shapes above qgemm.cpp's threshold for going parallel (2^20 multiply-adds), M = 1 included.
  auto everything = [](int threads) {
    set_num_threads(threads);
    std::vector<float> out;
    for (WFormat f : kFormats)
      for (auto [M, N, K0] : {std::tuple<int64_t, int64_t, int64_t>{1, 2048, 768}, {33, 129, 256}, {130, 200, 64}}) {
        const int64_t K = f == WFormat::tq && K0 < 256 ? kfit(f, K0) : K0;
        Weights w = make_weights(f, N, K, 5);
        QuantActs a = make_acts(uses_per_token(f), M, K, 6, kernels());  // quantize_acts is threaded too
        std::vector<float> y = run(w, a, kernels());
        out.insert(out.end(), y.begin(), y.end());
        out.insert(out.end(), a.d.begin(), a.d.end());
      }
    const int64_t M = 70, N = 300, K = 100;  // the fixed-order f32 GEMM, and its M = 1 path
    std::vector<float> x(size_t(M * K)), w(size_t(N * K)), y(size_t(M * N));
    for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(8, 0, i);
    for (size_t i = 0; i < w.size(); i++) w[i] = rng_normal(9, 0, i);
    gemm_f32(x.data(), K, w.data(), K, M, N, K, y.data(), N);
    out.insert(out.end(), y.begin(), y.end());
    std::vector<float> w1(size_t(4096 * 300));
    for (size_t i = 0; i < w1.size(); i++) w1[i] = rng_normal(10, 0, i);
    std::vector<float> y1(4096);
    gemm_f32(w1.data(), 300, w1.data(), 300, 1, 4096, 300, y1.data(), 4096);
    out.insert(out.end(), y1.begin(), y1.end());
    std::vector<int8_t> q(w1.size());  // the learned weight quantizer, by groups
    std::vector<float> s(w1.size() / 300, 0.05f), s16(s.size());
    quantize_weights_learned(w1.data(), int64_t(w1.size()), 300, s.data(), kQ4Min, kQ4Max, q.data(), s16.data());
    for (int8_t c : q) out.push_back(float(c));
    return out;
  };
  const std::vector<float> ref = everything(1);
  for (int threads : {2, 3, 4}) require_same_bits(everything(threads), ref, str(kernels().name, ", threads ", threads));
  set_num_threads(0);
}

TEST_CASE("scalar panels (NR = 1) are the canonical ggml blocks themselves", "[kernels]") {
  const int64_t N = 19, K = 96;
  std::vector<float> x(size_t(N * K));
  for (int64_t i = 0; i < N * K; i++) x[size_t(i)] = rng_normal(4, 0, uint64_t(i));
  std::vector<BlockQ4_0> b4(size_t(N * K / QK));
  std::vector<BlockQ8_0> b8(size_t(N * K / QK));
  quantize_q4_0(x.data(), N * K, b4.data());
  quantize_q8_0(x.data(), N * K, b8.data());
  std::vector<int8_t> q(size_t(N * K));
  std::vector<float> d(size_t(N * K / QK));
  const Kernels& t = kernels_for(Isa::scalar);
  PackedWeights p;
  q4_0_to_codes(b4.data(), N * K, q.data(), d.data());
  pack_weights(WFormat::q4_0, q.data(), d.data(), N, K, &p, t);
  REQUIRE(p.data.size() == b4.size() * sizeof(BlockQ4_0));
  CHECK(std::memcmp(p.data.data(), b4.data(), p.data.size()) == 0);
  q8_0_to_codes(b8.data(), N * K, q.data(), d.data());
  pack_weights(WFormat::q8_0, q.data(), d.data(), N, K, &p, t);
  REQUIRE(p.data.size() == b8.size() * sizeof(BlockQ8_0));
  CHECK(std::memcmp(p.data.data(), b8.data(), p.data.size()) == 0);
}

TEST_CASE("f32 GEMM: every output equals dot_f32 bit for bit, in every table", "[kernels]") {
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &kernels_for(Isa::scalar));
  for (int64_t K : {1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 4096})
    for (auto [M, N] : {std::pair<int64_t, int64_t>{1, 13}, {2, 5}, {7, 17}, {5, 33}}) {
      const int64_t ldx = K + 3, ldw = K + 1, ldy = N + 2;
      std::vector<float> x(size_t(M * ldx)), w(size_t(N * ldw));
      for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(1, 0, i);
      for (size_t i = 0; i < w.size(); i++) w[i] = rng_normal(2, 0, i);
      if (K <= 9) {  // signed zeros: products -0 must stay -0 in lanes past the tail
        for (int64_t k = 0; k < K; k++) x[size_t(k)] = -0.0f;
        w[0] = 1.0f;
      }
      std::vector<float> want(size_t(M * ldy), 0.0f);
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) want[size_t(m * ldy + n)] = dot_f32(&x[size_t(m * ldx)], &w[size_t(n * ldw)], K);
      for (const Kernels* t : tables) {
        std::vector<float> y(size_t(M * ldy), 0.0f);
        gemm_f32(x.data(), ldx, w.data(), ldw, M, N, K, y.data(), ldy, *t);
        require_same_bits(y, want, str(t->name, " f32 M=", M, " N=", N, " K=", K));
      }
    }
}

TEST_CASE("dispatch: names, QAT_ISA values and unsupported ISAs are clear errors", "[kernels]") {
  CHECK(parse_isa("avx2") == Isa::avx2);
  CHECK(parse_isa("avx512vnni_simde") == Isa::avx512vnni_simde);
  CHECK_THROWS_AS(parse_isa("sse9"), UsageError);
  CHECK_THROWS_WITH(parse_isa("sse9"), Catch::Contains("expected one of scalar, avx2"));
  for (Isa isa : all_isas()) {
    INFO(isa_name(isa));
    if (isa_supported(isa)) {
      CHECK(kernels_for(isa).isa == isa);
      CHECK(std::string(kernels_for(isa).name) == isa_name(isa));
    } else {
      CHECK_THROWS_WITH(kernels_for(isa), Catch::Contains("is not available"));
      CHECK_THROWS_AS(select_isa(isa), Error);
    }
  }
  CHECK(isa_supported(best_isa()));
  CpuFeatures zen3;  // AVX2 + FMA + F16C only, as the development machines of the issue
  zen3.avx2 = zen3.fma = zen3.f16c = true;
  CHECK(isa_runs_on(Isa::avx2, zen3));
  CHECK_FALSE(isa_runs_on(Isa::avx512, zen3));
  CHECK_FALSE(isa_runs_on(Isa::avx512vnni, zen3));
  CHECK_FALSE(isa_runs_on(Isa::avxvnni, zen3));
  CHECK(isa_runs_on(Isa::avx512vnni_simde, zen3));
  CpuFeatures baseline;
  CHECK_FALSE(isa_runs_on(Isa::avx2, baseline));
  CHECK(isa_runs_on(Isa::scalar, baseline));
  if (const char* env = std::getenv("QAT_ISA")) CHECK(std::string(kernels().name) == env);  // QAT_ISA=... bin/tests
  INFO("active table " << kernels().name << " on " << cpu_features().brand << " (" << cpu_features().flags() << ")");
  CHECK(isa_supported(kernels().isa));
}

TEST_CASE("backends: native equals qgemm, oneDNN's int32 sums equal ours, OpenBLAS within tolerance", "[kernels][backend]") {
  const int64_t M = 3, N = 40, K = 128;
  // Codes within +-50 keep oneDNN exact even where it uses vpmaddubsw ((50 + 128) * 50 * 2 < 32767).
  std::vector<int8_t> w(size_t(N * K)), aq(size_t(M * K));
  for (size_t i = 0; i < w.size(); i++) w[i] = rand_code(1, i, -50, 50);
  for (size_t i = 0; i < aq.size(); i++) aq[i] = rand_code(2, i, -50, 50);
  std::vector<float> dw(static_cast<size_t>(N)), da(size_t(M), 0.02f), x(size_t(M * K));
  for (size_t i = 0; i < dw.size(); i++) dw[i] = 0.01f + 0.001f * float(i);
  for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(5, 0, i);
  QuantActs a;
  acts_from_codes(true, aq.data(), da.data(), M, K, &a);

  auto native_p = make_quant_linear(Backend::native, WFormat::s8_pc, w.data(), dw.data(), N, K);
  auto dnn_p = make_quant_linear(Backend::onednn, WFormat::s8_pc, w.data(), dw.data(), N, K);
  auto blas_p = make_quant_linear(Backend::openblas, WFormat::s8_pc, w.data(), dw.data(), N, K);
  const Linear &native = *native_p, &dnn = *dnn_p, &blas = *blas_p;
  std::vector<int32_t> s_native(size_t(M * N)), s_dnn(size_t(M * N));
  native.forward_s32(a, s_native.data());
  dnn.forward_s32(a, s_dnn.data());
  CHECK(s_native == s_dnn);

  std::vector<float> y_native(size_t(M * N)), y_qgemm(size_t(M * N)), y_dnn(size_t(M * N)), y_blas(size_t(M * N));
  native.forward(x.data(), M, y_native.data());
  PackedWeights p;
  pack_weights(WFormat::s8_pc, w.data(), dw.data(), N, K, &p);
  qgemm(p, x.data(), M, y_qgemm.data());
  require_same_bits(y_native, y_qgemm, "native backend vs qgemm");
  dnn.forward(x.data(), M, y_dnn.data());
  require_same_bits(y_dnn, y_qgemm, "onednn backend vs qgemm (same int32 sums and epilogue)");
  blas.forward(x.data(), M, y_blas.data());
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {  // f32 x times the dequantized weights, in double
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) {
        double t = double(x[size_t(m * K + k)]) * (double(w[size_t(n * K + k)]) * dw[size_t(n)]);
        ref += t;
        mag += std::fabs(t);
      }
      CHECK(std::fabs(y_blas[size_t(m * N + n)] - ref) <= kTolDequant * mag);
    }
  std::vector<float> y1(static_cast<size_t>(N));
  blas.forward(x.data(), 1, y1.data());  // the sgemv path
  for (int64_t n = 0; n < N; n++) CHECK(std::fabs(y1[size_t(n)] - y_blas[size_t(n)]) <= 1e-5f * (1 + std::fabs(y_blas[size_t(n)])));
  CHECK(parse_backend("onednn") == Backend::onednn);
  CHECK_THROWS_AS(parse_backend("mkl"), UsageError);
}

TEST_CASE("linear: one interface; f32 layers run gemm_f32 or OpenBLAS, native layers are reentrant", "[kernels][backend]") {
  const int64_t M = 3, N = 40, K = 64;
  Tensor w = Tensor::empty({N, K});
  for (int64_t i = 0; i < N * K; i++) w.f32()[i] = rng_normal(7, 0, uint64_t(i));
  std::vector<float> x(size_t(M * K));
  for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(8, 0, i);
  auto fixed = make_f32_linear(Backend::native, w), blas = make_f32_linear(Backend::openblas, w);
  CHECK(fixed->backend() == Backend::native);
  CHECK(blas->backend() == Backend::openblas);
  CHECK((fixed->rows() == N && fixed->cols() == K && fixed->weight_bytes() == N * K * 4));
  std::vector<float> y(size_t(M * N)), y_ref(size_t(M * N)), y_blas(size_t(M * N));
  fixed->forward(x.data(), M, y.data());
  gemm_f32(x.data(), K, w.f32(), K, M, N, K, y_ref.data(), N);
  require_same_bits(y, y_ref, "native f32 linear vs gemm_f32");
  blas->forward(x.data(), M, y_blas.data());
  for (size_t i = 0; i < y.size(); i++) CHECK(std::fabs(y_blas[i] - y_ref[i]) <= 1e-4f * (1 + std::fabs(y_ref[i])));
  QuantActs a;
  CHECK_THROWS_WITH(fixed->forward_s32(a, nullptr), Catch::Contains("no int32 accumulators"));
  CHECK_THROWS_WITH(make_quant_linear(Backend::native, WFormat::q8_0, nullptr, nullptr, N, 40),
                    Catch::Contains("multiple of 32"));

  // One native layer shared by threads, each with its own input: each thread's activation scratch is
  // its own, so each gets the serial bits of its input.
  const int64_t N2 = 256, K2 = 1024;  // large enough that the calls overlap in time
  std::vector<int8_t> q(size_t(N2 * K2));
  std::vector<float> d(size_t(N2 * K2 / 32), 0.01f);
  for (size_t i = 0; i < q.size(); i++) q[i] = int8_t(rand_code(3, i, -8, 7));
  auto q4 = make_quant_linear(Backend::native, WFormat::q4_0, q.data(), d.data(), N2, K2);
  const int T = 4;
  std::vector<std::vector<float>> xs(T, std::vector<float>(size_t(M * K2))), serial(T, std::vector<float>(size_t(M * N2)));
  std::vector<std::vector<float>> ys = serial;
  for (int i = 0; i < T; i++) {
    for (size_t j = 0; j < xs[size_t(i)].size(); j++) xs[size_t(i)][j] = rng_normal(9 + uint64_t(i), 0, j);
    q4->forward(xs[size_t(i)].data(), M, serial[size_t(i)].data());
  }
  std::vector<int> wrong(T, 0);  // calls whose output differed from the serial one, per thread
#pragma omp parallel for num_threads(T)
  for (int i = 0; i < T; i++)
    for (int rep = 0; rep < 1000; rep++) {
      q4->forward(xs[size_t(i)].data(), M, ys[size_t(i)].data());
      wrong[size_t(i)] += std::memcmp(ys[size_t(i)].data(), serial[size_t(i)].data(), ys[size_t(i)].size() * 4) != 0;
    }
  for (int i = 0; i < T; i++) CHECK(wrong[size_t(i)] == 0);
}

TEST_CASE("learned weight quantizer: every table equals src/quant's quantize_learned", "[kernels]") {
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &kernels_for(Isa::scalar));
  for (int64_t G : {32, 768, 40, 8}) {
    const int64_t n = G * 9;
    std::vector<float> x(static_cast<size_t>(n)), s(static_cast<size_t>(n / G));
    for (int64_t i = 0; i < n; i++) x[size_t(i)] = rng_normal(3, 0, uint64_t(i)) * 0.1f;
    const float special[] = {0.25f, 0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), 1e-20f, 1e9f, 0.01f, 0.003f, 0.5f};
    for (size_t g = 0; g < s.size(); g++) s[g] = special[g];
    for (int64_t j = 0; j < G; j++) x[size_t(j)] = float(j - G / 2) * 0.125f;  // s16 = 0.25: every code a tie
    x[size_t(G + 1)] = std::numeric_limits<float>::infinity();
    x[size_t(G + 2)] = std::numeric_limits<float>::quiet_NaN();
    for (auto [lo, hi] : {std::pair<int, int>{kQ4Min, kQ4Max}, {kQ8Min, kQ8Max}}) {
      std::vector<int8_t> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      std::vector<float> wd(static_cast<size_t>(n / G)), gd(static_cast<size_t>(n / G));
      quantize_learned(x.data(), n, G, s.data(), lo, hi, want.data(), wd.data());
      for (const Kernels* t : tables) {
        quantize_weights_learned(x.data(), n, G, s.data(), lo, hi, got.data(), gd.data(), *t);
        INFO(t->name << " G=" << G << " range [" << lo << ", " << hi << "]");
        CHECK(got == want);
        CHECK(std::memcmp(gd.data(), wd.data(), wd.size() * 4) == 0);
      }
    }
  }
}

TEST_CASE("row kernels: exp within 2 ulp of e^x, edge values; every table bit-exact with scalar", "[kernels][rows]") {
  // Inputs: a dense sweep of the finite range, the thresholds and their neighbours, specials.
  std::vector<float> x;
  for (int i = -200000; i <= 200000; i++) x.push_back(float(i) * 4.5e-4f);
  for (float e : {88.72283f, -87.33654f, 88.0f, -87.0f, 0.0f, 1e-30f, 1e-45f, 0.34657359f, -0.34657359f})
    for (float v : {e, -e, std::nextafter(e, INFINITY), std::nextafter(e, -INFINITY)}) x.push_back(v);
  for (float v : {INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(), 1e30f, -1e30f, -0.0f}) x.push_back(v);
  const Kernels& s = kernels_for(Isa::scalar);
  std::vector<float> want(x.size());
  s.rows.exp(x.data(), int64_t(x.size()), want.data());
  double worst_ulp = 0;
  for (size_t i = 0; i < x.size(); i++) {
    INFO("x = " << x[i] << " -> " << want[i]);
    if (std::isnan(x[i])) { REQUIRE(std::isnan(want[i])); continue; }
    if (x[i] >= 88.72283f) { REQUIRE(want[i] == INFINITY); continue; }
    if (x[i] < -87.33654f) { REQUIRE(want[i] == 0.0f); continue; }
    const double exact = std::exp(double(x[i]));
    const double ulp = double(std::nextafter(float(exact), INFINITY)) - double(float(exact));
    worst_ulp = std::max(worst_ulp, std::fabs(double(want[i]) - exact) / ulp);
    REQUIRE(want[i] >= std::numeric_limits<float>::min());  // normal: no subnormal results
  }
  INFO("worst error " << worst_ulp << " ulp");
  CHECK(worst_ulp <= 2.0);
  // Every table, on every alignment and tail length: the same bits (y may alias x).
  for (const Kernels* t : tables_to_test())
    for (int64_t off : {0, 1, 3, 7})
      for (int64_t n : {int64_t(0), int64_t(1), int64_t(5), int64_t(8), int64_t(13), int64_t(x.size()) - 7}) {
        std::vector<float> y(x.begin() + off, x.begin() + off + n), ref(static_cast<size_t>(n));
        s.rows.exp(y.data(), n, ref.data());
        t->rows.exp(y.data(), n, y.data());
        require_same_bits(y, ref, str(t->name, " exp off=", off, " n=", n));
      }
}

TEST_CASE("row kernels: attention's softmax row and SwiGLU, the spec written out; every table bit-exact with scalar",
          "[kernels][rows]") {
  const Kernels& s = kernels_for(Isa::scalar);
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &s);
  for (int64_t n : {1, 2, 7, 8, 9, 15, 16, 17, 40, 129, 1000})
    for (int variant = 0; variant < 4; variant++) {
      // Scores: normal, with -inf (masked), NaN, and large enough that exp(scale * x) would overflow
      // without the max subtraction.
      std::vector<float> x(static_cast<size_t>(n));
      for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(7, uint64_t(n * 4 + variant), i) * (variant == 3 ? 300.0f : 3.0f);
      if (variant == 1 && n > 2) x[1] = -INFINITY;
      if (variant == 2 && n > 3) x[size_t(n / 2)] = std::numeric_limits<float>::quiet_NaN();
      const float scale = 0.158113883f;
      // The spec: scale, maximum (NaNs passed over), exp of the difference, sum in sum_f32's order, divide.
      std::vector<float> want(x);
      float m = -INFINITY;
      for (float& v : want) {
        v = v * scale;
        m = v > m ? v : m;
      }
      for (float& v : want) v = v - m;
      s.rows.exp(want.data(), n, want.data());
      const float total = sum_f32(want.data(), n), inv = 1.0f / total;
      for (float& v : want) v = v * inv;
      for (const Kernels* t : tables) {
        std::vector<float> y(x);
        float got_m = 0, got_sum = 0;
        t->rows.softmax(y.data(), n, scale, &got_m, &got_sum);
        require_same_bits(y, want, str(t->name, " softmax n=", n, " variant ", variant));
        INFO(t->name << " softmax n=" << n << " variant " << variant);
        CHECK(got_m == m);
        CHECK(std::memcmp(&got_sum, &total, 4) == 0);
      }
    }
  for (int64_t n : {1, 7, 8, 9, 31, 864, 1001}) {
    std::vector<float> g(static_cast<size_t>(n)), u(static_cast<size_t>(n));
    for (size_t i = 0; i < g.size(); i++) {
      g[i] = rng_normal(8, uint64_t(n), i) * 6.0f;
      u[i] = rng_normal(9, uint64_t(n), i);
    }
    if (n > 4) {
      g[0] = 100.0f;  // exp(-g) underflows to 0: silu(g) = g
      g[1] = -100.0f;  // exp(-g) = inf: silu(g) = -0
      g[2] = std::numeric_limits<float>::quiet_NaN();
      g[3] = -0.0f;
    }
    std::vector<float> want(g.size()), e(g.size());
    for (size_t i = 0; i < g.size(); i++) e[i] = -g[i];
    s.rows.exp(e.data(), n, e.data());
    for (size_t i = 0; i < g.size(); i++) want[i] = g[i] / (1.0f + e[i]) * u[i];
    for (const Kernels* t : tables) {
      std::vector<float> y(g.size(), 7.0f), ga(g);
      t->rows.swiglu(g.data(), u.data(), n, y.data());
      require_same_bits(y, want, str(t->name, " swiglu n=", n));
      t->rows.swiglu(ga.data(), u.data(), n, ga.data());  // in place
      require_same_bits(ga, want, str(t->name, " swiglu in place n=", n));
    }
    // The backward, accumulated into existing gradients: s = 1 / (1 + e), dg += (dy u) (s (1 + g (1 - s))),
    // du += (dy g) s; either output may be absent.
    std::vector<float> dy(g.size()), dg0(g.size()), du0(g.size());
    for (size_t i = 0; i < g.size(); i++) {
      dy[i] = rng_normal(10, uint64_t(n), i);
      dg0[i] = rng_normal(11, uint64_t(n), i);
      du0[i] = rng_normal(12, uint64_t(n), i);
    }
    std::vector<float> want_dg(dg0), want_du(du0);
    for (size_t i = 0; i < g.size(); i++) {
      const float s = 1.0f / (1.0f + e[i]);
      want_dg[i] = want_dg[i] + dy[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
      want_du[i] = want_du[i] + dy[i] * g[i] * s;
    }
    for (const Kernels* t : tables)
      for (int which = 0; which < 3; which++) {  // both, dg only, du only
        std::vector<float> dg(dg0), du(du0);
        t->rows.swiglu_backward(g.data(), u.data(), dy.data(), n, which == 2 ? nullptr : dg.data(),
                                which == 1 ? nullptr : du.data());
        // A NaN input (g[2]) gives NaN, whose sign follows which operand of a commutative multiply the
        // compiler put first: NaNs compare as NaNs, everything else bit for bit.
        auto canon = [](std::vector<float> v) {
          for (float& x : v) x = std::isnan(x) ? std::numeric_limits<float>::quiet_NaN() : x;
          return v;
        };
        require_same_bits(canon(dg), canon(which == 2 ? dg0 : want_dg), str(t->name, " swiglu_backward dg n=", n, " case ", which));
        require_same_bits(canon(du), canon(which == 1 ? du0 : want_du), str(t->name, " swiglu_backward du n=", n, " case ", which));
      }
  }
}

TEST_CASE("row kernels: weighted sum of rows in order, every table bit-exact with scalar", "[kernels][rows]") {
  const Kernels& s = kernels_for(Isa::scalar);
  std::vector<const Kernels*> tables = tables_to_test();
  for (int64_t G : {1, 2, 3})
    for (int64_t D : {1, 3, 7, 8, 9, 16, 17, 31, 32, 33, 40, 48, 49, 64, 72, 129})
      for (int64_t n : {1, 2, 7, 100}) {
        const int64_t stride = D + 5, ldp = n + 2, ldo = D + 3;
        std::vector<float> p(static_cast<size_t>(G * ldp)), v(static_cast<size_t>(n * stride));
        for (size_t i = 0; i < p.size(); i++) p[i] = std::fabs(rng_normal(3, uint64_t(D), i));
        for (size_t i = 0; i < v.size(); i++) v[i] = rng_normal(4, uint64_t(D), i);
        // The spec written out: acc = acc + p_g[j] * v_j[d], j in order; 7.0 marks what must stay untouched.
        std::vector<float> want(static_cast<size_t>(G * ldo), 7.0f);
        for (int64_t g = 0; g < G; g++)
          for (int64_t d = 0; d < D; d++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < n; j++) acc = acc + p[size_t(g * ldp + j)] * v[size_t(j * stride + d)];
            want[size_t(g * ldo + d)] = acc;
          }
        tables.insert(tables.begin(), &s);
        for (const Kernels* t : tables) {
          std::vector<float> y(static_cast<size_t>(G * ldo), 7.0f);
          t->rows.weighted_rows(p.data(), ldp, G, v.data(), stride, n, D, y.data(), ldo);
          require_same_bits(y, want, str(t->name, " weighted_rows G=", G, " D=", D, " n=", n));
        }
        tables.erase(tables.begin());
      }
}

TEST_CASE("row kernels: attention heads over a position-major cache, every table bit-exact with the per-head spec", "[kernels][rows]") {
  const Kernels& s = kernels_for(Isa::scalar);
  std::vector<const Kernels*> tables = tables_to_test();
  tables.insert(tables.begin(), &s);
  // (H, group): MHA with 16 and 3 heads (the 8-head tile and its remainder), GQA with 2 and 4 query heads per kv head.
  for (auto [H, group] : {std::pair<int64_t, int64_t>{16, 1}, {3, 1}, {12, 2}, {8, 4}})
    for (int64_t D : {8, 16, 64, 7, 12, 33})
      for (int64_t n : {1, 2, 7, 50}) {
        const int64_t Hkv = H / group, stride = Hkv * D + 3, lds = n + 1;  // a padded stride: rows do not touch
        std::vector<float> q(size_t(H * D)), k(size_t(n * stride)), v(size_t(n * stride)), p(size_t(H * lds));
        for (size_t i = 0; i < q.size(); i++) q[i] = rng_normal(21, uint64_t(D), i);
        for (size_t i = 0; i < k.size(); i++) k[i] = rng_normal(22, uint64_t(D), i);
        for (size_t i = 0; i < v.size(); i++) v[i] = rng_normal(23, uint64_t(D), i);
        for (size_t i = 0; i < p.size(); i++) p[i] = std::fabs(rng_normal(24, uint64_t(D), i));
        // The spec written out: dot_f32 per (head, position); P V as acc = acc + p * v in position order.
        std::vector<float> want_s(size_t(H * lds), 7.0f), want_o(size_t(H * D));
        for (int64_t h = 0; h < H; h++) {
          for (int64_t j = 0; j < n; j++) want_s[size_t(h * lds + j)] = dot_f32(&q[size_t(h * D)], &k[size_t(j * stride + h / group * D)], D);
          for (int64_t d = 0; d < D; d++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < n; j++) acc = acc + p[size_t(h * lds + j)] * v[size_t(j * stride + h / group * D + d)];
            want_o[size_t(h * D + d)] = acc;
          }
        }
        for (const Kernels* t : tables) {
          const std::string what = str(t->name, " H=", H, " group=", group, " D=", D, " n=", n);
          std::vector<float> got_s(size_t(H * lds), 7.0f), got_o(size_t(H * D), 5.0f);
          t->rows.head_scores(q.data(), H, group, k.data(), stride, n, D, got_s.data(), lds);
          require_same_bits(got_s, want_s, "head_scores " + what);
          t->rows.head_weighted(p.data(), lds, H, group, v.data(), stride, n, D, got_o.data());
          require_same_bits(got_o, want_o, "head_weighted " + what);
        }
      }
}

TEST_CASE("attention_heads: each head's output is attention_rows's, bit for bit", "[kernels][rows]") {
  for (Isa isa : {best_isa(), Isa::scalar}) {
    select_isa(isa);
    for (auto [H, group] : {std::pair<int64_t, int64_t>{16, 1}, {6, 3}})
      for (int64_t n : {1, 9, 40}) {
        const int64_t D = 64, Hkv = H / group, stride = Hkv * D;
        std::vector<float> q(size_t(H * D)), k(size_t(n * stride)), v(size_t(n * stride));
        for (size_t i = 0; i < q.size(); i++) q[i] = rng_normal(31, uint64_t(n), i);
        for (size_t i = 0; i < k.size(); i++) k[i] = rng_normal(32, uint64_t(n), i);
        for (size_t i = 0; i < v.size(); i++) v[i] = rng_normal(33, uint64_t(n), i);
        std::vector<float> scores(size_t(H * n)), got(size_t(H * D)), want(size_t(H * D));
        attention_heads(q.data(), H, group, k.data(), v.data(), stride, n, D, 0.125f, scores.data(), got.data());
        for (int64_t h = 0; h < H; h++)
          attention_rows(&q[size_t(h * D)], D, 1, &k[size_t(h / group * D)], &v[size_t(h / group * D)], stride, n, D,
                         0.125f, scores.data(), &want[size_t(h * D)], D, nullptr);
        require_same_bits(got, want, str(isa_name(isa), " attention_heads H=", H, " group=", group, " n=", n));
      }
  }
  select_isa(best_isa());
}

TEST_CASE("tq weights: rows of whole 256-blocks only, refused in one line otherwise", "[kernels][ternary]") {
  std::vector<int8_t> q(size_t(4 * 288), 0);
  std::vector<float> d(8, 1.0f);
  PackedWeights p;
  CHECK_THROWS_WITH(pack_weights(WFormat::tq, q.data(), d.data(), 4, 288, &p),
                    Catch::Contains("tq weights (4, 288): K must be a multiple of 256"));
  CHECK(wformat_group(WFormat::tq, 512) == 256);
  CHECK(kernels_for(Isa::scalar).tq.panel_bytes(512) == 16 * 10);  // 16 blocks of 32: f16 scale + 8 bytes
}
