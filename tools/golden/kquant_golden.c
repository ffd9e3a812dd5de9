// Writes tests/fixtures/kq_golden.bin: what llama.cpp's own reference code does to 16 blocks of 256
// floats in the K-quant formats (quantize_row_q4_K_ref / quantize_row_q6_K_ref, which llama-quantize
// calls when no importance matrix is given, and dequantize_row_q4_K / q6_K). Built and run by
// tools/golden/make-golden.sh against a llama.cpp build outside this repository; only its output
// is committed. Layout (little-endian) in tests/test_kquants.cpp.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "golden_common.h"
#include "ggml.h"
#include "ggml-quants.h"  // the reference (de)quantizers; ggml-common.h's block_q4_K, block_q6_K

enum { NB = 16, K = 256 };


// Blocks 0-8: edge cases; 9-15 pseudo-random (weights of a trained model look like 12-15: near-normal
// with a few outliers).
static void fill(float* x) {
  golden_seed(20261206u);
  for (int b = 0; b < NB; b++) {
    float* v = x + b * K;
    for (int j = 0; j < K; j++) {
      switch (b) {
        case 0: v[j] = 0.0f; break;                                   // all zeros
        case 1: v[j] = 0.75f; break;                                  // all equal, positive (min > 0 -> 0)
        case 2: v[j] = -1.25f; break;                                 // all equal, negative
        case 3: v[j] = (j % 2 ? -1.0f : 1.0f) * (float)(1 + j % 3); break;  // ties of |max|, both signs
        case 4: v[j] = 1e-17f * (float)(j % 5 - 2); break;            // below GROUP_MAX_EPS
        case 5: v[j] = 3e4f * uniform(-1, 1); break;                  // large: d near f16's top
        case 6: v[j] = j / 32 == 3 ? 0.0f : uniform(0.5f, 1.5f); break;  // positive, one zero sub-block
        case 7: v[j] = j == 100 ? 40.0f : uniform(-0.05f, 0.05f); break;  // one outlier: tiny sub-scales
        case 8: v[j] = 1e-5f * uniform(-1, 1); break;                 // small: d in f16's subnormals
        case 9: case 10: case 11: v[j] = uniform(-3, 3); break;
        default: {  // a sum of uniforms (near-normal), one outlier in 64
          float s = uniform(-1, 1) + uniform(-1, 1) + uniform(-1, 1);
          v[j] = (j % 64 == 17 ? 6.0f : 0.02f) * s;
        }
      }
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.bin\n", argv[0]);
    return 2;
  }
  static float x[NB * K], y4[NB * K], y6[NB * K];
  static block_q4_K q4[NB];
  static block_q6_K q6[NB];
  // ggml_init fills ggml's f16 -> f32 table, which GGML_FP16_TO_FP32 in the (de)quantizers reads.
  struct ggml_init_params params = {1 << 20, NULL, false};
  ggml_free(ggml_init(params));
  fill(x);
  quantize_row_q4_K_ref(x, q4, NB * K);
  quantize_row_q6_K_ref(x, q6, NB * K);
  dequantize_row_q4_K(q4, y4, NB * K);
  dequantize_row_q6_K(q6, y6, NB * K);
  const void* const ptrs[5] = {x, q4, q6, y4, y6};
  const size_t bytes[5] = {sizeof x, sizeof q4, sizeof q6, sizeof y4, sizeof y6};
  if (write_fixture(argv[1], 0x5147514bu /* "KQGQ" */, NB, K, sizeof(block_q4_K), sizeof(block_q6_K), ptrs, bytes, 5) != 0) return 1;
  printf("wrote %s: %d blocks of %d, q4_K %zu bytes/block, q6_K %zu bytes/block\n", argv[1], NB, K,
         sizeof(block_q4_K), sizeof(block_q6_K));
  return 0;
}
