// The project's one f32 reduction order: the spec that kernels/scalar follows and every SIMD kernel
// matches bit for bit (the fixed-order f32 GEMM, attention's scores and P V, rmsnorm's sum of squares,
// softmax's sum). It lives here, at the lowest layer that needs it, so the kernels carry their own spec;
// the engine's row functions (src/ops/rowops.h) use it too. Read next: kernels/scalar/gemm_f32.cpp.
#pragma once
#include <cstdint>

namespace qat {

// a . b over n: 8 interleaved partial sums (lane j takes i % 8 == j), each acc = acc + a*b (no FMA),
// combined as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
float dot_f32(const float* a, const float* b, int64_t n);

// The sum of x (n) in dot_f32's order (8 interleaved partial sums, the same combination).
float sum_f32(const float* x, int64_t n);

}  // namespace qat
