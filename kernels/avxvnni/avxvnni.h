// Declarations of the AVX-VNNI kernels (VEX vpdpbusd on ymm: Alder Lake+, Zen 5), namespace
// qat::QAT_KERNEL_NS = avxvnni, or avxvnni_simde for the SIMDe build. No include guard (dispatch.cpp
// includes it once per namespace). Quantization and f32 come from the AVX2 table (dispatch.cpp).
#include <cstdint>

namespace qat::QAT_KERNEL_NS {

#include "kernels/qgemm_entries.inc"

// peak.cpp (bin/bench peak)
double peak_int8_exact(int64_t iters);

}  // namespace qat::QAT_KERNEL_NS
