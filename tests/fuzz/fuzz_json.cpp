// libFuzzer target: the JSON parser (src/io/json.h) on arbitrary bytes (issue 8). Invariants checked:
//  1. parse returns or throws qat::Error: no crash, no stack overflow, no UB (ASan/UBSan);
//  2. what it accepts dumps (compact and pretty) to text that parses back to the same dump.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "src/io/json.h"
#include "src/util/error.h"

using namespace qat;

static void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
  std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Json j;
  try {
    j = Json::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const Error&) {
    return 0;
  }
  std::string compact = j.dump(), pretty = j.dump(2);
  try {
    check(Json::parse(compact).dump() == compact, "compact dump round trip");
    check(Json::parse(pretty).dump() == compact, "pretty dump round trip");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    check(false, "a dump must parse");
  }
  return 0;
}
