// Where a decoded token's time goes (models/token_profile.h): the grouping of the profiler's decode rows
// into parts, shares that add up to the measured token (the unattributed rest included), the weights'
// GB/s against the DRAM roof; and bin/generate --profile printing it for a GGUF model. No timing is
// asserted: synthetic rows for the arithmetic, only the report's shape for the real run.
#include "models/token_profile.h"
#include "src/util/error.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;

namespace {

prof::Row row(const char* name, double seconds) { return {name, prof::Phase::forward, 1, seconds, 0, 0}; }

double part_ms(const TokenBreakdown& b, const std::string& name) {
  for (const TokenPart& p : b.parts)
    if (p.name == name) return p.ms;
  FAIL("no part " << name);
  return -1;
}

}  // namespace

TEST_CASE("token breakdown: parts, shares adding up, GB/s against the roof", "[profile]") {
  // 10 tokens in 0.1 s: 10 ms per token, of which 9.5 ms in the rows below.
  const std::vector<prof::Row> rows = {row("linear q", 0.02), row("linear down", 0.03), row("linear lm_head", 0.01),
                                       row("attention", 0.008), row("rope", 0.002), row("rmsnorm", 0.004),
                                       row("residual+rmsnorm", 0.006), row("swiglu", 0.003), row("residual", 0.002),
                                       row("embed (rest of forward)", 0.001), row("sample+print", 0.005),
                                       row("something new", 0.001)};
  const TokenBreakdown b = token_breakdown(rows, 10, 0.1, 200'000'000, 40.0);
  INFO(b.text());
  CHECK(b.token_ms == Approx(10.0));
  CHECK(part_ms(b, "GEMV (weights)") == Approx(5.0));
  CHECK(part_ms(b, "lm_head GEMV") == Approx(1.0));
  CHECK(part_ms(b, "attention + rope") == Approx(1.0));
  CHECK(part_ms(b, "norms") == Approx(1.0));  // residual+rmsnorm is a norm, not a residual
  CHECK(part_ms(b, "swiglu + residual") == Approx(0.5));
  CHECK(part_ms(b, "embedding + rest of forward") == Approx(0.1));
  CHECK(part_ms(b, "sampling + print") == Approx(0.5));
  CHECK(part_ms(b, "other") == Approx(0.1));
  CHECK(part_ms(b, "unattributed") == Approx(0.8));
  double shares = 0;
  for (const TokenPart& p : b.parts) shares += p.share;
  CHECK(shares == Approx(1.0).epsilon(1e-12));
  CHECK(b.weight_gbs == Approx(20.0));  // 200 MB per token, 100 tokens/s
  CHECK(b.gemv_gbs == Approx(200e6 * 10 / 0.06 * 1e-9));
  CHECK(b.roof_share == Approx(0.5));
  CHECK_THAT(b.text(), Catch::Contains("(50% of the DRAM read roof)"));
  CHECK_THROWS_AS(token_breakdown(rows, 0, 0.1, 1, 1), Error);
}

TEST_CASE("bin/generate --profile: where a decoded token's time goes", "[profile][cli]") {
  test::ScratchDir dir("token-profile");
  const std::string gguf = test::tiny_q8_0_gguf(dir, 120, 96, 2);
  test::ProcResult r = test::run_proc({"bin/generate", "--model", gguf, "--prompt", "the", "-n", "12", "--keep-going",
                                       "--threads", "1", "--profile"},
                                      dir.path + "/gen", {}, 120);
  INFO(r.what());
  REQUIRE(r.code == 0);
  const size_t at = r.err.find("where a decoded token's time goes:");
  REQUIRE(at != std::string::npos);
  double shares = 0;
  int parts = 0;
  for (const std::string& line : test::lines_of(r.err.substr(at))) {
    const size_t ms = line.find(" ms ");
    if (line.rfind("  ", 0) != 0 || ms == std::string::npos || line.find("token (measured)") != std::string::npos) continue;
    shares += std::atof(line.c_str() + ms + 4);
    parts++;
  }
  CHECK(parts == 9);  // the eight parts and the unattributed rest
  CHECK(shares == Approx(100.0).margin(0.5));  // printed to 0.1% each
  CHECK_THAT(r.err, Catch::Contains("GEMV (weights)"));
  CHECK_THAT(r.err, Catch::Contains("of the DRAM read roof"));
}
