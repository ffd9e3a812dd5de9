// The first include of every kernels/avxvnni/*.cpp: intrinsics and the namespace of this ISA:
// qat::avxvnni natively (-mavxvnni), qat::avxvnni_simde for the SIMDe build (-DQAT_SIMDE, no ISA
// flags: the same source, portable, tested on every CPU).
#pragma once
#ifdef QAT_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx2.h>
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <simde/x86/fma.h>

#include "kernels/avxvnni/simde_compat.h"
#define QAT_KERNEL_NS avxvnni_simde
#else
#include <immintrin.h>
#define QAT_KERNEL_NS avxvnni
#endif
#include "kernels/avxvnni/avxvnni.h"
