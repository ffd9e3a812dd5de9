// minmax and MSE-optimal scales (see scale_init.h). Groups are independent: parallel over rows.
#include "src/quant/scale_init.h"

#include <cmath>
#include <vector>

#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {

namespace {
// The learned-rule scale of one group that minimises the squared error, searched over alpha.
float mse_scale(const float* w, int64_t G, int lo, int hi) {
  float amax = 0;
  for (int64_t j = 0; j < G; j++) amax = std::max(amax, std::fabs(w[j]));
  if (amax == 0) return learned_scale(0.0f);
  const float base = amax / float(-lo);  // amax/8 for int4, amax/127 for int8
  float best_s = base;
  double best_err = INFINITY;
  for (int step = 0; step <= 100; step++) {
    float s = learned_scale(base * (0.30f + 0.01f * float(step)));
    double err = 0;
    for (int64_t j = 0; j < G; j++) {
      double e = double(w[j]) - double(code_learned(w[j], s, lo, hi)) * s;
      err += e * e;
    }
    if (err < best_err) { best_err = err; best_s = s; }
  }
  return best_s;
}
}  // namespace

void init_scales(const float* w, int64_t N, int64_t K, const LayerQuant& q, const std::string& method, float* scale) {
  QAT_CHECK(method == "minmax" || method == "mse", "scale init: method must be minmax or mse, got '", method, "'");
  const int64_t G = q.group(K), per_row = K / G;
  const int lo = q.code_min(), hi = q.code_max();
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < per_row; g++) {
      const float* x = w + n * K + g * G;
      float s;
      if (method == "mse") {
        s = mse_scale(x, G, lo, hi);
      } else {
        float amax = 0;
        for (int64_t j = 0; j < G; j++) amax = std::max(amax, std::fabs(x[j]));
        s = learned_scale(amax / float(-lo));
      }
      scale[n * per_row + g] = s;
    }
}

void ptq_quantize(const float* w, int64_t N, int64_t K, const LayerQuant& q, const std::string& method, int8_t* codes,
                  float* d) {
  const int64_t G = q.group(K);
  if (method == "mse") {
    std::vector<float> s(static_cast<size_t>(N * K / G));
    init_scales(w, N, K, q, "mse", s.data());
    quantize_learned(w, N * K, G, s.data(), q.code_min(), q.code_max(), codes, d);
    return;
  }
  QAT_CHECK(method == "minmax", "PTQ: method must be minmax or mse, got '", method, "'");
  switch (q.w) {
    case WQuant::q4_0: quantize_int4_ggml(w, N * K, QK, codes, d); break;
    case WQuant::q8_0: quantize_int8_ggml(w, N * K, QK, ScaleRound::f16, codes, d); break;
    case WQuant::int8_pc: quantize_per_channel_int8(w, N, K, codes, d); break;
    case WQuant::int4_pc: quantize_per_channel_int4(w, N, K, codes, d); break;
    case WQuant::tq2_0:
    case WQuant::tq1_0: quantize_ternary(w, N * K, codes, d); break;  // llama.cpp's quantize_row_tq*_ref
    case WQuant::q4_k:
    case WQuant::q6_k: fail("PTQ: ", q.name(), " is stored as blocks, not codes and scales (quantized_from_ptq)");
    case WQuant::none: fail("PTQ: the layer format is f32");
  }
}

}  // namespace qat
