// Weight repacking: the interleaved panel layouts the integer kernels read (written once per load for
// serving, once per step for QAT). Plain C++ (no intrinsics): every table uses one instance of these
// templates, chosen in dispatch.cpp. The layout, for a panel of NR output rows r (rows past the
// matrix are zeros) and OFF = 0 (codes as int8) or 128 (codes + 128 as uint8, for VNNI's u8 operand):
//
//   q4_0 (per block b = 0..K/32-1):  NR f16 scales d[r][b], then 4 groups v = 0..3 of NR x 4 bytes:
//        byte (v, r, t) = (q[r][32b + 4v + t] + 8) | (q[r][32b + 16 + 4v + t] + 8) << 4
//        so one 32-bit lane of a vector holds 4 consecutive k of one row: lane r of the low nibbles is
//        k = 32b+4v..+3 and of the high nibbles k = 32b+16+4v..+3. NR x 18 bytes per block.
//   q8_0 (per block b):  NR f16 scales, then 8 groups s = 0..7 of NR x 4 bytes:
//        byte (s, r, t) = q[r][32b + 4s + t] + OFF.    NR x 34 bytes per block.
//   s8_pc:  NR f32 scales d[r], then K/4 groups s of NR x 4 bytes: byte (s, r, t) = q[r][4s + t] + OFF.
//   tq (ternary codes in [-1, 1], one scale per 256 k; per block b of 32 k):  NR f16 scales d[r][b / 8]
//        (the 256-block's scale, repeated in its 8 blocks), then 2 groups v = 0..1 of NR x 4 bytes:
//        bits 2l..2l+1 of byte (v, r, t) = q[r][32b + 4v + 8l + t] + 1 (l = 0..3). NR x 10 bytes per block
//        (2.5 bits a weight: the repeated scale buys the q4_0 tile loop unchanged).
//
// With NR = 1 the q4_0 / q8_0 panels are exactly the row's ggml blocks (BlockQ4_0 / BlockQ8_0): the
// scalar kernels read canonical blocks. Read next: kernels/scalar/qgemm.cpp.
#pragma once
#include <cstdint>

namespace qat::pack {

template <int NR> int64_t q4_0_panel_bytes(int64_t K);
template <int NR> int64_t q8_0_panel_bytes(int64_t K);
template <int NR> int64_t s8_panel_bytes(int64_t K);
template <int NR> int64_t tq_panel_bytes(int64_t K);

// q (rows, K) codes, d (rows, K/32) scales (f16 values) or, for s8, d (rows) f32 scales -> panel.
template <int NR> void pack_q4_0(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel);
template <int NR, int OFF> void pack_q8_0(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel);
// tq: d (rows, K/256) f16 values (one scale per 256 k).
template <int NR> void pack_tq(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel);
template <int NR, int OFF> void pack_s8(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel);

}  // namespace qat::pack
