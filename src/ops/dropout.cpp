// Dropout with a counter-based mask: element i is kept iff uniform(seed, step, i) >= p, so the mask is a
// pure function of (seed, step, index): no state, any thread count, and backward recomputes it.
//   forward  y = x * keep / (1 - p)      backward  dx += dy * keep / (1 - p)
#include "src/core/rng.h"
#include "src/ops/ops.h"
#include "src/util/profile.h"

namespace qat {

static inline bool keep(uint64_t seed, uint64_t step, int64_t i, float p) {
  return rng_uniform(seed, 0x64726f70ull ^ step, uint64_t(i)) >= p;
}

Tensor dropout(const Tensor& x_in, float p, uint64_t seed, uint64_t step) {
  QAT_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p);
  if (p == 0.0f) return x_in;
  QAT_PROF("dropout", forward, double(x_in.numel()), 8.0 * double(x_in.numel()));
  Tensor x = contiguous(x_in);
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.f32();
  float* py = out.f32();
  int64_t n = x.numel();
  float s = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int64_t i = 0; i < n; i++) py[i] = keep(seed, step, i, p) ? px[i] * s : 0.0f;
  record(out, "dropout", {x}, [x, p, seed, step, n, s](const Tensor&, const Tensor& dout) {
    const float* dy = dout.f32();
    float* dx = grad_buffer(x).f32();
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++)
      if (keep(seed, step, i, p)) dx[i] += dy[i] * s;
  });
  return out;
}

}  // namespace qat
