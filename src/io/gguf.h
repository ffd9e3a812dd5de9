// GGUF v3, the deployable model format (ggml docs/gguf.md; reader and writer checked against llama.cpp
// ggml/src/gguf.cpp). Little-endian layout:
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x  { string key | u32 value type | value }          string = u64 length + bytes (no NUL)
//                                                             array  = u32 elem type + u64 count + elems
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   zero padding to `general.alignment` (u32 key, default 32)
//   tensor data: tensor i at data_start + offset_i; offsets contiguous in tensor-info order, each
//   tensor padded with zeros to the alignment (the last one too).
// Dimensions are in ggml order: ne[0] is the contiguous one (a row-major (N, K) matrix is ne = {K, N}).
// Quantized tensor data (Q4_0, Q8_0, ...) is opaque bytes here; src/quant owns its meaning.
// Read next: safetensors.h (the training checkpoint format), src/quant (what the blocks hold).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/tensor.h"
#include "src/io/mapped_file.h"

namespace qat {

// Metadata value types (gguf_type in ggml).
enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
const char* gguf_type_name(GgufType t);  // "u32", "string", "array", ...

// Tensor element types (ggml_type). Only types whose byte size we can compute are listed; the i-quants
// and removed types are rejected by the reader.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
};
struct GgmlTypeInfo {
  const char* name;      // "Q4_0"
  uint32_t block_elems;  // elements per block (1 for plain types; 32 for Q4_0/Q8_0; 256 for k-quants)
  uint32_t block_bytes;  // bytes per block (Q4_0: 18 = f16 d + 16 bytes of nibbles; Q8_0: 34)
};
const GgmlTypeInfo* ggml_type_info(uint32_t type);  // nullptr when unknown/unsupported
// Byte size of a tensor of `type` with dims `ne` (ggml order). Throws when ne[0] is not a multiple of
// the block size, a dim is < 1, or the size overflows.
uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne);

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr size_t kGgufMaxDims = 4;
constexpr size_t kGgufMaxNameLen = 63;  // llama.cpp: name.length() < GGML_MAX_NAME (64)
constexpr size_t kGgufMaxKeyLen = 65535;

// One metadata value: a scalar, a string, or an array of one element type (arrays of arrays are not
// supported, as in llama.cpp). Numbers and bools are kept as little-endian bytes.
struct GgufValue {
  GgufType type = GgufType::u8;       // GgufType::array for arrays
  GgufType elem_type = GgufType::u8;  // element type of an array (== type for scalars)
  uint64_t count = 1;                 // elements (1 for scalars)
  std::string raw;                    // count * size bytes for numbers and bools
  std::vector<std::string> strings;   // the string, or an array's strings
};
struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // ggml order: ne[0] contiguous; 1..4 dims, each >= 1
  uint64_t offset = 0;      // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the file's bytes (valid while the GgufFile lives)

  int64_t numel() const;
  // Shape in our row-major order (ne reversed): ne = {K, N} -> (N, K).
  Shape shape() const;
};

struct GgufFile {
  std::string path;  // names the file in errors
  uint32_t version = 3;
  uint32_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;  // start of the data section in the file
  std::vector<GgufKv> kv;                // file order
  std::vector<GgufTensorInfo> tensors;   // file order
  std::shared_ptr<Bytes> bytes;          // the whole file (mmap), kept alive by this and by views

  // ---- metadata ----
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed getters: throw "<path>: missing key 'k' (expected u32)" or
  // "<path>: key 'k' is u64, expected u32". No conversions between types (llama.cpp has none either).
  uint8_t get_u8(std::string_view key) const;
  int8_t get_i8(std::string_view key) const;
  uint16_t get_u16(std::string_view key) const;
  int16_t get_i16(std::string_view key) const;
  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  // Arrays: "key 'k' is array of i32, expected array of string".
  const std::vector<std::string>& get_arr_string(std::string_view key) const;
  std::vector<int32_t> get_arr_i32(std::string_view key) const;
  std::vector<uint32_t> get_arr_u32(std::string_view key) const;
  std::vector<int64_t> get_arr_i64(std::string_view key) const;
  std::vector<float> get_arr_f32(std::string_view key) const;
  std::vector<uint8_t> get_arr_u8(std::string_view key) const;
  std::vector<bool> get_arr_bool(std::string_view key) const;

  // ---- tensors ----
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  const GgufTensorInfo& tensor(std::string_view name) const;       // throws "<path>: no tensor 'x'"
  // A Tensor viewing the data in place (F32, F16, I8, I32 only; shape in row-major order), sharing
  // ownership of the file's bytes. Writes go to private copy-on-write pages, never to the file.
  Tensor tensor_view(std::string_view name) const;
};

// Reads and validates a GGUF file (memory-mapped). Every rejection is one line
// "<path>: <field>: <problem>". Checked: magic; version 2 or 3 (2 has the same layout and llama.cpp
// reads it; 1 and >3 are rejected; a byte-swapped version is called out as big-endian); n_tensors and
// n_kv against the bytes left (each entry has a minimum size); every string's length against the bytes
// left; keys non-empty, ASCII, <= 65535 bytes, unique; value types known, arrays of a known non-array
// type with a count that fits the bytes left; bools 0 or 1; general.alignment a u32 power of two;
// tensor names non-empty, <= 63 bytes, unique; 1 <= n_dims <= 4; every ne >= 1 and the element
// count < 2^63; type known; ne[0] a multiple of the block size; byte size without overflow; offsets
// exactly contiguous in tensor-info order with each tensor padded to the alignment (as llama.cpp
// requires); the data section, padded, within the file.
GgufFile read_gguf(const std::string& path);
// The same checks on an in-memory copy of `bytes`; `name` stands for the path in errors.
GgufFile parse_gguf(std::string_view bytes, const std::string& name = "<buffer>");

// Builds a GGUF v3 file. KVs and tensors are written in the order they were first added; setting a key
// again replaces its value in place. general.alignment, if set, must be a u32 power of two and is used
// for padding. Tensor data is copied in (pass an rvalue to move it).
class GgufWriter {
 public:
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_arr_u8(const std::string& key, const std::vector<uint8_t>& v);
  void set_arr_i8(const std::string& key, const std::vector<int8_t>& v);
  void set_arr_u16(const std::string& key, const std::vector<uint16_t>& v);
  void set_arr_i16(const std::string& key, const std::vector<int16_t>& v);
  void set_arr_u32(const std::string& key, const std::vector<uint32_t>& v);
  void set_arr_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_arr_u64(const std::string& key, const std::vector<uint64_t>& v);
  void set_arr_i64(const std::string& key, const std::vector<int64_t>& v);
  void set_arr_f32(const std::string& key, const std::vector<float>& v);
  void set_arr_f64(const std::string& key, const std::vector<double>& v);
  void set_arr_bool(const std::string& key, const std::vector<bool>& v);
  void set_arr_string(const std::string& key, const std::vector<std::string>& v);
  // Any value, e.g. one copied from a GgufFile (checked for consistency: count, raw size, strings).
  void set_value(const std::string& key, const GgufValue& v);

  // `ne` in ggml order (ne[0] contiguous); `data` must hold exactly ggml_nbytes(type, ne) bytes.
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne, std::string data);
  // A Tensor of our own (F32, F16, s8 -> I8, s32 -> I32; any strides), dims reversed into ggml order.
  void add_tensor(const std::string& name, const Tensor& t);

  uint32_t alignment() const { return alignment_; }
  std::string serialize() const;            // the whole file in memory (tests, seeds)
  void write(const std::string& path) const;  // atomic (file.h): the old file survives any error

 private:
  struct PendingTensor {
    GgufTensorInfo info;
    std::string data;
  };
  void set(const std::string& key, GgufValue v);
  std::string meta_bytes() const;  // everything before the data section
  std::vector<GgufKv> kv_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = kGgufDefaultAlignment;
};

}  // namespace qat
