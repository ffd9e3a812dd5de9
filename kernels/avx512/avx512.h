// Declarations of the AVX-512BW kernels (vpmaddubsw + vpmaddwd on zmm, 16 rows per panel), namespace
// qat::QAT_KERNEL_NS = avx512, or avx512_simde for the SIMDe build. No include guard (dispatch.cpp
// includes it once per namespace). Quantization and f32 come from the AVX2 table (dispatch.cpp).
#include <cstdint>

namespace qat::QAT_KERNEL_NS {

#include "kernels/qgemm_entries.inc"

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8_exact(int64_t iters);
double peak_int8_i16(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::QAT_KERNEL_NS
