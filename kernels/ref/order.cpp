// The f32 reduction order (see order.h): plain loops, compiled with -ffp-contract=off like everything.
#include "kernels/ref/order.h"

namespace qat {

float dot_f32(const float* a, const float* b, int64_t n) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) l[j] = l[j] + a[i + j] * b[i + j];
  for (int j = 0; i + j < n; j++) l[j] = l[j] + a[i + j] * b[i + j];
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

float sum_f32(const float* x, int64_t n) {
  float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) l[j] = l[j] + x[i + j];
  for (int j = 0; i + j < n; j++) l[j] = l[j] + x[i + j];
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

}  // namespace qat
