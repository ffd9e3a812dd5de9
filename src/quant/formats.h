// The weight formats: one row per format with everything the other layers need to know about it (the
// quantizer's group and code range, the integer kernel family that runs it, the GGUF tensor type it is
// exported as, its bytes). LayerQuant's rules, fake quant's packing, the served model and GGUF I/O read
// this table instead of each keeping its own switch. Read next: scheme.h (formats per layer).
#pragma once
#include <cstdint>

#include "kernels/qgemm.h"
#include "src/io/gguf.h"

namespace qat {

enum class WQuant : uint8_t { none, q4_0, q8_0, int8_pc, int4_pc };

struct WeightFormat {
  WQuant w;
  const char* name;      // "f32", "q4_0", "q8_0", "int8_pc", "int4_pc"
  int64_t group;         // elements per scale: 32 (blocks), 0 = one per output channel (K), -1: no codes
  int code_min, code_max;
  bool kernel;           // an integer kernel family runs it ...
  WFormat family;        // ... this one (meaningful when kernel)
  bool gguf;             // exported to and read from GGUF ...
  GgmlType ggml;         // ... as this tensor type (per-channel int8: Q8_0 blocks repeating the row's scale)
};

inline constexpr WeightFormat kWeightFormats[] = {
    {WQuant::none, "f32", -1, 0, 0, false, WFormat::q4_0, true, GgmlType::F32},
    {WQuant::q4_0, "q4_0", 32, kQ4Min, kQ4Max, true, WFormat::q4_0, true, GgmlType::Q4_0},
    {WQuant::q8_0, "q8_0", 32, kQ8Min, kQ8Max, true, WFormat::q8_0, true, GgmlType::Q8_0},
    {WQuant::int8_pc, "int8_pc", 0, kQ8Min, kQ8Max, true, WFormat::s8_pc, true, GgmlType::Q8_0},
    {WQuant::int4_pc, "int4_pc", 0, kQ4Min, kQ4Max, false, WFormat::q4_0, false, GgmlType::F32},
};

inline const WeightFormat& weight_format(WQuant w) { return kWeightFormats[int(w)]; }

// Bytes of an (N, K) weight as stored: a GGUF format as ggml sizes its tensor type (blocks with their
// scales; per-channel int8 as Q8_0 blocks, f32 4 bytes an element), int4_pc (not in GGUF) as packed
// nibbles and one f16 scale per row.
inline int64_t stored_bytes(WQuant w, int64_t N, int64_t K) {
  const WeightFormat& f = weight_format(w);
  if (!f.gguf) return N * K / 2 + N * 2;
  const GgmlTypeInfo* t = ggml_type_info(uint32_t(f.ggml));
  return N * K / int64_t(t->block_elems) * int64_t(t->block_bytes);
}

}  // namespace qat
