// llama.cpp's K-quants Q4_K and Q6_K (see quant.h): ggml's reference quantizers, step for step in the same
// float operations and order, so the blocks are byte-identical to what llama-quantize writes without an
// importance matrix (tests/fixtures/kq_golden.bin, tests/test_kquants.cpp). Both are two-level: a search
// picks each sub-block's scale (and, for Q4_K, its min), then those scales are quantized against one f16
// per super-block of 256, and the codes are recomputed from the scales as stored.
#include <cstring>

#include "kernels/ref/quant.h"
#include "src/core/dtype.h"
#include "src/util/error.h"

namespace qat {

namespace {
constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: a Q6_K block below it is all zeros

// ggml's nearest_int: round half to even by adding 1.5 * 2^23 and reading the mantissa; exact for
// |v| <= 4194303 (ggml asserts that). Ours is total: beyond it the value is clamped (NaN gives 0).
int nearest_int(float v) {
  if (!(std::fabs(v) <= 4194303.0f)) return v != v ? 0 : (v > 0 ? 4194303 : -4194303);
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

void check_input(const char* what, const float* x, int64_t n) {
  QAT_CHECK(n >= 0 && n % QKK == 0, what, ": ", n, " elements are not a whole number of blocks of ", QKK);
  for (int64_t i = 0; i < n; i++)
    QAT_CHECK(std::isfinite(x[i]), what, ": element ", i, " is not finite (", x[i], ")");
}

// ggml's make_qkx2_quants (use_mad = false): codes L (n) in [0, nmax] and value = scale * L - neg_min,
// chosen among nstep + 1 candidate ranges to minimise sum w (value - x)^2, the min and scale of each
// candidate being the weighted least-squares fit to its codes. Returns the scale; *neg_min >= 0.
float search_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = uint8_t(l < 0 ? 0 : (l > nmax ? nmax : l));
    float diff = scale * float(L[i]) + min - x[i];
    diff = diff * diff;
    best_err += w[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = l < 0 ? 0 : (l > nmax ? nmax : l);
      Laux[i] = uint8_t(l);
      const float fl = float(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        err += w[i] * diff;
      }
      if (err < best_err) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_err = err;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// ggml's make_qx_quants with rmse_type 1 (weights x^2: `squared` = true) or 2 (weights 1): symmetric codes
// L (n) = l + nmax, l in [-nmax, nmax - 1], value = scale * l; the scale is the weighted least-squares fit
// for the best of 19 candidate grids around nmax / max|x|. Returns the scale (signed, like max's element).
float search_scale_sym(int n, int nmax, const float* x, int8_t* L, bool squared) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto fit = [&](float iscale, float* sumlx, float* suml2, bool store) {
    *sumlx = *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l);
      if (store) L[i] = int8_t(l + nmax);
      const float w = squared ? x[i] * x[i] : 1.0f, fl = float(l);
      *sumlx += w * x[i] * fl;
      *suml2 += w * fl * fl;
    }
  };
  float sumlx, suml2;
  fit(float(-nmax) / max, &sumlx, &suml2, true);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float iscale = -(float(nmax) + 0.1f * float(is)) / max;
    fit(iscale, &sumlx, &suml2, false);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      fit(iscale, &sumlx, &suml2, true);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K's 6-bit sub-block scale and min j from the 12 packed bytes (ggml's get_scale_min_k4).
void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
}  // namespace

void quantize_q4_k(const float* x, int64_t n, BlockQ4_K* y, KRule rule) {
  check_input("quantize_q4_k", x, n);
  for (int64_t b = 0; b < n / QKK; b++, x += QKK) {
    uint8_t L[QKK], Laux[32];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;  // scales and (negated) mins are >= 0
    for (int j = 0; j < 8; ++j) {
      const float* xj = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xj[l] * xj[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) w[l] = rule == KRule::ggml ? av_x + std::fabs(xj[l]) : 1.0f;
      scales[j] = search_scale_min(32, 15, xj, w, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    // The sub-block scales and mins as 6-bit multiples of d = max_scale / 63 and dmin = max_min / 63.
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    BlockQ4_K& o = y[b];
    for (int j = 0; j < 8; ++j) {
      uint8_t ls = uint8_t(nearest_int(inv_scale * scales[j]));  // wraps like ggml's int -> uint8_t
      uint8_t lm = uint8_t(nearest_int(inv_min * mins[j]));
      ls = ls < 63 ? ls : 63;
      lm = lm < 63 ? lm : 63;
      if (j < 4) {
        o.scales[j] = ls;
        o.scales[j + 4] = lm;
      } else {
        o.scales[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
        o.scales[j - 4] = uint8_t(o.scales[j - 4] | ((ls >> 4) << 6));
        o.scales[j] = uint8_t(o.scales[j] | ((lm >> 4) << 6));
      }
    }
    o.d = f32_to_f16(max_scale / 63.0f);
    o.dmin = f32_to_f16(max_min / 63.0f);
    // The codes again, against the scales as stored (a sub-block whose stored scale is 0 keeps the search's).
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      scale_min_k4(j, o.scales, &sc, &m);
      const float d = f16_to_f32(o.d) * float(sc);
      if (d == 0) continue;
      const float dm = f16_to_f32(o.dmin) * float(m);
      for (int i = 0; i < 32; ++i) {
        const int l = nearest_int((x[32 * j + i] + dm) / d);
        L[32 * j + i] = uint8_t(l < 0 ? 0 : (l > 15 ? 15 : l));
      }
    }
    for (int j = 0; j < QKK; j += 64)
      for (int l = 0; l < 32; ++l) o.qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

void dequantize_q4_k(const BlockQ4_K* x, int64_t n, float* y) {
  QAT_CHECK(n >= 0 && n % QKK == 0, "dequantize_q4_k: ", n, " elements are not a whole number of blocks of ", QKK);
  for (int64_t b = 0; b < n / QKK; b++) {
    const float d = f16_to_f32(x[b].d), min = f16_to_f32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    for (int j = 0; j < 8; j += 2, q += 32) {  // sub-blocks j, j + 1 share 32 bytes: low, high nibbles
      uint8_t sc, m;
      scale_min_k4(j, x[b].scales, &sc, &m);
      const float d1 = d * float(sc), m1 = min * float(m);
      scale_min_k4(j + 1, x[b].scales, &sc, &m);
      const float d2 = d * float(sc), m2 = min * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void quantize_q6_k(const float* x, int64_t n, BlockQ6_K* y, KRule rule) {
  check_input("quantize_q6_k", x, n);
  for (int64_t b = 0; b < n / QKK; b++, x += QKK) {
    int8_t L[QKK];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;  // the sub-block scale of largest magnitude, signed
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = search_scale_sym(16, 32, x + 16 * ib, L + 16 * ib, rule == KRule::ggml);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    BlockQ6_K& o = y[b];
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&o, 0, sizeof o);  // d = +0
      continue;
    }
    // Sub-block scales as int8 multiples of d = max_scale / -128 (the largest one is exactly -128).
    const float iscale = -128.0f / max_scale;
    o.d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) {
      const int s = nearest_int(iscale * scales[ib]);
      o.scales[ib] = int8_t(s < 127 ? s : 127);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = f16_to_f32(o.d) * float(o.scales[j]);
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i) {
        int l = nearest_int(x[16 * j + i] / d);
        l = l < -32 ? -32 : (l > 31 ? 31 : l);
        L[16 * j + i] = int8_t(l + 32);
      }
    }
    // Element j + l + 32 t (t = 0..3) of each half of 128: low nibbles in ql, high 2 bits in qh.
    uint8_t* ql = o.ql;
    uint8_t* qh = o.qh;
    for (int j = 0; j < QKK; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = uint8_t(L[j + l] & 0xF), q2 = uint8_t(L[j + l + 32] & 0xF);
        const uint8_t q3 = uint8_t(L[j + l + 64] & 0xF), q4 = uint8_t(L[j + l + 96] & 0xF);
        ql[l] = uint8_t(q1 | (q3 << 4));
        ql[l + 32] = uint8_t(q2 | (q4 << 4));
        qh[l] = uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                        ((L[j + l + 96] >> 4) << 6));
      }
  }
}

void dequantize_q6_k(const BlockQ6_K* x, int64_t n, float* y) {
  QAT_CHECK(n >= 0 && n % QKK == 0, "dequantize_q6_k: ", n, " elements are not a whole number of blocks of ", QKK);
  for (int64_t b = 0; b < n / QKK; b++) {
    const float d = f16_to_f32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    for (int h = 0; h < QKK; h += 128, y += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
  }
}

}  // namespace qat
