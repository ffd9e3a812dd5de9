// Counter-based random numbers: every value is a pure function of (seed, stream, index), so results
// never depend on the thread count or on the order in which threads draw. splitmix64 finalizers are
// enough for initialisation, dropout and sampling (not for cryptography).
#pragma once
#include <cmath>
#include <cstdint>

namespace qat {

inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// 64 random bits for (seed, stream, index). stream separates uses: init of tensor k, dropout of step s...
inline uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(mix64(seed) ^ stream) ^ index);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
inline float rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return float(rng_bits(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller on two 53-bit uniforms, in double then rounded: deterministic.
inline float rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t b = rng_bits(seed, stream, index);
  uint64_t c = mix64(b ^ 0x5851f42d4c957f2dull);
  double u1 = (double((b >> 11) + 1)) * (1.0 / 9007199254740993.0);  // (0, 1]
  double u2 = double(c >> 11) * (1.0 / 9007199254740992.0);          // [0, 1)
  return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// A small sequential generator for host-side choices (shuffles, sampling): its state is one u64,
// saved in checkpoints so a resumed run draws the same numbers.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed = 0) : state(seed) {}
  uint64_t next() { return mix64(state++); }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

}  // namespace qat
