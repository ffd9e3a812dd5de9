// The format tables every layer reads (src/quant/formats.h, src/quant/scheme.h): each scheme name
// parses to its row and prints back, the GGUF reader maps every tensor type we write back to the scheme
// that wrote it, and the bytes we count are the bytes ggml counts. The table's own shape (indexed by
// WQuant, code ranges) is checked in test_quant.cpp.
#include <catch2/catch.hpp>

#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "models/quantized.h"
#include "src/io/gguf.h"
#include "src/quant/formats.h"
#include "src/quant/scheme.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;

namespace {
// The names in a generated list "a, b or c".
std::set<std::string> listed(SchemeSet set) {
  std::string l = scheme_names(set);
  for (const std::string sep : {", ", " or "})
    for (size_t p; (p = l.find(sep)) != std::string::npos;) l.replace(p, sep.size(), ",");
  const std::vector<std::string> v = split(l, ',');
  return {v.begin(), v.end()};
}
}  // namespace

TEST_CASE("every scheme round-trips name -> formats -> name, and the lists name each one", "[formats]") {
  std::set<std::string> names;
  for (const SchemeInfo& s : kSchemes) {
    INFO(s.name);
    CHECK(names.insert(s.name).second);  // one row per name
    CHECK(find_scheme(s.name) == &s);
    const LayerQuant q = scheme_layer(s.name);
    CHECK((q.w == s.w && q.a == s.a));
    CHECK((q.name() == s.name || s.mixture));  // a mixture's layers are named by their own formats
    CHECK(q.served() == s.served);
    CHECK(listed(SchemeSet::all).count(s.name) == 1);
    CHECK(listed(SchemeSet::exported).count(s.name) == size_t(s.exported()));
    CHECK(listed(SchemeSet::quantized).count(s.name) == size_t(q.quantized()));
    // A served scheme runs on an integer kernel, so its weights have a kernel family and a GGUF type.
    if (s.served) CHECK((weight_format(s.w).kernel && weight_format(s.w).gguf));
    CHECK((s.llama_ftype != 0) == (s.exported() && s.w != WQuant::none));
  }
  CHECK(listed(SchemeSet::all).size() == std::size(kSchemes));
  CHECK(scheme_names(SchemeSet::exported) == "q4_0, q8_0, w8a8, tq2_0, tq1_0, q4_k, q4_k_m, q6_k or f32");
  CHECK(scheme_names(SchemeSet::trainable) == "q4_0, q8_0, w8a8, tq2_0, tq1_0, w8a8s, w4 or w8");
  CHECK(find_scheme("q4") == nullptr);
  try {
    scheme_layer("q4");
    FAIL("an unknown scheme was accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()) == "unknown quantization scheme 'q4' (expected " + scheme_names(SchemeSet::all) + ")");
  }
}

TEST_CASE("GGUF: every exported scheme is read back from its tensor type as itself", "[formats]") {
  for (const SchemeInfo& s : kSchemes) {
    INFO(s.name);
    const GgmlType t = weight_format(s.w).ggml;
    if (s.exported()) {
      REQUIRE(weight_format(s.w).gguf);
      CHECK(scheme_read_from_gguf(t, s.name) == &s);  // WQuant -> GgmlType -> the same scheme
    }
    // Without a hint (a file llama.cpp wrote) or with a scheme not served: an exported one of that type.
    for (const char* hint : {"", s.name}) {
      if (!weight_format(s.w).gguf) continue;
      const SchemeInfo* r = scheme_read_from_gguf(t, hint);
      REQUIRE(r != nullptr);  // every type we write is read back
      CHECK((r->exported() && weight_format(r->w).ggml == t));
    }
  }
  CHECK(std::string(scheme_read_from_gguf(GgmlType::Q8_0, "")->name) == "q8_0");
  CHECK(std::string(scheme_read_from_gguf(GgmlType::Q8_0, "w8")->name) == "q8_0");
  CHECK(std::string(scheme_read_from_gguf(GgmlType::Q4_0, "w8a8")->name) == "q4_0");
  CHECK(std::string(scheme_read_from_gguf(GgmlType::Q4_K, "")->name) == "q4_k");  // a llama.cpp Q4_K_M file's bulk
  CHECK(std::string(scheme_read_from_gguf(GgmlType::Q6_K, "q4_k_m")->name) == "q6_k");
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16, GgmlType::Q4_1, GgmlType::Q5_K, GgmlType::I8})
    CHECK(scheme_read_from_gguf(t, "q8_0") == nullptr);  // refused with the list of served types
}

TEST_CASE("the bytes of every weight format agree with ggml and with their block layouts", "[formats]") {
  const int64_t N = 6, K = 96;
  for (const WeightFormat& f : kWeightFormats) {
    INFO(f.name);
    if (f.gguf) {
      const GgmlTypeInfo* g = ggml_type_info(uint32_t(f.ggml));
      REQUIRE(g != nullptr);
      const int64_t Kf = f.group == QKK ? 3 * QKK : K;  // ternary rows are whole 256-blocks
      CHECK(stored_bytes(f.w, N, Kf) == int64_t(ggml_nbytes(f.ggml, {Kf, N})));
      CHECK(stored_bytes(f.w, 1, g->block_elems) == int64_t(g->block_bytes));
    }
  }
  // Independently of the ggml table: the sizes of the formats as their block layouts define them.
  CHECK(stored_bytes(WQuant::none, N, K) == N * K * 4);
  CHECK(stored_bytes(WQuant::tq2_0, N, 512) == N * 2 * 66);  // BlockTQ2_0: 64 bytes of 2-bit codes + f16
  CHECK(stored_bytes(WQuant::tq1_0, N, 512) == N * 2 * 54);  // BlockTQ1_0: 48 + 4 bytes of trits + f16
  CHECK(stored_bytes(WQuant::q4_0, N, K) == N * K / 32 * 18);     // f16 d + 16 bytes of nibbles
  CHECK(stored_bytes(WQuant::q8_0, N, K) == N * K / 32 * 34);     // f16 d + 32 codes
  CHECK(stored_bytes(WQuant::int8_pc, N, K) == N * K / 32 * 34);  // as Q8_0 blocks repeating the row's scale
  CHECK(stored_bytes(WQuant::int4_pc, N, K) == N * K / 2 + N * 2);  // nibbles + one f16 scale per row
}
