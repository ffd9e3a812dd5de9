// Element types of a tensor, their sizes, and the f32 <-> f16 conversions (IEEE binary16, round to
// nearest even). f32 is the compute type; s8/u8/s32/f16 hold quantized codes, accumulators and scales.
// Read next: storage.h, then tensor.h.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace qat {

enum class DType : uint8_t { f32, f16, s8, u8, s32 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::s8: return 1;
    case DType::u8: return 1;
    case DType::s32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::s8: return "s8";
    case DType::u8: return "u8";
    case DType::s32: return "s32";
  }
  return "?";
}

inline uint32_t f32_bits(float x) { uint32_t u; std::memcpy(&u, &x, 4); return u; }
inline float f32_from_bits(uint32_t u) { float x; std::memcpy(&x, &u, 4); return x; }

// f32 -> f16, round to nearest, ties to even; overflow -> inf, NaN stays NaN (quiet).
// Bit-exact with the F16C instruction vcvtps2ph (imm 0) and with ggml's GGML_FP32_TO_FP16.
inline uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
  int32_t e = int32_t(exp) - 127 + 15;
  if (e >= 0x1f) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                    // subnormal or zero in f16
    if (e < -10) return uint16_t(sign);            // too small: rounds to zero
    mant |= 0x800000u;                             // implicit leading one
    uint32_t shift = uint32_t(14 - e);             // 14..24
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = mant & ((1u << shift) - 1);
    uint32_t m = mant >> shift;
    if (rest > half || (rest == half && (m & 1u))) m++;
    return uint16_t(sign | m);                     // m may carry into the exponent: still correct
  }
  uint32_t m = mant >> 13;
  uint32_t rest = mant & 0x1fffu;
  uint32_t h = sign | (uint32_t(e) << 10) | m;
  if (rest > 0x1000u || (rest == 0x1000u && (m & 1u))) h++;  // carry may roll into exponent/inf: correct
  return uint16_t(h);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);
    // subnormal: value = mant * 2^-24, exactly representable in f32
    float v = float(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round an f32 to the nearest f16 value, returned as f32.
inline float round_to_f16(float x) { return f16_to_f32(f32_to_f16(x)); }

}  // namespace qat
