// libFuzzer target: config.json (ModelConfig::from_json) on arbitrary bytes (issue 8). Invariants:
//  1. parse + from_json return or throw qat::Error with a one-line message: no crash, no UB (e.g. a
//     float conversion out of range, an overflowing size), no leak;
//  2. an accepted config validates, its sizes are positive and its parameter count does not overflow;
//  3. an accepted config written by to_json loads back to the same config.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <optional>
#include <string>

#include "models/config.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

static bool same(const ModelConfig& a, const ModelConfig& b) {
  return a.vocab == b.vocab && a.context == b.context && a.n_layers == b.n_layers && a.d_model == b.d_model &&
         a.n_heads == b.n_heads && a.n_kv_heads == b.n_kv_heads && a.ffn == b.ffn && a.rms_eps == b.rms_eps &&
         a.rope_base == b.rope_base && a.tied == b.tied && a.preset == b.preset;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<ModelConfig> c;
  try {
    c = ModelConfig::from_json(Json::parse(std::string_view(reinterpret_cast<const char*>(data), size)));
  } catch (const Error& e) {
    FUZZ_CHECK(std::string(e.what()).find('\n') == std::string::npos, "one-line message");
    return 0;
  }
  c->validate();
  FUZZ_CHECK(c->head_dim() >= 2 && c->n_params() > 0, "sizes");
  std::optional<ModelConfig> again;
  try {
    again = ModelConfig::from_json(Json::parse(c->to_json().dump(2)));
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    FUZZ_CHECK(false, "an accepted config, written back, must load");
  }
  FUZZ_CHECK(same(*c, *again), "config.json round trip");
  return 0;
}
