// Declarations of the AVX-512BW kernels (vpmaddubsw + vpmaddwd on zmm, 16 rows per panel), namespace
// qat::QAT_KERNEL_NS = avx512, or avx512_simde for the SIMDe build. No include guard (dispatch.cpp
// includes it once per namespace). Quantization and f32 come from the AVX2 table (dispatch.cpp).
#include <cstdint>

namespace qat::QAT_KERNEL_NS {

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

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8_exact(int64_t iters);
double peak_int8_i16(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::QAT_KERNEL_NS
