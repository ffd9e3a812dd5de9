// Row functions shared by the training ops and the serving path (models/ KV-cache decode): the same
// code computes a row in both, which is what makes train and serve bit-identical (DESIGN.md,
// invariant 2). Each works on one row of C (or D) floats; callers loop over rows.
#pragma once
#include <cstdint>

#include "kernels/ref/order.h"  // dot_f32, sum_f32: the one f32 reduction order

namespace qat {

// y (n) = e^x (n) by the project's exp (kernels/scalar/rows.cpp: at most 2 ulp, the same bits in every
// ISA); y may be x. Used by everything that exponentiates: attention, SwiGLU, softmax, cross-entropy.
void exp_f32(const float* x, int64_t n, float* y);

// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps); returns rstd. x, y, w (C).
float rmsnorm_row(const float* x, const float* w, float eps, int64_t C, float* y);

// RoPE on adjacent pairs. rope_angles fills cs (D) with (cos, sin) of pair i's angle
// pos * base^(-2i/D) at cs[2i], cs[2i+1] (computed in double, rounded to f32); rope_row rotates one head
// x (D) in place with them: (x0, x1) -> (x0 c - x1 s, x0 s + x1 c).
void rope_angles(int64_t pos, int64_t D, float base, float* cs);
void rope_row(float* x, const float* cs, int64_t D);

// G causal attention query rows that share one key/value head (GQA): for g < G,
// out_g (D) = softmax(scale * q_g . K_j, j < n_keys) V, q_g at q + g * q_stride, out_g at
// out + g * out_stride; K row j at k + j*kv_stride, V likewise. scores: scratch of G * n_keys floats.
// lse (G): the log-sum-exp of each row's scaled scores (saved by training for the backward); may be
// null. Each row's bits do not depend on G (one row alone gives the same output).
void attention_rows(const float* q, int64_t q_stride, int64_t G, const float* k, const float* v, int64_t kv_stride,
                    int64_t n_keys, int64_t D, float scale, float* scores, float* out, int64_t out_stride, float* lse);

// One query row of H heads against a position-major cache (batched decode): position j's Hkv = H / group
// heads of D floats at k + j * stride (V likewise), query head h attending over kv head h / group, n keys.
// out (H, D) and q (H, D) contiguous; scores: scratch of H * n floats. Each head's output is
// attention_rows's for that head, bit for bit (the kernel table's head_scores / head_weighted compute the
// per-head GEMM and P V with the positions read once, in order, for all heads).
void attention_heads(const float* q, int64_t H, int64_t group, const float* k, const float* v, int64_t stride,
                     int64_t n, int64_t D, float scale, float* scores, float* out);

// silu(g) * u elementwise over n, silu(g) = g / (1 + exp_f32(-g)); y may be g.
void swiglu_row(const float* g, const float* u, int64_t n, float* y);

}  // namespace qat
