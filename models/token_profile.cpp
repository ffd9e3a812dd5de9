// Grouping a decode profile's rows into a token's parts (see token_profile.h).
#include "models/token_profile.h"

#include <algorithm>
#include <cstdio>

#include "src/util/error.h"

namespace qat {
namespace {

// One table: a part and the profiler row names (models/decode.cpp, tools/generate.cpp) it takes, by
// prefix. The first part whose prefix matches takes the row; "other" takes what none matches.
struct PartRule {
  const char* part;
  std::vector<const char*> prefixes;
};
const std::vector<PartRule>& part_rules() {
  static const std::vector<PartRule> rules = {
      {"GEMV (weights)", {"linear q", "linear k", "linear v", "linear o", "linear gate", "linear up", "linear down"}},
      {"lm_head GEMV", {"linear lm_head"}},
      {"attention + rope", {"attention", "rope"}},
      {"norms", {"rmsnorm", "residual+rmsnorm"}},
      {"swiglu + residual", {"swiglu", "residual"}},
      {"embedding + rest of forward", {"embed"}},
      {"sampling + print", {"sample"}},
      {"other", {}},
  };
  return rules;
}

size_t part_of(const std::string& row) {
  const auto& rules = part_rules();
  for (size_t i = 0; i < rules.size(); i++)
    for (const char* p : rules[i].prefixes)
      if (row.rfind(p, 0) == 0) return i;
  return rules.size() - 1;  // other
}

}  // namespace

TokenBreakdown token_breakdown(const std::vector<prof::Row>& rows, int64_t tokens, double wall, int64_t weight_bytes,
                               double dram_gbs) {
  QAT_CHECK(tokens > 0 && wall > 0, "token breakdown: no decoded tokens");
  const auto& rules = part_rules();
  std::vector<double> seconds(rules.size(), 0.0);
  double attributed = 0;
  for (const prof::Row& r : rows) {
    seconds[part_of(r.name)] += r.seconds;
    attributed += r.seconds;
  }
  TokenBreakdown b;
  const double n = double(tokens);
  b.token_ms = wall / n * 1e3;
  for (size_t i = 0; i < rules.size(); i++) b.parts.push_back({rules[i].part, seconds[i] / n * 1e3, seconds[i] / wall});
  b.parts.push_back({"unattributed", (wall - attributed) / n * 1e3, (wall - attributed) / wall});
  const double gemv_s = seconds[0] + seconds[1];
  b.weight_gbs = double(weight_bytes) * n / wall * 1e-9;
  b.gemv_gbs = gemv_s > 0 ? double(weight_bytes) * n / gemv_s * 1e-9 : 0;
  b.roof_share = dram_gbs > 0 ? b.weight_gbs / dram_gbs : 0;
  return b;
}

std::string TokenBreakdown::text() const {
  std::string s = "where a decoded token's time goes:\n";
  char buf[160];
  for (const TokenPart& p : parts) {
    std::snprintf(buf, sizeof buf, "  %-30s %9.3f ms %6.1f%%\n", p.name.c_str(), p.ms, p.share * 100);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "  %-30s %9.3f ms %6.1f%%\n", "token (measured)", token_ms, 100.0);
  s += buf;
  std::snprintf(buf, sizeof buf, "weights: %.1f GB/s over the whole token (%.0f%% of the DRAM read roof), %.1f GB/s within the GEMVs\n",
                weight_gbs, roof_share * 100, gemv_gbs);
  return s + buf;
}

}  // namespace qat
