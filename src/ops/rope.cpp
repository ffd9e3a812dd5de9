// Rotary position embedding on adjacent pairs (2i, 2i+1) of each head (Meta's Llama and llama.cpp's
// `llama` layout; HF's rotate-half pairs i with i + D/2 instead).
//   forward:  (y0, y1) = (x0 c - x1 s, x0 s + x1 c),  c, s = cos, sin(pos * base^(-2i/D))
//   backward: the inverse rotation: dx0 = dy0 c + dy1 s,  dx1 = -dy0 s + dy1 c
// The angles depend on (t, i) only: one table of T x D/2 (cos, sin) pairs per call (rope_angles, the
// function the KV-cache decode uses too).
#include <vector>

#include "src/ops/ops.h"
#include "src/ops/rowops.h"
#include "src/util/profile.h"

namespace qat {

static std::vector<float> angle_table(int64_t pos0, int64_t T, int64_t D, float base) {
  std::vector<float> cs(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; t++) rope_angles(pos0 + t, D, base, cs.data() + t * D);
  return cs;
}

Tensor rope(const Tensor& x_in, int64_t pos0, float base) {
  QAT_CHECK(x_in.ndim() == 4 && x_in.dim(3) % 2 == 0, "rope: x must be (B, T, H, D) with D even, got ",
            x_in.shape_string());
  Tensor x = contiguous(x_in);
  int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), D = x.dim(3);
  QAT_PROF("rope", forward, 3.0 * double(B * T * H * D), 8.0 * double(B * T * H * D));
  std::vector<float> cs = angle_table(pos0, T, D, base);
  Tensor out = x.clone();
  float* py = out.f32();
#pragma omp parallel for schedule(static) if (B * T * H * D > 16384)
  for (int64_t bt = 0; bt < B * T; bt++)
    for (int64_t h = 0; h < H; h++) rope_row(py + (bt * H + h) * D, cs.data() + (bt % T) * D, D);
  record(out, "rope", {x}, [x, cs, B, T, H, D](const Tensor&, const Tensor& dout) {
    const float* dy = dout.f32();
    float* dx = grad_buffer(x).f32();
#pragma omp parallel for schedule(static) if (B * T * H * D > 16384)
    for (int64_t bt = 0; bt < B * T; bt++) {
      const float* a = cs.data() + (bt % T) * D;
      for (int64_t h = 0; h < H; h++) {
        int64_t o = (bt * H + h) * D;
        for (int64_t i = 0; i < D / 2; i++) {
          float c = a[2 * i], s = a[2 * i + 1], g0 = dy[o + 2 * i], g1 = dy[o + 2 * i + 1];
          dx[o + 2 * i] += g0 * c + g1 * s;
          dx[o + 2 * i + 1] += -g0 * s + g1 * c;
        }
      }
    }
  });
  return out;
}

}  // namespace qat
