// libFuzzer target: the safetensors loader on arbitrary bytes (issue 8). Invariants checked:
//  1. it returns or throws qat::Error: no crash, no out-of-bounds read, no UB, no leak (ASan/UBSan);
//  2. a file it accepts re-serializes, and the result loads back with the same tensors bit for bit,
//     in the same order, and the same metadata (plus "format": "pt").
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "src/io/safetensors.h"

using namespace qat;

static void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
  std::abort();
}

static bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.nbytes() == 0) return true;
  return std::memcmp(a.impl->storage->data, b.impl->storage->data, a.nbytes()) == 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  SafeTensors st;
  try {
    st = parse_safetensors(in, "fuzz.safetensors");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& [name, t] : st.tensors) (void)find_nonfinite(t);
  try {
    check_finite(st);
  } catch (const Error&) {
  }

  std::string again;
  try {
    again = serialize_safetensors(st.tensors, st.metadata);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    check(false, "an accepted file must re-serialize");
  }
  SafeTensors st2;
  try {
    st2 = parse_safetensors(again, "again.safetensors");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    check(false, "a re-serialized file must load");
  }
  check(st2.tensors.size() == st.tensors.size(), "tensor count");
  for (size_t i = 0; i < st.tensors.size(); i++) {
    check(st2.tensors[i].first == st.tensors[i].first, "tensor order");
    check(same_bytes(st2.tensors[i].second, st.tensors[i].second), "tensor bytes");
  }
  auto meta = st.metadata;
  meta.emplace("format", "pt");
  check(st2.metadata == meta, "metadata");
  return 0;
}
