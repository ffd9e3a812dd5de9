// Writes the seed corpora in tests/fuzz/corpus/<target>/ (committed; rerun with `make fuzz-seeds` after
// a format change). Each seed is a small valid file that exercises a different part of its format.
#include <cstdio>
#include <string>

#include "src/io/file.h"
#include "src/io/gguf.h"
#include "src/io/safetensors.h"

using namespace qat;

static std::string dir = "tests/fuzz/corpus/";

static void put(const std::string& name, const std::string& bytes) {
  write_file_atomic(dir + name, bytes);
  std::printf("%-45s %6zu bytes\n", name.c_str(), bytes.size());
}

static Tensor f16_tensor(const Shape& s) {
  Tensor t = Tensor::empty(s, DType::f16);
  for (int64_t i = 0; i < t.numel(); i++) t.data<uint16_t>()[i] = f32_to_f16(0.25f * float(i) - 1.0f);
  return t;
}

static Tensor bytes_tensor(const Shape& s, DType dt) {
  Tensor t = Tensor::empty(s, dt);
  auto* p = static_cast<uint8_t*>(t.impl->storage->data);
  for (size_t i = 0; i < t.nbytes(); i++) p[i] = uint8_t(i * 37 + 11);
  return t;
}

int main() {
  // ---- safetensors ----
  put("safetensors/all_dtypes.safetensors",
      serialize_safetensors({{"model.embed_tokens.weight", Tensor::from({2, 3}, {1, -2, 3.5f, 0, 1e-3f, -1e6f})},
                             {"half", f16_tensor({4})},
                             {"codes", bytes_tensor({3}, DType::s8)},
                             {"bytes", bytes_tensor({2}, DType::u8)},
                             {"ints", Tensor::from_s32({2, 1}, {-7, 1 << 20})},
                             {"scalar", Tensor::from({}, {2.0f})},
                             {"empty", Tensor::empty({0, 3})}},
                            {{"step", "12"}, {"note", "a \"quoted\" \\ value\n"}}));
  put("safetensors/no_tensors.safetensors", serialize_safetensors({}));
  put("safetensors/one_f32.safetensors", serialize_safetensors({{"x", Tensor::from({2, 2}, {1, 2, 3, 4})}}));
  // Bytes written by the reference implementation (huggingface/safetensors tensor.rs unit tests).
  std::string ref = std::string("\x40\0\0\0\0\0\0\0", 8) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  for (float f : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) ref.append(reinterpret_cast<const char*>(&f), 4);
  put("safetensors/reference_serialization.safetensors", ref);
  put("safetensors/reference_metadata.safetensors",
      std::string("\x28\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  // ---- gguf ----
  {
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u32("llama.context_length", 256);
    w.set_u32("llama.embedding_length", 64);
    w.set_u32("llama.block_count", 1);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_arr_string("tokenizer.ggml.tokens", {"a", "b", "\xc4\xa0the"});
    w.set_arr_i32("tokenizer.ggml.token_type", {1, 1, 1});
    w.set_arr_string("tokenizer.ggml.merges", {"a b"});
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    w.add_tensor("token_embd.weight", GgmlType::Q8_0, {32, 3}, std::string(3 * 34, '\x05'));
    w.add_tensor("blk.0.attn_q.weight", GgmlType::Q4_0, {64, 2}, std::string(2 * 2 * 18, '\x88'));
    w.add_tensor("output_norm.weight", Tensor::from({5}, {1, 1, 1, 0.5f, 2}));
    put("gguf/llama_like.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_u8("u8", 1); w.set_i8("i8", -1); w.set_u16("u16", 2); w.set_i16("i16", -2); w.set_u32("u32", 3);
    w.set_i32("i32", -3); w.set_u64("u64", 4); w.set_i64("i64", -4); w.set_f32("f32", 0.5f); w.set_f64("f64", 0.25);
    w.set_bool("bool", true); w.set_string("string", "s");
    w.set_arr_u8("au8", {1, 2}); w.set_arr_i8("ai8", {-1}); w.set_arr_u16("au16", {3}); w.set_arr_i16("ai16", {-3});
    w.set_arr_u32("au32", {4}); w.set_arr_i32("ai32", {-4}); w.set_arr_u64("au64", {5}); w.set_arr_i64("ai64", {-5});
    w.set_arr_f32("af32", {1.5f}); w.set_arr_f64("af64", {2.5}); w.set_arr_bool("abool", {true, false});
    w.set_arr_string("astring", {"x", ""});
    w.add_tensor("f16", f16_tensor({2, 2}));
    w.add_tensor("i8", bytes_tensor({3}, DType::s8));
    w.add_tensor("i32", Tensor::from_s32({1}, {9}));
    put("gguf/all_types.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_u32("general.alignment", 64);
    w.add_tensor("a", Tensor::from({3}, {1, 2, 3}));
    w.add_tensor("b", GgmlType::Q4_0, {32}, std::string(18, '\x01'));
    put("gguf/align64.gguf", w.serialize());
  }
  {
    GgufWriter w;
    w.set_string("general.name", "no tensors");
    put("gguf/no_tensors.gguf", w.serialize());
    GgufWriter v2;
    v2.add_tensor("k", GgmlType::Q6_K, {256}, std::string(210, '\x02'));
    std::string s = v2.serialize();
    s[4] = 2;  // version 2: same layout
    put("gguf/version2_q6k.gguf", s);
  }

  // ---- json ----
  put("json/safetensors_header.json",
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})");
  put("json/config.json", R"({
  "preset": "small", "vocab": 1024, "context": 256, "layers": 4, "d_model": 128, "heads": 4,
  "kv_heads": 2, "ffn": 384, "rms_eps": 1e-05, "rope_base": 10000.0, "tied": true,
  "rope_layout": "adjacent_pairs", "lr": 0.0003, "notes": null, "list": [1, -2, 3.5, [], {}]
})");
  put("json/strings.json", R"(["plain", "esc \" \\ \/ \b \f \n \r \t", "\u00e9\u4e2d\ud83d\ude00", "raw é"])");
  put("json/numbers.json", "[0, -0, 1e308, -1.5e-308, 18446744073709551615, -9223372036854775808, 123456789012345678901234]");
  put("json/nested.json", "[[[[[[[[[[{\"a\":[{\"b\":[]}]}]]]]]]]]]]");
  return 0;
}
