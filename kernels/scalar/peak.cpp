// Peak loops of the scalar table (bin/bench peak): what plain C++ reaches without SIMD intrinsics.
#include "kernels/scalar/scalar.h"

namespace qat::scalar {

double peak_f32_fma(int64_t iters) {
  float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const float b = 0.999999f, c = 1e-6f;
  for (int64_t i = 0; i < iters; i++)
    for (int j = 0; j < 8; j++) a[j] = a[j] * b + c;  // mul + add (-ffp-contract=off)
  volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
  (void)sink;
  return 2.0 * 8 * double(iters);
}

double peak_int8(int64_t iters) {
  int32_t acc[8] = {};
  volatile int8_t vx = 3, vy = -5;
  const int8_t x = vx, y = vy;
  for (int64_t i = 0; i < iters; i++)
    for (int j = 0; j < 8; j++) acc[j] += int32_t(int8_t(x + j)) * int32_t(y);
  volatile int32_t sink = acc[0] + acc[7];
  (void)sink;
  return 2.0 * 8 * double(iters);
}

uint64_t peak_read(const uint8_t* p, int64_t bytes) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t s[4] = {};
  for (int64_t i = 0; i < bytes / 8; i += 4)
    for (int j = 0; j < 4; j++) s[j] += w[i + j];
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace qat::scalar
