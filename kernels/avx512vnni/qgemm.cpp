// AVX-512 VNNI integer GEMMs: the tiles of kernels/qgemm_tiles.h on the zmm layer of avx512/qgemm_zmm.h,
// with the vpdpbusd step (this ISA is AVX-512BW + VNNI, so it shares that source; every symbol lands in
// qat::avx512vnni or qat::avx512vnni_simde and is compiled with this directory's flags only).
#include "kernels/avx512vnni/intrin.h"

#define QAT_ZMM_VNNI 1
#include "kernels/avx512/qgemm_zmm.h"
