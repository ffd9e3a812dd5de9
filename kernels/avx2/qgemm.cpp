// AVX2 integer GEMMs: the tiles of kernels/qgemm_tiles.h on the ymm layer of qgemm_ymm.h, with the
// vpmaddubsw + vpmaddwd steps.
#include "kernels/avx2/intrin.h"

#define QAT_YMM_VNNI 0
#include "kernels/avx2/qgemm_ymm.h"
