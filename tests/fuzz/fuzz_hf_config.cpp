// libFuzzer target: a Hugging Face directory's JSON files (models/hf_import.h), on arbitrary bytes. The
// first byte chooses the parser: even -> config.json (hf_config_from_json), odd -> the shard index
// (parse_hf_index); the rest is the file. Invariants:
//  1. the parser returns or throws qat::Error with a one-line message: no crash, no UB, no leak;
//  2. an accepted config validates, with positive sizes and a parameter count that does not overflow;
//  3. every shard file an accepted index names is a plain name ending in .safetensors (no '/', no
//     leading '.'), so an import can never read outside the model's directory.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <string>

#include "models/hf_import.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) {
      for (const auto& [name, file] : parse_hf_index(text, "model.safetensors.index.json")) {
        FUZZ_CHECK(file.find('/') == std::string::npos && !file.empty() && file[0] != '.', "a plain file name");
        FUZZ_CHECK(file.size() >= 12 && file.compare(file.size() - 12, 12, ".safetensors") == 0, "a .safetensors file");
      }
    } else {
      ModelConfig c = hf_config_from_json(Json::parse(text), "config.json");
      c.validate();
      FUZZ_CHECK(c.head_dim() >= 2 && c.n_params() > 0, "sizes");
    }
  } catch (const Error& e) {
    FUZZ_CHECK(std::string(e.what()).find('\n') == std::string::npos, "one-line message");
  }
  return 0;
}
