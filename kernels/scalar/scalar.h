// The scalar kernels: plain loops, no intrinsics. They are the spec every SIMD table is tested against
// bit for bit (tests/test_kernels.cpp), and the table QAT_ISA=scalar runs. Signatures: kernels.h.
// Read next: qgemm.cpp (the reduction orders of kernels.h as loops).
#pragma once
#include <cstdint>

namespace qat::scalar {

// quantize.cpp, gemm_f32.cpp (dot_f32's order), rows.cpp (the project's exp and attention's rows)
#include "kernels/f32_entries.inc"
float exp1(float x);  // rows.cpp: the project's exp of one element

// qgemm.cpp (weights: NR = 1 panels = the rows' canonical blocks)
#include "kernels/qgemm_entries.inc"

// peak.cpp (bin/bench peak)
double peak_f32_fma(int64_t iters);
double peak_int8(int64_t iters);
uint64_t peak_read(const uint8_t* p, int64_t bytes);

}  // namespace qat::scalar
