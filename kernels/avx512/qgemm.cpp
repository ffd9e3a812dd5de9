// AVX-512BW integer GEMMs: the tiles of kernels/qgemm_tiles.h on the zmm layer of qgemm_zmm.h, with the
// vpmaddubsw + vpmaddwd steps.
#include "kernels/avx512/intrin.h"

#define QAT_ZMM_VNNI 0
#include "kernels/avx512/qgemm_zmm.h"
