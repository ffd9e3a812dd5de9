// The first include of every kernels/avx2/*.cpp: intrinsics, the namespace of this ISA (qat::avx2),
// its declarations. Nothing else from the project is included into AVX2-compiled code, so no inline
// function compiled with -mavx2 can be picked by the linker for baseline callers.
#pragma once
#include <immintrin.h>

#define QAT_KERNEL_NS avx2
#include "kernels/avx2/avx2.h"
