// The first include of every kernels/avx512/*.cpp: intrinsics and the namespace of this ISA:
// qat::avx512 natively (-mavx512f -mavx512bw ...), qat::avx512_simde for the SIMDe build
// (-DQAT_SIMDE, no ISA flags: the same source, portable, tested on every CPU).
#pragma once
#ifdef QAT_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>

#include "kernels/avx512/simde_compat.h"
#define QAT_KERNEL_NS avx512_simde
#else
#include <immintrin.h>
// GCC 12's _mm512_undefined_ps() (`__m512 __Y = __Y;`, used by _mm512_cvtph_ps / _mm512_cvtepi32_ps)
// trips -Wmaybe-uninitialized when inlined (GCC bug 105593, fixed in GCC 13): a false positive.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define QAT_KERNEL_NS avx512
#endif
#include "kernels/avx512/avx512.h"
