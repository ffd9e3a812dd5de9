// Declarations of the AVX2 (+FMA, F16C) kernels, namespace qat::QAT_KERNEL_NS (= avx2; dispatch.cpp
// defines the macro before including this). No include guard: dispatch.cpp includes every ISA's header
// once per namespace. Signatures and reduction orders: kernels/kernels.h.
#include <cstdint>

namespace qat::QAT_KERNEL_NS {

// quantize.cpp: the int8 ggml rule of kernels/ref/quant.h (round half away from zero, as roundf)
void quantize_q8_0(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);
void quantize_per_token(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);
void quantize_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q, float* s16);

// qgemm.cpp (qgemm_ymm.h): panels of 8 rows
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

// gemm_f32.cpp: dot_f32's order, 8 lanes = one ymm
void gemv_f32(const float* x, const float* w, int64_t ldw, int64_t N, int64_t K, float* y);
void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy);

// rows.cpp: the row functions of kernels/scalar/rows.cpp, 8 lanes at a time
void exp_f32(const float* x, int64_t n, float* y);
void weighted_rows(const float* p, int64_t ldp, int64_t G, const float* v, int64_t stride, int64_t n, int64_t D,
                   float* out, int64_t ldo);
void softmax(float* s, int64_t n, float scale, float* max, float* sum);
void swiglu(const float* g, const float* u, int64_t n, float* y);
void swiglu_backward(const float* g, const float* u, const float* dy, int64_t n, float* dg, float* du);

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8_exact(int64_t iters);
double peak_int8_i16(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::QAT_KERNEL_NS
