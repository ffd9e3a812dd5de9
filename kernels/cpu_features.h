// What this CPU can run, read once from cpuid + xgetbv (the OS must save ymm / zmm state for the AVX /
// AVX-512 bits to count), plus the facts the benchmarks print: brand string and cache sizes.
// Read next: dispatch.cpp (which table these features select).
#pragma once
#include <cstdint>
#include <string>

namespace qat {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;                       // with OS ymm support
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;  // with OS zmm support
  bool avx512vnni = false, avxvnni = false;
  std::string brand;                                                  // "AMD EPYC 7B13", ...
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;                  // per core / per shared L3 (0: unknown)
  std::string flags() const;                                          // "avx2 fma f16c avx512f ..."
};

const CpuFeatures& cpu_features();  // detected on first call

}  // namespace qat
