// JSON parse/dump, atomic file writes with an injected disk-full fault, and the CLI parser.
#include <unistd.h>

#include "src/io/file.h"
#include "src/io/json.h"
#include "src/util/cli.h"
#include "tests/helpers.h"

using namespace qat;

TEST_CASE("json round-trips and rejects malformed input with a position", "[json]") {
  Json j = Json::parse(R"({"a": [1, -2, 3.5, 1e3], "b": {"c": "x\"y\u00e9\ud83d\ude00"}, "d": true, "e": null,
                          "big": 18446744073709551615, "neg": -9223372036854775808})");
  REQUIRE(j.at("a").items()[1].as_int() == -2);
  REQUIRE(j.at("a").items()[2].as_double() == 3.5);
  REQUIRE(j.at("a").items()[3].as_int() == 1000);
  REQUIRE(j.at("b").at("c").as_string() == "x\"y\xc3\xa9\xf0\x9f\x98\x80");
  REQUIRE(j.at("d").as_bool());
  REQUIRE(j.at("e").is_null());
  REQUIRE(j.at("big").as_uint() == 18446744073709551615ull);
  REQUIRE_THROWS_WITH(j.at("big").as_int(), Catch::Contains("larger than 2^63"));
  REQUIRE(Json(uint64_t(18446744073709551615ull)).dump() == "18446744073709551615");
  REQUIRE(j.at("neg").as_int() == INT64_MIN);
  REQUIRE(Json::parse(j.dump()).dump() == j.dump());
  REQUIRE(Json::parse(j.dump(2)).dump() == j.dump());
  REQUIRE(Json(0.1).dump() == "0.1");
  REQUIRE(Json(3e-4).dump() == "0.0003");
  REQUIRE(Json::parse(Json(1.0 / 3).dump()).as_double() == 1.0 / 3);
  REQUIRE_THROWS_WITH(j.at("zz"), Catch::Contains("missing key 'zz'"));
  REQUIRE_THROWS_WITH(j.at("d").as_string(), Catch::Contains("expected a string"));
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"\\ud800\"", "01", "1.", "tru", "[1] x", "\"a\nb\"", "-"})
    REQUIRE_THROWS_WITH(Json::parse(bad), Catch::Contains("json:") && Catch::Contains("at byte"));
  std::string deep(100, '[');
  REQUIRE_THROWS_WITH(Json::parse(deep), Catch::Contains("deeper than 64"));
}

TEST_CASE("atomic writes leave the old file intact when the disk fills", "[file]") {
  std::string dir = "/tmp/qat-test-file-" + std::to_string(::getpid());
  make_dirs(dir + "/sub");
  std::string path = dir + "/sub/x.bin";
  write_file_atomic(path, std::string(1000, 'a'));
  REQUIRE(read_file(path) == std::string(1000, 'a'));
  set_write_fault_after(500);
  REQUIRE_THROWS_WITH(write_file_atomic(path, std::string(2000, 'b')),
                      Catch::Contains(path) && Catch::Contains("No space left"));
  set_write_fault_after(-1);
  REQUIRE(read_file(path) == std::string(1000, 'a'));  // untouched, and no temp file left behind
  REQUIRE_FALSE(file_exists(path + ".tmp." + std::to_string(::getpid())));
  REQUIRE_THROWS_WITH(read_file(dir + "/missing"), Catch::Contains("cannot read") && Catch::Contains("missing"));
  REQUIRE_THROWS_WITH(read_file(path, 10), Catch::Contains("larger than 10 bytes"));
  // Directory replacement is all-or-nothing.
  make_dirs(dir + "/new");
  write_file_atomic(dir + "/new/f", "new");
  replace_directory(dir + "/new", dir + "/sub");
  REQUIRE(read_file(dir + "/sub/f") == "new");
  REQUIRE_FALSE(file_exists(dir + "/sub/x.bin"));
  REQUIRE_FALSE(file_exists(dir + "/new"));
  remove_tree(dir);
  REQUIRE_FALSE(file_exists(dir));
}

TEST_CASE("the CLI parser gives one-line usage errors", "[cli]") {
  int64_t steps = 10;
  double lr = 1e-3;
  std::string out = "runs/x";
  bool quiet = false;
  auto make = [&]() {
    ArgParser p("prog", "test");
    p.option("--steps", &steps, "steps", 1, 1000);
    p.option("--lr", &lr, "learning rate", 0.0, 1.0);
    p.option("--out", &out, "dir", "DIR");
    p.flag("--quiet", &quiet, "quiet");
    p.alias("-n", "--steps");
    return p;
  };
  auto parse = [&](std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("prog")};
    for (auto& a : args) argv.push_back(a.data());
    ArgParser p = make();
    return p.parse(int(argv.size()), argv.data());
  };
  REQUIRE(parse({"--steps", "5", "--lr=0.5", "--quiet", "--out", "d"}));
  REQUIRE((steps == 5 && lr == 0.5 && quiet && out == "d"));
  REQUIRE(parse({"-n", "7"}));
  REQUIRE(steps == 7);
  REQUIRE_THROWS_AS(parse({"--steps", "0"}), UsageError);
  REQUIRE_THROWS_WITH(parse({"--steps", "abc"}), Catch::Contains("--steps: expected an integer in [1, 1000], got 'abc'"));
  REQUIRE_THROWS_WITH(parse({"--lr", "nan"}), Catch::Contains("--lr"));
  REQUIRE_THROWS_WITH(parse({"--steps"}), Catch::Contains("--steps: missing value"));
  REQUIRE_THROWS_WITH(parse({"--bogus"}), Catch::Contains("unknown option '--bogus'"));
  REQUIRE_THROWS_WITH(parse({"--quiet=1"}), Catch::Contains("takes no value"));
  REQUIRE(make().help().find("--steps N") != std::string::npos);
  REQUIRE(run_main("prog", [] () -> int { throw UsageError("bad"); }) == 2);
  REQUIRE(run_main("prog", [] () -> int { throw Error("broken"); }) == 1);
}
