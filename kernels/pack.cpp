// Weight repacking into the panel layouts of pack.h (read that first). One 32-bit word = 4 consecutive
// codes of one row; packing is a transpose of those words, so it runs at memory speed.
#include "kernels/pack.h"

#include <cstring>

#include "src/core/dtype.h"

namespace qat::pack {

namespace {
inline uint32_t word4(const int8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}
inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
}  // namespace

template <int NR> int64_t q4_0_panel_bytes(int64_t K) { return K / 32 * NR * 18; }
template <int NR> int64_t q8_0_panel_bytes(int64_t K) { return K / 32 * NR * 34; }
template <int NR> int64_t s8_panel_bytes(int64_t K) { return NR * 4 + NR * K; }
template <int NR> int64_t tq_panel_bytes(int64_t K) { return K / 32 * NR * 10; }

template <int NR>
void pack_q4_0(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel) {
  const int64_t nb = K / 32;
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* out = panel + b * NR * 18;
    for (int r = 0; r < NR; r++) put_u16(out + 2 * r, r < rows ? f32_to_f16(d[r * nb + b]) : uint16_t(0));
    uint8_t* nib = out + 2 * NR;
    for (int v = 0; v < 4; v++)
      for (int r = 0; r < NR; r++) {
        const int8_t* src = q + r * K + 32 * b + 4 * v;
        for (int t = 0; t < 4; t++)
          nib[(v * NR + r) * 4 + t] = r < rows ? uint8_t((src[t] + 8) | ((src[16 + t] + 8) << 4)) : uint8_t(0x88);
      }
  }
}

template <int NR, int OFF>
void pack_q8_0(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel) {
  const int64_t nb = K / 32;
  const uint32_t flip = OFF == 128 ? 0x80808080u : 0u;  // int8 c + 128 as uint8 is c ^ 0x80
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* out = panel + b * NR * 34;
    for (int r = 0; r < NR; r++) put_u16(out + 2 * r, r < rows ? f32_to_f16(d[r * nb + b]) : uint16_t(0));
    uint8_t* codes = out + 2 * NR;
    for (int s = 0; s < 8; s++)
      for (int r = 0; r < NR; r++)
        put_u32(codes + (s * NR + r) * 4, (r < rows ? word4(q + r * K + 32 * b + 4 * s) : 0u) ^ flip);
  }
}

template <int NR>
void pack_tq(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel) {
  const int64_t nb = K / 32, per_row = K / 256;
  for (int64_t b = 0; b < nb; b++) {
    uint8_t* out = panel + b * NR * 10;
    for (int r = 0; r < NR; r++) put_u16(out + 2 * r, r < rows ? f32_to_f16(d[r * per_row + b / 8]) : uint16_t(0));
    uint8_t* fields = out + 2 * NR;
    for (int v = 0; v < 2; v++)
      for (int r = 0; r < NR; r++)
        for (int t = 0; t < 4; t++) {
          unsigned byte = 0x55;  // padding rows: code 0 (field 1) everywhere
          if (r < rows) {
            const int8_t* src = q + r * K + 32 * b + 4 * v + t;
            byte = 0;
            for (int l = 0; l < 4; l++) byte |= unsigned(src[8 * l] + 1) << (2 * l);
          }
          fields[(v * NR + r) * 4 + t] = uint8_t(byte);
        }
  }
}

template <int NR, int OFF>
void pack_s8(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel) {
  const uint32_t flip = OFF == 128 ? 0x80808080u : 0u;
  for (int r = 0; r < NR; r++) {
    float dr = r < rows ? d[r] : 0.0f;
    std::memcpy(panel + 4 * r, &dr, 4);
  }
  uint8_t* codes = panel + 4 * NR;
  for (int64_t s = 0; s < K / 4; s++)
    for (int r = 0; r < NR; r++)
      put_u32(codes + (s * NR + r) * 4, (r < rows ? word4(q + r * K + 4 * s) : 0u) ^ flip);
}

// The instances the tables use: NR = 1 (scalar), 8 (ymm), 16 (zmm); OFF = 128 for the VNNI kernels.
#define QAT_PACK_INSTANCES(NR)                                                                        \
  template int64_t q4_0_panel_bytes<NR>(int64_t);                                                     \
  template int64_t q8_0_panel_bytes<NR>(int64_t);                                                     \
  template int64_t s8_panel_bytes<NR>(int64_t);                                                       \
  template int64_t tq_panel_bytes<NR>(int64_t);                                                       \
  template void pack_tq<NR>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);                 \
  template void pack_q4_0<NR>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);               \
  template void pack_q8_0<NR, 0>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);            \
  template void pack_q8_0<NR, 128>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);          \
  template void pack_s8<NR, 0>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);              \
  template void pack_s8<NR, 128>(const int8_t*, const float*, int64_t, int64_t, uint8_t*);
QAT_PACK_INSTANCES(1)
QAT_PACK_INSTANCES(8)
QAT_PACK_INSTANCES(16)
#undef QAT_PACK_INSTANCES

}  // namespace qat::pack
