// The QAT ops, forward and backward side by side (math in docs/QAT.md):
//   fake_quant_weight  w_hat = s16 * clamp(round(w / s16), lo, hi)       (learned rule of quant.h)
//       dw += dw_hat * [lo <= w/s16 <= hi]                              (STE; identity_ste: no mask)
//       ds += g * sum_group dw_hat * (in range ? q - w/s16 : q)          (LSQ, g = 1/sqrt(G * hi))
//   fake_quant_act     dynamic rules (q8_0 blocks, per token): x_hat = dequant(quant(x)), dx += dx_hat
//                      static learned scale: as the weights, with G = every element
//   quantized_linear   y = x W^T exactly as the served model computes it: for served formats the
//       activations are quantized by the reference rule and multiplied by the integer kernel on the
//       packed codes (kernels/qgemm.h); backward is f32 STE: dx += dy W_hat, dW_hat = dy^T x_hat.
//   fixed_linear       y = x W^T with the fixed-order f32 kernel (layers kept f32 in a QAT model).
// Read next: src/quant/scale_init.h, models/transformer.cpp (where these are called).
#pragma once
#include "src/ops/ops.h"
#include "src/quant/scheme.h"

namespace qat {

// w (N, K), scale (N, K/G) positive learned scales -> w_hat (N, K).
Tensor fake_quant_weight(const Tensor& w, const Tensor& scale, const LayerQuant& q, bool identity_ste);
// Quant-Noise (Fan et al. 2021): only a random fraction p of the elements is fake-quantized, the rest
// pass through in f32. Element e is quantized iff rng_uniform(seed, stream, e) < p, a pure function of
// its arguments (any thread count). Backward: STE for the quantized elements, identity for the others;
// the LSQ scale gradient comes from the quantized elements only. p = 1 is fake_quant_weight.
Tensor fake_quant_weight_partial(const Tensor& w, const Tensor& scale, const LayerQuant& q, bool identity_ste,
                                 float p, uint64_t seed, uint64_t stream);
// x (..., K) -> x_hat; static_scale (1) is used (and learned) only for AQuant::int8_static.
Tensor fake_quant_act(const Tensor& x, AQuant a, const Tensor& static_scale);
// x (..., K), w (N, K), scale (N, K/G), act_scale (1) or undefined -> (..., N).
Tensor quantized_linear(const Tensor& x, const Tensor& w, const Tensor& scale, const Tensor& act_scale,
                        const LayerQuant& q, bool identity_ste);
// x (..., K), w (N, K) -> (..., N), forward by kernels' gemm_f32, backward by OpenBLAS.
Tensor fixed_linear(const Tensor& x, const Tensor& w);

// Codes q (N, K) and f16 scales s16 (N, K/G) of w under the learned rule (what export writes).
void quantize_weight(const Tensor& w, const Tensor& scale, const LayerQuant& q, std::vector<int8_t>* codes,
                     std::vector<float>* s16);

// Oscillation dampening (Nagel et al. 2022, "Overcoming oscillations in quantization-aware training"),
// decoupled from the gradient as AdamW's weight decay is: every latent weight inside the clip range
// moves the fraction `rate` of the way to its fake-quantized value, w -= rate * (w - w_hat), so a weight
// that flips between two codes from step to step is pulled to the middle of its current bin. Weights
// outside the range are left alone (the STE gives them no gradient either). w (N, K), scale (N, K/G).
void dampen_toward_grid(float* w, const float* scale, int64_t N, int64_t K, const LayerQuant& q, float rate);

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - x_hat)^2) (inf when exact).
double sqnr_db(const float* x, const float* x_hat, int64_t n);

}  // namespace qat
