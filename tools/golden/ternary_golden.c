// Writes tests/fixtures/tq_golden.bin: what llama.cpp's own reference code does to 16 blocks of 256
// floats in the ternary formats (quantize_row_tq1_0_ref / quantize_row_tq2_0_ref, dequantize_row_tq*).
// Built and run by tools/golden/make-golden.sh against a llama.cpp build outside this
// repository; only its output is committed. Layout (little-endian) in tests/test_ternary.cpp.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "golden_common.h"
#include "ggml.h"
#include "ggml-quants.h"  // the reference (de)quantizers; includes ggml-common.h's block_tq1_0, block_tq2_0

enum { NB = 16, K = 256 };


// Blocks 0-7: edge cases (7: just below and above a half of an unrounded d); 8-15 pseudo-random in [-3, 3].
static void fill(float* x) {
  golden_seed(20261205u);
  for (int b = 0; b < NB; b++) {
    float* v = x + b * K;
    for (int j = 0; j < K; j++) {
      switch (b) {
        case 0: v[j] = 0.0f; break;                                 // all zeros: d = 0, codes 0
        case 1: v[j] = 0.75f; break;                                // all equal: every code +1
        case 2: v[j] = (j % 2 ? -1.0f : 1.0f) * (1 + j % 3); break;   // alternating signs, ties of |max|
        case 3: v[j] = j == 77 ? -5.0f : uniform(-2.4f, 2.6f); break; // largest magnitude negative
        case 4: v[j] = 1e-7f * (float)(j % 5 - 2); break;           // tiny values
        case 5: v[j] = 6e4f * uniform(-1, 1); break;                // near f16's top (d rounds)
        case 6: v[j] = j == 0 ? 2.0f : (j % 3 - 1) * 1.0f; break;   // exact halves of d: round away from 0
        case 7:  // d = 1.0004 is not an f16 (it rounds to 1): the codes must come from the unrounded d
          v[j] = j == 5 ? 1.0004f : (j % 4 == 1 ? 0.5001f : j % 4 == 3 ? -0.5001f : j % 4 == 0 ? 0.50021f : 0.49999997f);
          break;
        default: v[j] = uniform(-3, 3);
      }
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.bin\n", argv[0]);
    return 2;
  }
  static float x[NB * K], y1[NB * K], y2[NB * K];
  static block_tq1_0 t1[NB];
  static block_tq2_0 t2[NB];
  // ggml_init fills ggml's f16 -> f32 table, which GGML_FP16_TO_FP32 in the dequantizers reads.
  struct ggml_init_params params = {1 << 20, NULL, false};
  ggml_free(ggml_init(params));
  fill(x);
  quantize_row_tq1_0_ref(x, t1, NB * K);
  quantize_row_tq2_0_ref(x, t2, NB * K);
  dequantize_row_tq1_0(t1, y1, NB * K);
  dequantize_row_tq2_0(t2, y2, NB * K);
  const void* const ptrs[5] = {x, t1, t2, y1, y2};
  const size_t bytes[5] = {sizeof x, sizeof t1, sizeof t2, sizeof y1, sizeof y2};
  if (write_fixture(argv[1], 0x51475454u /* "TTGQ" */, NB, K, sizeof(block_tq1_0), sizeof(block_tq2_0), ptrs, bytes, 5) != 0) return 1;
  printf("wrote %s: %d blocks of %d, tq1_0 %zu bytes/block, tq2_0 %zu bytes/block\n", argv[1], NB, K,
         sizeof(block_tq1_0), sizeof(block_tq2_0));
  return 0;
}
