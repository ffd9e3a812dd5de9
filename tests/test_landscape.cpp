// bin/landscape (the basin picture, docs/QAT.md §4): on a tiny FP32 model and a QAT fine-tune of it, the
// plane's grid and the per-tensor lines are written and drawn, F's loss is the one bin/eval measures on
// the same windows, and the refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "src/io/file.h"
#include "src/io/json.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {
// The numbers of a TSV's non-comment, non-empty lines.
std::vector<std::vector<double>> tsv_rows(const std::string& text) {
  std::vector<std::vector<double>> rows;
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::vector<double> v;
    for (double x; in >> x;) v.push_back(x);
    rows.push_back(v);
  }
  return rows;
}
}  // namespace

TEST_CASE("bin/landscape: the plane through F, P and Q, the lines per tensor, F's loss as bin/eval's", "[landscape][cli]") {
  ScratchDir dir("landscape");
  const std::string corpus = dir.put("corpus.txt", synthetic_corpus(200)), cache = dir.path + "/cache";
  const std::string fp = dir.path + "/fp", qat = dir.path + "/qat", out = dir.path + "/pics/ls";
  const std::vector<std::string> common{"--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "16", "--batch", "4",
                                        "--threads", "1", "--cache-dir", cache, "--quiet", "--no-plot"};
  auto train = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "bin/train");
    args.insert(args.end(), common.begin(), common.end());
    ProcResult r = run_proc(args, dir.path + "/train");
    INFO(r.what());
    REQUIRE(r.code == 0);
  };
  train({"--steps", "20", "--out", fp});
  train({"--init", fp, "--qat", "q4_0", "--steps", "4", "--out", qat});
  ProcResult r = run_proc({"bin/landscape", "--fp32", fp, "--qat", qat, "--windows", "4", "--grid", "4", "--line-points", "3",
                           "--cache-dir", cache, "--threads", "1", "--out", out},
                          dir.path + "/landscape", {}, 300);
  INFO(r.what());
  REQUIRE(r.code == 0);
  // The plane: 4 x 4 finite losses; the three points, F at the origin and P on the x axis.
  const auto grid = tsv_rows(read_file(out + "-plane.tsv"));
  REQUIRE(grid.size() == 16);
  for (const auto& row : grid) {
    REQUIRE(row.size() == 3);
    CHECK(std::isfinite(row[2]));
  }
  CHECK_THAT(read_file(out + "-points.tsv"), Catch::StartsWith("0\t0\tF\n") && Catch::Contains("\t0\tP\n"));
  // The lines: one block per quantized tensor (tiny: embedding + 2 x 7), t = 0, 1, 2, starting at 0.
  const auto lines = tsv_rows(read_file(out + "-layers.tsv"));
  REQUIRE(lines.size() == 15 * 3);
  for (size_t b = 0; b < 15; b++) {
    CHECK(lines[3 * b][0] == 0.0);
    CHECK(lines[3 * b][1] == 0.0);
    CHECK(lines[3 * b + 1][0] == 1.0);
  }
  CHECK(file_exists(out + "-plane.png"));
  CHECK(file_exists(out + "-layers.png"));
  CHECK(read_file(out + "-plane.png").rfind("\x89PNG", 0) == 0);
  CHECK(!file_exists(out + "-contours.tmp"));
  CHECK_THAT(r.out, Catch::Contains("tensors: ") && Catch::Contains(" evaluations"));
  // F's loss is bin/eval's f32 loss of the FP32 checkpoint on the same 4 windows.
  std::string f_loss;
  for (const std::string& line : lines_of(r.out))
    if (line.rfind("loss: F ", 0) == 0) f_loss = line.substr(8, line.find(',') - 8);
  REQUIRE(!f_loss.empty());
  ProcResult e = run_proc({"bin/eval", "--model", fp, "--windows", "4", "--cache-dir", cache, "--threads", "1", "--json"},
                          dir.path + "/eval");
  REQUIRE(e.code == 0);
  char want[32];
  std::snprintf(want, sizeof want, "%.6f", Json::parse(lines_of(e.out).back()).at("val_loss").as_double());
  CHECK(f_loss == want);

  ProcResult bad = run_proc({"bin/landscape", "--fp32", qat, "--qat", qat, "--cache-dir", cache}, dir.path + "/bad");
  CHECK(bad.code != 0);
  CHECK_THAT(bad.err, Catch::Contains("is not an FP32 checkpoint"));
  bad = run_proc({"bin/landscape", "--fp32", fp, "--qat", fp, "--cache-dir", cache}, dir.path + "/bad2");
  CHECK_THAT(bad.err, Catch::Contains("is not a QAT checkpoint"));
  bad = run_proc({"bin/landscape", "--fp32", fp}, dir.path + "/bad3");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--qat: missing"));
}
