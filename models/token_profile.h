// Where a decoded token's time goes: the profiler's rows of a decode (models/decode.cpp's scopes, one
// token per forward) grouped into the parts a reader of a serving profile asks about (the GEMVs of the
// weights, attention with RoPE, the norms, the other elementwise rows, embedding and logits, sampling),
// each as ms per token and share of the measured token time, plus the unattributed rest, so the shares
// add up to 100%; and the weights' GB/s (bytes streamed per token / token time, and / GEMV time) against
// the measured DRAM read bandwidth. bin/generate --profile prints it under the decode's per-op table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/util/profile.h"

namespace qat {

struct TokenPart {
  std::string name;     // "GEMV (weights)", "attention + rope", ..., "unattributed"
  double ms = 0;        // per token
  double share = 0;     // of the measured token time, 0..1
};

struct TokenBreakdown {
  std::vector<TokenPart> parts;          // every part of kTokenParts, then "unattributed"
  double token_ms = 0;                   // measured wall time per token
  double weight_gbs = 0, gemv_gbs = 0;   // weight bytes per token / token time, / GEMV time
  double roof_share = 0;                 // weight_gbs / dram_gbs (0 when the bandwidth is unknown)
  std::string text() const;              // the printed table and the GB/s line
};

// rows: the profiler's rows over `tokens` decoded tokens taking `wall` seconds; weight_bytes: what one
// token streams (DecodeModel::weight_bytes); dram_gbs: the measured read bandwidth (0: unknown). A row
// no part claims is counted in "other" (so a new scope is never lost from the sum).
TokenBreakdown token_breakdown(const std::vector<prof::Row>& rows, int64_t tokens, double wall, int64_t weight_bytes,
                               double dram_gbs);

}  // namespace qat
