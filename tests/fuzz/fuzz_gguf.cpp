// libFuzzer target: the GGUF loader on arbitrary bytes (issue 8). Invariants checked:
//  1. it returns or throws qat::Error: no crash, no out-of-bounds read, no UB, no leak (ASan/UBSan);
//     every tensor's data range of an accepted file is read in full, so ASan sees any bad offset;
//  2. every typed getter either returns or throws qat::Error;
//  3. an accepted file (with an alignment our writer allows) rebuilt by GgufWriter loads back with the
//     same key-value pairs and tensors.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "src/io/gguf.h"

using namespace qat;

static void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
  std::abort();
}

template <class F>
static void may_throw(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GgufFile g;
  try {
    g = parse_gguf(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  volatile uint64_t sum = 0;
  for (const GgufTensorInfo& t : g.tensors) {
    for (uint64_t i = 0; i < t.nbytes; i++) sum = sum + t.data[i];
    check(t.data >= g.bytes->data() && t.data + t.nbytes <= g.bytes->data() + g.bytes->size(), "tensor in file");
    may_throw([&] {
      Tensor v = g.tensor_view(t.name);
      check(int64_t(v.nbytes()) == int64_t(t.nbytes), "view size");
    });
  }
  for (const GgufKv& kv : g.kv) {
    const std::string& k = kv.key;
    may_throw([&] { (void)g.get_u8(k); });
    may_throw([&] { (void)g.get_i16(k); });
    may_throw([&] { (void)g.get_u32(k); });
    may_throw([&] { (void)g.get_i64(k); });
    may_throw([&] { (void)g.get_f32(k); });
    may_throw([&] { (void)g.get_f64(k); });
    may_throw([&] { (void)g.get_bool(k); });
    may_throw([&] { (void)g.get_string(k); });
    may_throw([&] { (void)g.get_arr_string(k); });
    may_throw([&] { (void)g.get_arr_i32(k); });
    may_throw([&] { (void)g.get_arr_f32(k); });
    may_throw([&] { (void)g.get_arr_bool(k); });
  }

  if (g.alignment % 8) return 0;  // the writer follows the spec (a multiple of 8); llama.cpp reads 1, 2, 4
  GgufWriter w;
  std::string again;
  try {
    for (const GgufKv& kv : g.kv) w.set_value(kv.key, kv.value);
    for (const GgufTensorInfo& t : g.tensors)
      w.add_tensor(t.name, t.type, t.ne, std::string(reinterpret_cast<const char*>(t.data), t.nbytes));
    again = w.serialize();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    check(false, "an accepted file must be writable");
  }
  GgufFile g2;
  try {
    g2 = parse_gguf(again, "again.gguf");
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    check(false, "a rewritten file must load");
  }
  check(g2.alignment == g.alignment && g2.kv.size() == g.kv.size() && g2.tensors.size() == g.tensors.size(), "counts");
  for (size_t i = 0; i < g.kv.size(); i++) {
    const GgufValue &a = g.kv[i].value, &b = g2.kv[i].value;
    check(g.kv[i].key == g2.kv[i].key && a.type == b.type && a.elem_type == b.elem_type && a.count == b.count &&
              a.raw == b.raw && a.strings == b.strings,
          "key-value pair");
  }
  for (size_t i = 0; i < g.tensors.size(); i++) {
    const GgufTensorInfo &a = g.tensors[i], &b = g2.tensors[i];
    check(a.name == b.name && a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes && a.offset == b.offset &&
              std::memcmp(a.data, b.data, a.nbytes) == 0,
          "tensor");
  }
  return 0;
}
