// AVX-VNNI integer GEMMs: the tiles of kernels/qgemm_tiles.h on the ymm layer of avx2/qgemm_ymm.h, with
// the vpdpbusd step (this ISA is AVX2 + VNNI on ymm, so it shares AVX2's kernel source; every symbol
// lands in qat::avxvnni or qat::avxvnni_simde and is compiled with this directory's flags only).
#include "kernels/avxvnni/intrin.h"

#define QAT_YMM_VNNI 1
#include "kernels/avx2/qgemm_ymm.h"
