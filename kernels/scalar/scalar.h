// The scalar kernels: plain loops, no intrinsics. They are the spec every SIMD table is tested against
// bit for bit (tests/test_kernels.cpp), and the table QAT_ISA=scalar runs. Signatures: kernels.h.
// Read next: qgemm.cpp (the reduction orders of kernels.h as loops).
#pragma once
#include <cstdint>

namespace qat::scalar {

// quantize.cpp
void quantize_q8_0(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);
void quantize_per_token(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);

// qgemm.cpp (weights: NR = 1 panels = the rows' canonical blocks)
void gemm_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, int64_t M, float* y, int64_t ldy);
void gemm_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, int64_t M, float* y, int64_t ldy);
void gemm_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t* s, int64_t M, float* y, int64_t ldy);
void gemm_s8_pc_s32(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const int32_t* s,
                    int64_t M, int32_t* y, int64_t ldy);
void gemv_q4_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y);
void gemv_q8_0(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y);
void gemv_s8_pc(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
                const int32_t* s, float* y);

// gemm_f32.cpp
void gemv_f32(const float* x, const float* w, int64_t ldw, int64_t N, int64_t K, float* y);
void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy);

// rows.cpp: the project's exp (exp1: one element) and attention's weighted sum of rows
float exp1(float x);
void exp_f32(const float* x, int64_t n, float* y);
void weighted_rows(const float* p, int64_t ldp, int64_t G, const float* v, int64_t stride, int64_t n, int64_t D,
                   float* out, int64_t ldo);
void softmax(float* s, int64_t n, float scale, float* max, float* sum);
void swiglu(const float* g, const float* u, int64_t n, float* y);
void swiglu_backward(const float* g, const float* u, const float* dy, int64_t n, float* dg, float* du);

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::scalar
