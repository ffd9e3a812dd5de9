// Declarations of the AVX2 (+FMA, F16C) kernels, namespace qat::QAT_KERNEL_NS (= avx2; dispatch.cpp
// defines the macro before including this). No include guard: dispatch.cpp includes every ISA's header
// once per namespace. Signatures and reduction orders: kernels/kernels.h.
#include <cstdint>

namespace qat::QAT_KERNEL_NS {

// quantize.cpp: the int8 ggml rule of kernels/ref/quant.h (round half away from zero, as roundf), and
// the learned rule for QAT weights; gemm_f32.cpp: dot_f32's order, 8 lanes = one ymm; rows.cpp: the row
// functions of kernels/scalar/rows.cpp, 8 lanes at a time
#include "kernels/f32_entries.inc"
void quantize_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q, float* s16);

// qgemm.cpp (the tiles of kernels/qgemm_tiles.h on the ymm layer of qgemm_ymm.h): panels of 8 rows
#include "kernels/qgemm_entries.inc"

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8_exact(int64_t iters);
double peak_int8_i16(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::QAT_KERNEL_NS
