// safetensors: round trips of every dtype, the exact byte layout (ours and bytes written by the
// reference implementation), and the hostile-file checks: every truncation, every corrupted field.
#include <unistd.h>

#include <cmath>

#include "src/io/file.h"
#include "src/io/safetensors.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

// A file with this header text (padded to 8 like the reference writer) and data section.
std::string st_file(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s;
  for (float x : v) s.append(reinterpret_cast<const char*>(&x), 4);
  return s;
}

std::string tmp_dir() {
  std::string d = "/tmp/qat-test-st-" + std::to_string(::getpid());
  make_dirs(d);
  return d;
}

// Parses `bytes` and returns the error message ("" when it loads).
std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors round-trips every dtype, scalars, empty tensors and views", "[safetensors]") {
  Tensor f32 = Tensor::randn({3, 5}, 1);
  Tensor f16 = Tensor::empty({4}, DType::f16);
  for (int i = 0; i < 4; i++) f16.data<uint16_t>()[i] = f32_to_f16(0.5f * float(i) - 1.0f);
  Tensor s8 = Tensor::empty({2, 3}, DType::s8);
  for (int i = 0; i < 6; i++) s8.data<int8_t>()[i] = int8_t(i * 40 - 128);
  Tensor u8 = Tensor::empty({5}, DType::u8);
  for (int i = 0; i < 5; i++) u8.data<uint8_t>()[i] = uint8_t(250 + i);
  Tensor s32 = Tensor::from_s32({2, 2}, {-7, 0, 1 << 30, -(1 << 30)});
  Tensor scalar = Tensor::from({}, {3.25f});
  Tensor empty = Tensor::empty({0, 7});
  Tensor base = Tensor::randn({4, 6}, 2);
  Tensor view = base.transpose(0, 1).slice(0, 1, 5);  // (4, 4), non-contiguous
  REQUIRE_FALSE(view.is_contiguous());

  std::vector<std::pair<std::string, Tensor>> ts = {{"z.last_name_first", f32}, {"half", f16}, {"s8", s8},
                                                    {"u8", u8},   {"i32", s32},  {"scalar", scalar},
                                                    {"empty", empty}, {"view", view}};
  std::string dir = tmp_dir();
  for (bool with_meta : {false, true}) {
    std::map<std::string, std::string> meta;
    if (with_meta) meta = {{"step", "42"}, {"note", "quotes \" and \\ and \n newline"}};
    std::string path = dir + "/m.safetensors";
    save_safetensors(path, ts, meta);
    for (const SafeTensors& st : {load_safetensors(path), parse_safetensors(read_file(path), path)}) {
      REQUIRE(st.tensors.size() == ts.size());
      for (size_t i = 0; i < ts.size(); i++) {
        INFO(ts[i].first);
        REQUIRE(st.tensors[i].first == ts[i].first);  // file order == the order given
        REQUIRE(st.tensors[i].second.is_contiguous());
        if (ts[i].second.numel() == 0)  // (nothing to compare; same_bits would clone an empty tensor)
          REQUIRE((st.tensors[i].second.shape() == ts[i].second.shape() && st.tensors[i].second.dtype() == ts[i].second.dtype()));
        else
          REQUIRE(test::same_bits(st.tensors[i].second, ts[i].second));
      }
      REQUIRE(st.at("view").shape() == Shape{4, 4});
      REQUIRE(st.at("scalar").shape().empty());
      REQUIRE(st.at("empty").shape() == Shape{0, 7});
      REQUIRE(st.metadata.at("format") == "pt");
      REQUIRE(st.metadata.size() == (with_meta ? 3u : 1u));
      if (with_meta) REQUIRE(st.metadata.at("note") == meta.at("note"));
      REQUIRE(st.find("nope") == nullptr);
      REQUIRE_THROWS_WITH(st.at("nope"), Catch::Contains("no tensor 'nope'"));
    }
  }
  // No tensors at all.
  save_safetensors(dir + "/e.safetensors", {});
  REQUIRE(load_safetensors(dir + "/e.safetensors").tensors.empty());
  // The writer refuses what the format cannot hold.
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/x", {{"a", f32}, {"a", f32}}), Catch::Contains("duplicate tensor name 'a'"));
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/x", {{"__metadata__", f32}}), Catch::Contains("reserved"));
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/x", {{"", f32}}), Catch::Contains("empty tensor name"));
  REQUIRE_THROWS_WITH(save_safetensors(dir + "/x", {{"u", Tensor()}}), Catch::Contains("undefined"));
  remove_tree(dir);
}

TEST_CASE("safetensors byte layout matches the spec and the reference writer", "[safetensors]") {
  // Ours, checked by hand: u64 LE header length, compact JSON (__metadata__ first), spaces to a
  // multiple of 8, then the raw little-endian data.
  std::string json = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(json.size() == 85);  // padded with 3 spaces to 88 = 0x58
  std::string expected = std::string("\x58\0\0\0\0\0\0\0", 8) + json + "   " + std::string("\0\0\x80\x3f\0\0\0\x40", 8);
  std::string got = serialize_safetensors({{"a", Tensor::from({2}, {1.0f, 2.0f})}});
  REQUIRE(got == expected);

  // Bytes produced by the reference implementation (huggingface/safetensors, safetensors/src/tensor.rs
  // unit tests test_serialization and test_empty) load here.
  std::string ref = std::string("\x40\0\0\0\0\0\0\0", 8) +
                    R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
                    f32_bytes({0, 1, 2, 3, 4, 5});
  SafeTensors st = parse_safetensors(ref);
  REQUIRE(st.at("attn.0").shape() == Shape{1, 2, 3});
  REQUIRE(st.at("attn.0").to_vector() == std::vector<float>{0, 1, 2, 3, 4, 5});
  REQUIRE(st.metadata.empty());
  REQUIRE(parse_safetensors(std::string("\x08\0\0\0\0\0\0\0{}      ", 16)).tensors.empty());
  std::string ref_meta = std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ";
  REQUIRE(parse_safetensors(ref_meta).metadata.at("framework") == "pt");
  // Tensors listed out of offset order are fine (the reference sorts by data_offsets); the result is
  // in file order.
  std::string swapped = st_file(R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "xy");
  SafeTensors sw = parse_safetensors(swapped);
  REQUIRE(sw.tensors[0].first == "a");
  REQUIRE(sw.tensors[1].first == "b");
}

TEST_CASE("safetensors loader rejects every truncation of a valid file", "[safetensors]") {
  std::string full = serialize_safetensors({{"w", Tensor::randn({3, 2}, 3)}, {"b", Tensor::from_s32({2}, {1, 2})}},
                                           {{"k", "v"}});
  REQUIRE(parse_error(full).empty());
  for (size_t n = 0; n < full.size(); n++) {
    std::string msg = parse_error(full.substr(0, n));
    INFO("prefix of " << n << " bytes: " << msg);
    REQUIRE_FALSE(msg.empty());
    REQUIRE(msg.rfind("m.safetensors: ", 0) == 0);
    REQUIRE(msg.find('\n') == std::string::npos);
  }
  // One byte too many is an error too: the data section must be covered exactly.
  REQUIRE_THAT(parse_error(full + "x"), Catch::Contains("every byte must belong to a tensor"));
}

TEST_CASE("safetensors loader rejects corrupted headers with a message naming the field", "[safetensors]") {
  auto f32x4 = f32_bytes({1, 2, 3, 4});
  auto one = [&](const std::string& entry, const std::string& data) { return st_file("{" + entry + "}", data); };
  using Catch::Contains;

  // The 8-byte length.
  REQUIRE_THAT(parse_error(std::string("\x01\x02", 2)), Contains("too short for the 8-byte header length"));
  REQUIRE_THAT(parse_error(le64(100) + "{}"), Contains("header length 100 runs past the end of the file (10 bytes)"));
  REQUIRE_THAT(parse_error(le64(100'000'001) + "{}"), Contains("header length 100000001 exceeds the limit of 100000000"));
  REQUIRE_THAT(parse_error(le64(~uint64_t(0)) + "{}"), Contains("exceeds the limit"));
  // The JSON.
  REQUIRE_THAT(parse_error(st_file("{\"a\":", "")), Contains("m.safetensors: header: json:"));
  REQUIRE_THAT(parse_error(st_file("[1, 2]", "")), Contains("header: expected a JSON object, got an array"));
  REQUIRE_THAT(parse_error(st_file("{\"\xff\":1}", "")), Contains("header: not valid UTF-8 at header byte 2"));
  REQUIRE_THAT(parse_error(st_file(std::string(1 << 21, '['), "")), Contains("JSON values, more than the limit"));
  REQUIRE_THAT(parse_error(one(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})",
                               f32_bytes({1, 2}))),
               Contains("header: json: duplicate key 'a'"));
  // One tensor entry.
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", "123456789012")),
               Contains("m.safetensors: tensor 'x': data_offsets [0, 12] do not match shape (2, 2) of F32 (16 bytes)"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]})", f32x4)),
               Contains("tensor 'x': unknown dtype 'Q4'"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]})", f32x4)),
               Contains("tensor 'x': dtype 'BF16' is not supported"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":7,"shape":[4],"data_offsets":[0,16]})", f32x4)),
               Contains("tensor 'x': dtype: expected a string, got a number"));
  REQUIRE_THAT(parse_error(one(R"("x":{"shape":[4],"data_offsets":[0,16]})", f32x4)), Contains("missing field 'dtype'"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1})", f32x4)),
               Contains("unknown field 'extra'"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"dtype":"F32","data_offsets":[0,16]})", f32x4)),
               Contains("duplicate key 'dtype'"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]})", f32x4)),
               Contains("tensor 'x': shape[0]: expected a non-negative integer, got -4"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]})", f32x4)),
               Contains("shape[0]: expected a non-negative integer"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":4,"data_offsets":[0,16]})", f32x4)),
               Contains("shape: expected an array"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]})", f32x4)),
               Contains("overflows 64-bit sizes"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,16]})", f32x4)),
               Contains("shape[0]: expected a non-negative integer"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,4],"data_offsets":[0,16]})", f32x4)),
               Contains("17 dimensions, at most 16"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"data_offsets":[0]})", f32x4)),
               Contains("data_offsets: expected [begin, end]"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"data_offsets":[16,0]})", f32x4)),
               Contains("data_offsets [16, 0]: end is before begin"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"data_offsets":[0,-16]})", f32x4)),
               Contains("data_offsets: expected two non-negative integers"));
  REQUIRE_THAT(parse_error(one(R"("x":[1])", f32x4)), Contains("tensor 'x': expected an object"));
  REQUIRE_THAT(parse_error(one(R"("":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", f32x4)), Contains("empty tensor name"));
  // Offsets against each other and the file.
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", f32_bytes({1, 2, 3}))),
               Contains("tensor 'x': data_offsets [0, 16] extend past the end of the data section (12 bytes)"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]})", f32_bytes({1, 2, 3}))),
               Contains("tensor 'y': data_offsets [4, 12] overlap tensor 'x' [0, 8]"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[2],"data_offsets":[8,16]})", f32x4)),
               Contains("tensor 'y': data_offsets [8, 16] leave a gap after tensor 'x' (expected begin 4)"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[3],"data_offsets":[4,16]})", f32x4)),
               Contains("leave a gap at the start of the data section"));
  REQUIRE_THAT(parse_error(one(R"("x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]})", f32x4)),
               Contains("data section is 16 bytes but the tensors cover 12"));
  // __metadata__.
  REQUIRE_THAT(parse_error(st_file(R"({"__metadata__":{"a":1}})", "")), Contains("__metadata__: value of 'a' is a number, expected a string"));
  REQUIRE_THAT(parse_error(st_file(R"({"__metadata__":[]})", "")), Contains("__metadata__: expected an object"));
  REQUIRE_THAT(parse_error(st_file(R"({"__metadata__":{"a":"1","a":"2"}})", "")), Contains("header: json: duplicate key 'a'"));
  // Hostile names cannot break the one-line error.
  std::string msg = parse_error(one(R"("x\ny":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]})", f32x4));
  REQUIRE_THAT(msg, Contains("tensor 'x\\ny'"));
  REQUIRE(msg.find('\n') == std::string::npos);
  // Zero-sized tensors take no bytes and may share an offset.
  SafeTensors z = parse_safetensors(one(R"("e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", f32x4));
  REQUIRE(z.at("e").numel() == 0);
  REQUIRE(z.at("x").to_vector() == std::vector<float>{1, 2, 3, 4});
}

TEST_CASE("safetensors: a write error leaves the previous file intact; missing files are named", "[safetensors]") {
  std::string dir = tmp_dir();
  std::string path = dir + "/ckpt.safetensors";
  Tensor a = Tensor::randn({64, 64}, 4);
  save_safetensors(path, {{"a", a}});
  std::string before = read_file(path);
  set_write_fault_after(1000);
  REQUIRE_THROWS_WITH(save_safetensors(path, {{"a", Tensor::randn({64, 64}, 5)}}),
                      Catch::Contains(path) && Catch::Contains("No space left"));
  set_write_fault_after(-1);
  REQUIRE(read_file(path) == before);
  REQUIRE(test::same_bits(load_safetensors(path).at("a"), a));
  REQUIRE_THROWS_WITH(load_safetensors(dir + "/missing.safetensors"),
                      Catch::Contains("cannot read") && Catch::Contains("missing.safetensors"));
  // A file on disk gets the same checks as a buffer (here: one byte cut off the end).
  write_file_atomic(dir + "/cut.safetensors", before.substr(0, before.size() - 1));
  REQUIRE_THROWS_WITH(load_safetensors(dir + "/cut.safetensors"),
                      Catch::Contains(dir + "/cut.safetensors: tensor 'a': data_offsets [0, 16384] extend past"));
  remove_tree(dir);
}

TEST_CASE("safetensors reports non-finite values on request", "[safetensors]") {
  Tensor ok = Tensor::from({3}, {1, 2, 3});
  Tensor bad = Tensor::from({2, 3}, {1, NAN, 3, INFINITY, 5, -INFINITY});
  Tensor h = Tensor::empty({2}, DType::f16);
  h.data<uint16_t>()[0] = 0x3c00;  // 1.0
  h.data<uint16_t>()[1] = 0x7c00;  // +inf
  REQUIRE(find_nonfinite(ok).count == 0);
  NonFinite nf = find_nonfinite(bad);
  REQUIRE(nf.count == 3);
  REQUIRE(nf.first_index == 1);
  REQUIRE(std::isnan(nf.first_value));
  NonFinite nft = find_nonfinite(bad.transpose(0, 1));  // (3, 2) view: 1, inf, nan, 5, 3, -inf
  REQUIRE((nft.count == 3 && nft.first_index == 1 && nft.first_value == INFINITY));
  REQUIRE(find_nonfinite(h).count == 1);
  REQUIRE(find_nonfinite(Tensor::from_s32({1}, {7})).count == 0);
  std::string bytes = serialize_safetensors({{"ok", ok}, {"bad", bad}});
  REQUIRE(parse_safetensors(bytes).tensors.size() == 2);  // off by default
  REQUIRE_THROWS_WITH(parse_safetensors(bytes, "m.safetensors", {.reject_nonfinite = true}),
                      "m.safetensors: tensor 'bad': 3 non-finite values (first: nan at index 1)");
}

TEST_CASE("safetensors loads a file written independently from the spec (numpy)", "[safetensors]") {
  // tests/reference/check_formats.py wrote it the way the reference writer orders tensors: by dtype
  // alignment, then name. Regenerate: /usr/bin/python3 tests/reference/check_formats.py write tests/reference/fixtures
  std::string dir = std::string(__FILE__).substr(0, std::string(__FILE__).rfind('/'));
  SafeTensors st = load_safetensors(dir + "/reference/fixtures/numpy_written.safetensors");
  std::vector<std::string> names;
  for (const auto& [n, t] : st.tensors) names.push_back(n);
  REQUIRE(names == std::vector<std::string>{"ids", "scalar", "w", "h", "bytes", "codes"});
  REQUIRE(st.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"source", "numpy"}});
  REQUIRE(st.at("w").shape() == Shape{3, 4});
  std::vector<float> w;
  for (int i = 0; i < 12; i++) w.push_back(float(i) / 4 - 1);
  REQUIRE(st.at("w").to_vector() == w);
  const uint16_t* h = st.at("h").data<uint16_t>();
  REQUIRE((h[0] == 0x3800 && h[1] == 0xc000 && h[2] == 0x7bff && h[3] == 0x0001));
  const int8_t* c = st.at("codes").data<int8_t>();
  REQUIRE((c[0] == -128 && c[1] == -1 && c[2] == 0 && c[3] == 127));
  const uint8_t* b = st.at("bytes").data<uint8_t>();
  REQUIRE((st.at("bytes").shape() == Shape{2, 2} && b[1] == 255 && b[2] == 7));
  const int32_t* ids = st.at("ids").data<int32_t>();
  REQUIRE((ids[0] == INT32_MIN && ids[1] == INT32_MAX && ids[2] == 5));
  REQUIRE((st.at("scalar").shape().empty() && st.at("scalar").item() == 3.5f));
}
