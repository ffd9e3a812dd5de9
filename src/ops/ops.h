// Every op of qat, one line each (MLX style). Each family lives in one file with its forward and
// backward side by side; the backward ADDS into its inputs' gradient buffers (autograd.h).
// Shapes use the dimension letters of docs: B batch, T time, C channels, H heads, D head dim,
// V vocab, M/N/K for matrix products. All ops compute in f32 and record a node when an input
// requires grad. Read next: elementwise.cpp (the simplest family), then matmul.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "src/core/autograd.h"
#include "src/core/tensor.h"

namespace qat {

// ---- matmul.cpp ----
Tensor matmul(const Tensor& a, const Tensor& b);  // a (..., M, K) x b (..., K, N) or (K, N) -> (..., M, N)
Tensor linear(const Tensor& x, const Tensor& w);  // x (..., K), w (N, K) -> (..., N) = x w^T, no bias

// ---- elementwise.cpp (numpy broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float s);  // a * s
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Sums g over the broadcast dimensions so that it has `shape` (the backward of broadcasting).
Tensor reduce_to_shape(const Tensor& g, const Shape& shape);

// ---- reduce.cpp ----
Tensor sum(const Tensor& a);                                        // all elements -> shape ()
Tensor sum(const Tensor& a, std::vector<int> dims, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, std::vector<int> dims, bool keepdim = false);

// ---- shape.cpp (views share storage; Tensor::reshape/transpose/permute/slice are these) ----
Tensor reshape(const Tensor& a, const Shape& shape);  // one dim may be -1
Tensor transpose(const Tensor& a, int d0, int d1);
Tensor permute(const Tensor& a, const std::vector<int>& order);
Tensor slice(const Tensor& a, int dim, int64_t start, int64_t end);  // [start, end) along dim
Tensor contiguous(const Tensor& a);
Tensor concat(const std::vector<Tensor>& parts, int dim);

// ---- embedding.cpp ----
Tensor embedding(const Tensor& table, const Tensor& ids);  // table (V, C), ids s32 (...) -> (..., C)

// ---- norm.cpp ----
Tensor rmsnorm(const Tensor& x, const Tensor& w, float eps);  // x (..., C), w (C)
Tensor layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps);  // x (..., C), w, b (C)

// ---- softmax.cpp (over the last dimension) ----
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
// Mean over rows of -log softmax(logits)[target]; logits (N, V), targets s32 (N); target -1 is ignored.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);
// Knowledge distillation: mean over the rows whose target is not -1 of KL(softmax(teacher) ||
// softmax(logits)); logits and teacher (N, V), the teacher a constant (no gradient flows to it).
Tensor distill_kl(const Tensor& logits, const Tensor& teacher, const Tensor& targets);

// ---- activation.cpp ----
Tensor silu(const Tensor& x);                         // x * sigmoid(x)
Tensor gelu(const Tensor& x);                         // tanh approximation
Tensor swiglu(const Tensor& gate, const Tensor& up);  // silu(gate) * up, fused

// ---- rope.cpp ----
// Rotates adjacent pairs (2i, 2i+1) of each head by angle pos * base^(-2i/D), pos = pos0 + t.
Tensor rope(const Tensor& x, int64_t pos0, float base);  // x (B, T, H, D)

// ---- attention.cpp ----
// Causal scaled-dot-product attention, each query row independent and in a fixed order.
// q (B, T, H, D), k and v (B, T, Hkv, D) with H % Hkv == 0 (grouped-query) -> (B, T, H, D).
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v);

// ---- dropout.cpp ----
// Zeroes each element with probability p (scaling the rest by 1/(1-p)); the mask is a pure function
// of (seed, step, element index), so it does not depend on threads and backward recomputes it.
Tensor dropout(const Tensor& x, float p, uint64_t seed, uint64_t step);

// Operators for readable model code.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, float s) { return scale(a, s); }

}  // namespace qat
