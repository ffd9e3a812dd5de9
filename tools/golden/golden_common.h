// Shared by the fixture generators (ternary_golden.c, kquant_golden.c): a fixed pseudo-random stream,
// the same on every machine, and the fixture file writer. Layout: u32 magic, version 1, NB, K, the
// byte sizes of the two block types; then the given arrays in order (tests/golden_blocks.h reads it).
#include <stdint.h>
#include <stdio.h>

static uint32_t golden_lcg;
static void golden_seed(uint32_t s) { golden_lcg = s; }
static float uniform(float lo, float hi) {
  golden_lcg = golden_lcg * 1664525u + 1013904223u;
  return lo + (hi - lo) * (float)(golden_lcg >> 8) / 16777216.0f;
}

// Writes the header and n arrays (ptrs[i], bytes[i]); 0 on success, else 1 with a message.
static int write_fixture(const char* path, uint32_t magic, uint32_t nb, uint32_t k, size_t size_a, size_t size_b,
                         const void* const* ptrs, const size_t* bytes, int n) {
  FILE* f = fopen(path, "wb");
  if (!f) {
    perror(path);
    return 1;
  }
  const uint32_t header[6] = {magic, 1, nb, k, (uint32_t)size_a, (uint32_t)size_b};
  int ok = fwrite(header, sizeof header, 1, f) == 1;
  for (int i = 0; i < n && ok; i++) ok = fwrite(ptrs[i], bytes[i], 1, f) == 1;
  if (fclose(f) != 0 || !ok) {
    fprintf(stderr, "%s: write failed\n", path);
    return 1;
  }
  return 0;
}
