// GGUF: writer/reader round trip of every metadata type and tensor type we export, the exact byte
// layout of a small file checked by hand against docs/gguf.md, and the hostile-file checks: every
// truncated prefix and every corrupted field (magic, version, counts, strings, types, dims, offsets).
#include <unistd.h>

#include <cmath>
#include <functional>

#include "src/io/file.h"
#include "src/io/gguf.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

// Little-endian byte builder for hand-made files.
struct B {
  std::string s;
  B& u32(uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); return *this; }
  B& u64(uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); return *this; }
  B& str(const std::string& x) { u64(x.size()); s += x; return *this; }
  B& raw(const std::string& x) { s += x; return *this; }
  B& pad(size_t a) { s.append((a - s.size() % a) % a, '\0'); return *this; }
};

std::string bytes_of(std::initializer_list<float> v) {
  std::string s;
  for (float x : v) s.append(reinterpret_cast<const char*>(&x), 4);
  return s;
}

// Every field of a small two-tensor file, so that a test can corrupt exactly one of them.
struct Spec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  int64_t n_tensors = -1, n_kv = -1;  // -1: the true counts
  std::function<void(B&)> kvs = [](B& b) {
    b.str("general.architecture").u32(8).str("llama");
    b.str("llama.context_length").u32(4).u32(128);
    b.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(2).str("a").str("bc");
  };
  int kv_count = 3;
  std::string name0 = "t0", name1 = "t1";
  uint32_t n_dims0 = 2;
  std::vector<uint64_t> ne0 = {32, 2};  // Q4_0: 2 blocks of 18 bytes = 36 bytes -> padded to 64
  uint32_t type0 = 2;
  uint64_t offset0 = 0;
  std::vector<uint64_t> ne1 = {3};  // F32: 12 bytes -> padded to 32
  uint32_t type1 = 0;
  uint64_t offset1 = 64;
  size_t alignment = 32;

  std::string build() const {
    B b;
    b.raw(magic).u32(version).u64(n_tensors < 0 ? 2 : uint64_t(n_tensors)).u64(n_kv < 0 ? kv_count : uint64_t(n_kv));
    kvs(b);
    b.str(name0).u32(n_dims0);
    for (uint64_t d : ne0) b.u64(d);
    b.u32(type0).u64(offset0);
    b.str(name1).u32(uint32_t(ne1.size()));
    for (uint64_t d : ne1) b.u64(d);
    b.u32(type1).u64(offset1);
    b.pad(alignment);
    b.raw(std::string(36, '\x11')).pad(alignment);
    b.raw(bytes_of({1, 2, 3})).pad(alignment);
    return b.s;
  }
};

std::string parse_error(const std::string& bytes) {
  try {
    parse_gguf(bytes, "m.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string err(const std::function<void(Spec&)>& change) {
  Spec s;
  change(s);
  return parse_error(s.build());
}

std::string tmp_dir() {
  std::string d = "/tmp/qat-test-gguf-" + std::to_string(::getpid());
  make_dirs(d);
  return d;
}

}  // namespace

TEST_CASE("gguf writer and reader round-trip every metadata type and tensor type", "[gguf]") {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("llama.context_length", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", 18000000000000000000ull);
  w.set_i64("t.i64", -9000000000000000000ll);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f64("t.f64", 1.0 / 3);
  w.set_bool("t.bool", true);
  w.set_string("t.empty_string", "");
  w.set_arr_u8("t.arr_u8", {1, 2, 255});
  w.set_arr_i8("t.arr_i8", {-1, 0, 1});
  w.set_arr_u16("t.arr_u16", {65535});
  w.set_arr_i16("t.arr_i16", {-2, 2});
  w.set_arr_u32("t.arr_u32", {7, 8});
  w.set_arr_i32("tokenizer.ggml.token_type", {1, 1, 3});
  w.set_arr_u64("t.arr_u64", {1ull << 40});
  w.set_arr_i64("t.arr_i64", {-(1ll << 40), 5});
  w.set_arr_f32("tokenizer.ggml.scores", {0.5f, -1.0f});
  w.set_arr_f64("t.arr_f64", {2.5});
  w.set_arr_bool("t.arr_bool", {true, false, true});
  w.set_arr_string("tokenizer.ggml.tokens", {"a", "", "h\xc3\xa9llo", std::string("nul\0in", 6)});
  w.set_arr_i32("t.arr_empty", {});
  w.set_u8("t.u8", 201);  // set again: replaced in place

  std::string q4(2 * 3 * 18, '\0'), q8(2 * 34, '\0');
  for (size_t i = 0; i < q4.size(); i++) q4[i] = char(i * 7);
  for (size_t i = 0; i < q8.size(); i++) q8[i] = char(255 - i);
  Tensor wf = Tensor::randn({3, 5}, 7);  // (N=3, K=5) -> ne {5, 3}
  Tensor h = Tensor::empty({4}, DType::f16);
  for (int i = 0; i < 4; i++) h.data<uint16_t>()[i] = f32_to_f16(float(i) - 1.5f);
  w.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_0, {64, 3}, q4);
  w.add_tensor("output_norm.weight", wf.transpose(0, 1));  // a view: written as a contiguous (5, 3)
  w.add_tensor("blk.0.ffn_up.weight", GgmlType::Q8_0, {32, 2}, q8);
  w.add_tensor("half", h);
  w.add_tensor("ints", Tensor::from_s32({2}, {-5, 6}));

  std::string dir = tmp_dir();
  std::string path = dir + "/m.gguf";
  w.write(path);
  REQUIRE(read_file(path) == w.serialize());
  for (const GgufFile& g : {read_gguf(path), parse_gguf(w.serialize(), path)}) {
    REQUIRE(g.version == 3);
    REQUIRE(g.alignment == 32);
    REQUIRE(g.data_offset % 32 == 0);
    REQUIRE(g.kv.size() == 26);
    REQUIRE(g.kv[0].key == "general.architecture");
    REQUIRE(g.get_string("general.architecture") == "llama");
    REQUIRE(g.get_u8("t.u8") == 201);
    REQUIRE(g.kv[1].key == "t.u8");
    REQUIRE(g.get_i8("t.i8") == -100);
    REQUIRE(g.get_u16("t.u16") == 60000);
    REQUIRE(g.get_i16("t.i16") == -30000);
    REQUIRE(g.get_u32("llama.context_length") == 4000000000u);
    REQUIRE(g.get_i32("t.i32") == -2000000000);
    REQUIRE(g.get_u64("t.u64") == 18000000000000000000ull);
    REQUIRE(g.get_i64("t.i64") == -9000000000000000000ll);
    REQUIRE(g.get_f32("llama.attention.layer_norm_rms_epsilon") == 1e-5f);
    REQUIRE(g.get_f64("t.f64") == 1.0 / 3);
    REQUIRE(g.get_bool("t.bool"));
    REQUIRE(g.get_string("t.empty_string").empty());
    REQUIRE(g.get_arr_u8("t.arr_u8") == std::vector<uint8_t>{1, 2, 255});
    REQUIRE(g.get_arr_u32("t.arr_u32") == std::vector<uint32_t>{7, 8});
    REQUIRE(g.get_arr_i32("tokenizer.ggml.token_type") == std::vector<int32_t>{1, 1, 3});
    REQUIRE(g.get_arr_i64("t.arr_i64") == std::vector<int64_t>{-(1ll << 40), 5});
    REQUIRE(g.get_arr_f32("tokenizer.ggml.scores") == std::vector<float>{0.5f, -1.0f});
    REQUIRE(g.get_arr_bool("t.arr_bool") == std::vector<bool>{true, false, true});
    REQUIRE(g.get_arr_string("tokenizer.ggml.tokens") ==
            std::vector<std::string>{"a", "", "h\xc3\xa9llo", std::string("nul\0in", 6)});
    REQUIRE(g.get_arr_i32("t.arr_empty").empty());
    const GgufValue* v = g.find("t.arr_i16");
    REQUIRE((v && v->type == GgufType::array && v->elem_type == GgufType::i16 && v->count == 2));
    // Typed getters do not convert, and say what they found.
    REQUIRE_THROWS_WITH(g.get_u64("llama.context_length"), Catch::Contains("key 'llama.context_length' is u32, expected u64"));
    REQUIRE_THROWS_WITH(g.get_u32("tokenizer.ggml.tokens"), Catch::Contains("is array of string, expected u32"));
    REQUIRE_THROWS_WITH(g.get_arr_string("tokenizer.ggml.scores"), Catch::Contains("is array of f32, expected array of string"));
    REQUIRE_THROWS_WITH(g.get_u32("llama.block_count"), Catch::Contains("missing key 'llama.block_count' (expected u32)"));

    REQUIRE(g.tensors.size() == 5);
    const GgufTensorInfo& q = g.tensor("blk.0.attn_q.weight");
    REQUIRE(q.type == GgmlType::Q4_0);
    REQUIRE(q.ne == std::vector<int64_t>{64, 3});
    REQUIRE(q.shape() == Shape{3, 64});
    REQUIRE(q.nbytes == 108);
    REQUIRE(std::string(reinterpret_cast<const char*>(q.data), q.nbytes) == q4);
    const GgufTensorInfo& q8t = g.tensor("blk.0.ffn_up.weight");
    REQUIRE(q8t.nbytes == 68);
    REQUIRE(std::string(reinterpret_cast<const char*>(q8t.data), q8t.nbytes) == q8);
    uint64_t expected_offset = 0;
    for (const GgufTensorInfo& t : g.tensors) {  // contiguous, each padded to 32
      REQUIRE(t.offset == expected_offset);
      expected_offset += (t.nbytes + 31) / 32 * 32;
    }
    REQUIRE(g.tensor("output_norm.weight").ne == std::vector<int64_t>{3, 5});
    REQUIRE(test::same_bits(g.tensor_view("output_norm.weight"), wf.transpose(0, 1)));
    REQUIRE(test::same_bits(g.tensor_view("half"), h));
    REQUIRE(g.tensor_view("ints").data<int32_t>()[0] == -5);
    REQUIRE_THROWS_WITH(g.tensor_view("blk.0.attn_q.weight"), Catch::Contains("is Q4_0; a Tensor view needs"));
    REQUIRE_THROWS_WITH(g.tensor("nope"), Catch::Contains("no tensor 'nope'"));
  }
  // A view keeps the mapped file alive after the GgufFile is gone.
  Tensor kept = read_gguf(path).tensor_view("output_norm.weight");
  REQUIRE(test::same_bits(kept, wf.transpose(0, 1)));
  remove_tree(dir);
}

TEST_CASE("gguf byte layout of a small file, checked by hand against docs/gguf.md", "[gguf]") {
  GgufWriter w;
  w.set_u32("a", 7);
  w.add_tensor("t", GgmlType::F32, {2}, bytes_of({1.0f, 2.0f}));
  std::string expected = std::string("GGUF", 4) +
                         std::string("\x03\0\0\0", 4) +                   // version 3
                         std::string("\x01\0\0\0\0\0\0\0", 8) +           // n_tensors = 1 (u64)
                         std::string("\x01\0\0\0\0\0\0\0", 8) +           // n_kv = 1 (u64)
                         std::string("\x01\0\0\0\0\0\0\0" "a", 9) +       // key: u64 length + bytes
                         std::string("\x04\0\0\0", 4) +                   // GGUF_TYPE_UINT32
                         std::string("\x07\0\0\0", 4) +                   // 7
                         std::string("\x01\0\0\0\0\0\0\0" "t", 9) +       // tensor name
                         std::string("\x01\0\0\0", 4) +                   // n_dims = 1 (u32)
                         std::string("\x02\0\0\0\0\0\0\0", 8) +           // ne[0] = 2 (u64)
                         std::string("\0\0\0\0", 4) +                     // GGML_TYPE_F32
                         std::string("\0\0\0\0\0\0\0\0", 8);              // offset 0 (u64)
  REQUIRE(expected.size() == 74);
  expected += std::string(96 - 74, '\0');                                  // pad to the alignment 32
  expected += std::string("\0\0\x80\x3f\0\0\0\x40", 8);                  // 1.0f, 2.0f
  expected += std::string(128 - 104, '\0');                                // the last tensor is padded too
  REQUIRE(w.serialize() == expected);
  GgufFile g = parse_gguf(expected);
  REQUIRE(g.data_offset == 96);
  REQUIRE(g.get_u32("a") == 7);

  // general.alignment changes the padding, and must be a u32 power of two.
  GgufWriter w64;
  w64.set_u32("general.alignment", 64);
  w64.add_tensor("t", GgmlType::F32, {2}, bytes_of({1.0f, 2.0f}));
  std::string s64 = w64.serialize();
  REQUIRE(s64.size() % 64 == 0);
  GgufFile g64 = parse_gguf(s64);
  REQUIRE(g64.alignment == 64);
  REQUIRE(g64.data_offset % 64 == 0);
  REQUIRE_THROWS_WITH(w64.set_u64("general.alignment", 64), Catch::Contains("general.alignment must be u32"));
  REQUIRE_THROWS_WITH(w64.set_u32("general.alignment", 48), Catch::Contains("power of two"));
  // A file without tensors has no data section to align.
  GgufWriter w0;
  w0.set_string("general.name", "x");
  REQUIRE(parse_gguf(w0.serialize()).tensors.empty());
}

TEST_CASE("gguf writer refuses what llama.cpp would refuse", "[gguf]") {
  GgufWriter w;
  std::string d(18, '\0');
  REQUIRE_THROWS_WITH(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, "abcd"), Catch::Contains("at most 63"));
  REQUIRE_THROWS_WITH(w.add_tensor("", GgmlType::F32, {1}, "abcd"), Catch::Contains("empty tensor name"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType::Q4_0, {16}, d), Catch::Contains("ne[0] = 16 is not a multiple of the Q4_0 block size 32"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType::Q4_0, {32}, d + "x"), Catch::Contains("data is 19 bytes, Q4_0 (32,) needs 18"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType::F32, {1, 1, 1, 1, 1}, "abcd"), Catch::Contains("5 dims"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType::F32, {0}, ""), Catch::Contains("ne[0] = 0"));
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType(4), {32}, d), Catch::Contains("unknown or unsupported"));
  w.add_tensor("q", GgmlType::Q4_0, {32}, d);
  REQUIRE_THROWS_WITH(w.add_tensor("q", GgmlType::Q4_0, {32}, d), Catch::Contains("duplicate tensor name 'q'"));
  REQUIRE_THROWS_WITH(w.set_u32("", 1), Catch::Contains("empty key"));
  REQUIRE_THROWS_WITH(w.set_u32("caf\xc3\xa9", 1), Catch::Contains("non-ASCII"));
  REQUIRE_THROWS_WITH(w.add_tensor("u", Tensor::empty({2}, DType::u8)), Catch::Contains("has no ggml type"));
  REQUIRE(ggml_nbytes(GgmlType::Q8_0, {64, 3}) == 6 * 34);
  REQUIRE(ggml_nbytes(GgmlType::Q4_0, {4096, 4096}) == 4096ull * 128 * 18);
  REQUIRE(ggml_nbytes(GgmlType::Q6_K, {256, 2}) == 2 * 210);
}

TEST_CASE("gguf loader rejects every truncated prefix of a valid file", "[gguf]") {
  std::string full = Spec().build();
  REQUIRE(parse_error(full).empty());
  for (size_t n = 0; n < full.size(); n++) {
    std::string msg = parse_error(full.substr(0, n));
    INFO("prefix of " << n << " bytes: " << msg);
    REQUIRE_FALSE(msg.empty());
    REQUIRE(msg.rfind("m.gguf: ", 0) == 0);
    REQUIRE(msg.find('\n') == std::string::npos);
  }
  // Also a file from the writer with every kind of value.
  GgufWriter w;
  w.set_string("s", "str");
  w.set_arr_string("as", {"x", "yz"});
  w.set_arr_f32("af", {1, 2});
  w.set_bool("b", false);
  w.add_tensor("t", GgmlType::Q8_0, {32}, std::string(34, '\x7f'));
  std::string f2 = w.serialize();
  for (size_t n = 0; n < f2.size(); n++) REQUIRE_THROWS_AS(parse_gguf(f2.substr(0, n)), Error);
  REQUIRE_NOTHROW(parse_gguf(f2 + "trailing bytes are ignored, as llama.cpp does"));
}

TEST_CASE("gguf loader rejects corrupted fields with a message naming the field", "[gguf]") {
  using Catch::Contains;
  REQUIRE(err([](Spec&) {}).empty());
  // Header.
  CHECK_THAT(err([](Spec& s) { s.magic = "GGUX"; }), Contains("m.gguf: magic: got 'GGUX', expected 'GGUF'"));
  CHECK_THAT(err([](Spec& s) { s.version = 1; }), Contains("m.gguf: version: 1, expected 3 (or 2)"));
  CHECK_THAT(err([](Spec& s) { s.version = 4; }), Contains("version: 4, expected 3"));
  CHECK_THAT(err([](Spec& s) { s.version = 0x03000000; }), Contains("big-endian"));
  CHECK(err([](Spec& s) { s.version = 2; }).empty());
  CHECK_THAT(err([](Spec& s) { s.n_tensors = int64_t(1) << 60; }), Contains("m.gguf: n_tensors: 1152921504606846976 tensor infos cannot fit"));
  CHECK_THAT(err([](Spec& s) { s.n_kv = int64_t(1) << 62; }), Contains("m.gguf: n_kv: 4611686018427387904 key-value pairs cannot fit"));
  CHECK_FALSE(err([](Spec& s) { s.n_kv = 4; }).empty());  // reads tensor infos as a key-value pair
  // Key-value pairs.
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.u64(1ull << 40); }; s.kv_count = 1; }),
             Contains("key 0: length 1099511627776 exceeds the limit of 65535"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(8).u64(1ull << 40); }; s.kv_count = 1; }),
             Contains("key 'k' string: truncated"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("").u32(4).u32(1); }; s.kv_count = 1; }), Contains("key 0: empty key"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("a\nb").u32(4).u32(1); }; s.kv_count = 1; }),
             Contains("key 'a\\nb' has a non-printable"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(4).u32(1).str("k").u32(4).u32(2); }; s.kv_count = 2; }),
             Contains("key 'k': duplicate key"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(13).u32(1); }; s.kv_count = 1; }),
             Contains("key 'k': unknown value type 13"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(9).u32(77).u64(1).u32(0); }; s.kv_count = 1; }),
             Contains("key 'k': unknown array element type 77"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(9).u32(9).u64(1).u32(4).u64(1).u32(0); }; s.kv_count = 1; }),
             Contains("key 'k': arrays of arrays are not supported"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(9).u32(4).u64(1ull << 61); }; s.kv_count = 1; }),
             Contains("key 'k': array length 2305843009213693952 of u32 does not fit"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(9).u32(8).u64(2).str("x").u64(999999); }; s.kv_count = 1; }),
             Contains("key 'k'[1]: truncated"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("k").u32(7).raw("\x02"); }; s.kv_count = 1; }),
             Contains("key 'k': bool value 2, expected 0 or 1"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("general.alignment").u64(10).u64(32); }; s.kv_count = 1; }),
             Contains("key 'general.alignment': is u64, expected u32"));
  CHECK_THAT(err([](Spec& s) { s.kvs = [](B& b) { b.str("general.alignment").u32(4).u32(48); }; s.kv_count = 1; }),
             Contains("key 'general.alignment': 48 is not a power of two"));
  CHECK(err([](Spec& s) { s.kvs = [](B& b) { b.str("general.alignment").u32(4).u32(64); }; s.kv_count = 1; s.alignment = 64; s.offset1 = 64; }).empty());
  // Tensor infos.
  CHECK_THAT(err([](Spec& s) { s.name1 = "t0"; }), Contains("tensor 't0': duplicate tensor name"));
  CHECK_THAT(err([](Spec& s) { s.name0 = std::string(64, 'x'); }), Contains("tensor 0: tensor name 'xxx"));
  CHECK_THAT(err([](Spec& s) { s.name0 = ""; }), Contains("tensor 0: empty tensor name"));
  CHECK_THAT(err([](Spec& s) { s.n_dims0 = 5; s.ne0 = {32, 2, 1, 1, 1}; }), Contains("tensor 't0': n_dims = 5, expected 1..4"));
  CHECK_THAT(err([](Spec& s) { s.n_dims0 = 0; s.ne0 = {}; }), Contains("tensor 't0': n_dims = 0"));
  CHECK_THAT(err([](Spec& s) { s.ne0 = {32, 0}; }), Contains("tensor 't0': ne[1] = 0, expected >= 1"));
  CHECK_THAT(err([](Spec& s) { s.ne0 = {1ull << 32, 1ull << 31}; }), Contains("tensor 't0': ne[1] = 2147483648 makes the element count overflow"));
  CHECK_THAT(err([](Spec& s) { s.ne0 = {~0ull, 1}; }), Contains("tensor 't0': ne[0] = 18446744073709551615 makes the element count overflow"));
  CHECK_THAT(err([](Spec& s) { s.ne0 = {48, 2}; }), Contains("tensor 't0': ne[0] = 48 is not a multiple of the Q4_0 block size 32"));
  CHECK_THAT(err([](Spec& s) { s.type0 = 4; }), Contains("tensor 't0': unknown or unsupported ggml type 4"));
  CHECK_THAT(err([](Spec& s) { s.type0 = 1000; }), Contains("unknown or unsupported ggml type 1000"));
  // Offsets: aligned, contiguous in tensor-info order, inside the file.
  CHECK_THAT(err([](Spec& s) { s.offset1 = 40; }), Contains("tensor 't1': offset 40 is not a multiple of the alignment 32"));
  CHECK_THAT(err([](Spec& s) { s.offset1 = 32; }), Contains("tensor 't1': offset 32 overlaps tensor 't0' (which ends, padded, at 64)"));
  CHECK_THAT(err([](Spec& s) { s.offset1 = 96; }), Contains("tensor 't1': offset 96 leaves a gap: offsets must be contiguous, expected 64"));
  CHECK_THAT(err([](Spec& s) { s.offset0 = 1ull << 62; }), Contains("tensor 't0': offset 4611686018427387904 leaves a gap"));
  CHECK_THAT(err([](Spec& s) { s.ne1 = {1000}; }), Contains("tensor 't1': offset 64: data of 4000 bytes runs past the end of the file"));
  CHECK_THAT(err([](Spec& s) { s.type0 = 0; s.ne0 = {1ull << 40, 2}; }), Contains("tensor 't0': offset 0: data of 8796093022208 bytes runs past"));
  // Hostile names cannot break the one-line error.
  std::string msg = err([](Spec& s) { s.name0 = "a\nb"; s.type0 = 99; });
  CHECK_THAT(msg, Contains("tensor 'a\\nb': unknown"));
  CHECK(msg.find('\n') == std::string::npos);
}

TEST_CASE("gguf: a write error leaves the previous file intact", "[gguf]") {
  std::string dir = tmp_dir();
  std::string path = dir + "/m.gguf";
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.add_tensor("t", Tensor::randn({64, 64}, 9));
  w.write(path);
  std::string before = read_file(path);
  GgufWriter w2 = w;
  w2.set_string("general.name", "second");
  set_write_fault_after(500);
  REQUIRE_THROWS_WITH(w2.write(path), Catch::Contains(path) && Catch::Contains("No space left"));
  set_write_fault_after(-1);
  REQUIRE(read_file(path) == before);
  REQUIRE(read_gguf(path).tensors.size() == 1);
  REQUIRE_THROWS_WITH(read_gguf(dir + "/nope.gguf"), Catch::Contains("cannot read") && Catch::Contains("nope.gguf"));
  remove_tree(dir);
}

TEST_CASE("gguf loads a file written independently from the spec (python)", "[gguf]") {
  // Written by tests/reference/check_formats.py from docs/gguf.md alone. Regenerate:
  //   /usr/bin/python3 tests/reference/check_formats.py write tests/reference/fixtures
  std::string dir = std::string(__FILE__).substr(0, std::string(__FILE__).rfind('/'));
  GgufFile g = read_gguf(dir + "/reference/fixtures/python_written.gguf");
  REQUIRE(g.version == 3);
  REQUIRE(g.get_string("general.architecture") == "llama");
  REQUIRE(g.get_u32("llama.context_length") == 64);
  REQUIRE(g.get_f32("llama.attention.layer_norm_rms_epsilon") == 1e-5f);
  REQUIRE(g.get_arr_string("tokenizer.ggml.tokens") == std::vector<std::string>{"a", "\xc4\xa0" "b", ""});
  REQUIRE(g.get_arr_i32("tokenizer.ggml.token_type") == std::vector<int32_t>{1, 1, 3});
  REQUIRE(g.get_arr_bool("t.bools") == std::vector<bool>{true, false});
  REQUIRE(g.get_i64("t.i64") == -5);
  const GgufTensorInfo& q = g.tensor("blk.0.attn_q.weight");
  REQUIRE((q.type == GgmlType::Q4_0 && q.ne == std::vector<int64_t>{64, 1} && q.nbytes == 36));
  for (int i = 0; i < 36; i++) REQUIRE(q.data[i] == uint8_t((i * 13) & 0xff));
  Tensor w = g.tensor_view("w");
  REQUIRE(w.shape() == Shape{2, 3});
  REQUIRE(w.to_vector() == std::vector<float>{0, 1, 2, 3, 4, 5});
  // And our writer produces the same bytes from the same content.
  GgufWriter ours;
  ours.set_string("general.architecture", "llama");
  ours.set_u32("llama.context_length", 64);
  ours.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  ours.set_arr_string("tokenizer.ggml.tokens", {"a", "\xc4\xa0" "b", ""});
  ours.set_arr_i32("tokenizer.ggml.token_type", {1, 1, 3});
  ours.set_arr_bool("t.bools", {true, false});
  ours.set_i64("t.i64", -5);
  ours.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_0, {64, 1}, std::string(reinterpret_cast<const char*>(q.data), 36));
  ours.add_tensor("w", Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5}));
  REQUIRE(ours.serialize() == read_file(dir + "/reference/fixtures/python_written.gguf"));
}
