// GGUF reader (hostile input) and writer (see gguf.h). The reader walks the file with a cursor that
// checks every read against the bytes left and names the field it was reading, so that a truncated or
// corrupted file fails with one line saying where. Rules follow llama.cpp's gguf_init_from_reader
// (ggml/src/gguf.cpp), a little stricter where the spec (docs/gguf.md) is.
#include "src/io/gguf.h"

#include <bit>
#include <cstring>
#include <set>
#include <unordered_set>

#include "src/io/file.h"
#include "src/io/format_util.h"
#include "src/util/error.h"

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace qat {

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;
constexpr uint64_t kNoLimit = ~uint64_t(0);  // a string bounded only by the bytes left
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;              // key length, 1-byte key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, one ne, type, offset

// Byte size of one element of a scalar value type; 0 for string and array.
uint64_t value_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    case GgufType::string: case GgufType::array: return 0;
  }
  return 0;
}

bool known_value_type(uint32_t t) { return t <= uint32_t(GgufType::f64); }

std::string value_type_str(const GgufValue& v) {
  if (v.type == GgufType::array) return str("array of ", gguf_type_name(v.elem_type));
  return gguf_type_name(v.type);
}

bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

// Key rule (docs/gguf.md): ASCII, at most 65535 bytes; llama.cpp also rejects empty keys.
// Returns an empty string when fine, else what is wrong.
std::string key_problem(std::string_view key) {
  if (key.empty()) return "empty key";
  if (key.size() > kGgufMaxKeyLen) return str("key of ", key.size(), " bytes, at most ", kGgufMaxKeyLen);
  for (size_t i = 0; i < key.size(); i++) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c > 0x7e) return str("key ", fmt::quote(key), " has a non-printable or non-ASCII byte at ", i);
  }
  return "";
}

std::string name_problem(std::string_view name) {
  if (name.empty()) return "empty tensor name";
  if (name.size() > kGgufMaxNameLen)
    return str("tensor name ", fmt::quote(name), " is ", name.size(), " bytes, at most ", kGgufMaxNameLen);
  return "";
}

// Bounds-checked little-endian cursor over the file. `field` callables build the error text only
// when a read fails.
struct Cursor {
  const uint8_t* p;
  uint64_t size;
  uint64_t pos = 0;
  const std::string& file;

  uint64_t left() const { return size - pos; }

  template <class F>
  void need(uint64_t n, F&& field) {
    if (n > left())
      fail(file, ": ", field(), ": truncated (needs ", n, " bytes at offset ", pos, ", file is ", size, " bytes)");
  }
  template <class T, class F>
  T read(F&& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  template <class F>
  std::string read_string(F&& field, uint64_t max_len) {
    uint64_t len = read<uint64_t>([&] { return field() + " length"; });
    if (len > max_len) fail(file, ": ", field(), ": length ", len, " exceeds the limit of ", max_len);
    need(len, field);
    std::string s(reinterpret_cast<const char*>(p + pos), size_t(len));
    pos += len;
    return s;
  }
};

void read_value(Cursor& c, const std::string& key, GgufValue& v) {
  auto field = [&] { return str("key ", fmt::quote(key)); };
  uint32_t t = c.read<uint32_t>([&] { return field() + " value type"; });
  if (!known_value_type(t)) fail(c.file, ": ", field(), ": unknown value type ", t);
  v.type = v.elem_type = GgufType(t);
  v.count = 1;
  if (v.type == GgufType::array) {
    uint32_t et = c.read<uint32_t>([&] { return field() + " array element type"; });
    if (!known_value_type(et)) fail(c.file, ": ", field(), ": unknown array element type ", et);
    if (GgufType(et) == GgufType::array)
      fail(c.file, ": ", field(), ": arrays of arrays are not supported (llama.cpp rejects them)");
    v.elem_type = GgufType(et);
    v.count = c.read<uint64_t>([&] { return field() + " array length"; });
    uint64_t min_each = v.elem_type == GgufType::string ? 8 : value_size(v.elem_type);
    if (v.count > c.left() / min_each)
      fail(c.file, ": ", field(), ": array length ", v.count, " of ", gguf_type_name(v.elem_type),
           " does not fit in the ", c.left(), " bytes left");
  }
  if (v.elem_type == GgufType::string) {
    for (uint64_t i = 0; i < v.count; i++) {
      v.strings.push_back(c.read_string(
          [&] { return v.type == GgufType::array ? str(field(), "[", i, "]") : field() + " string"; }, kNoLimit));
    }
    return;
  }
  uint64_t n = v.count * value_size(v.elem_type);  // cannot overflow: count <= left / size
  c.need(n, [&] { return field() + " value"; });
  v.raw.assign(reinterpret_cast<const char*>(c.p + c.pos), size_t(n));
  c.pos += n;
  if (v.elem_type == GgufType::boolean) {
    for (uint64_t i = 0; i < n; i++)
      if (uint8_t(v.raw[i]) > 1) fail(c.file, ": ", field(), ": bool value ", int(uint8_t(v.raw[i])), ", expected 0 or 1");
  }
}

void read_tensor_info(Cursor& c, uint64_t index, GgufTensorInfo& ti) {
  auto id = [&] { return str("tensor ", index); };
  ti.name = c.read_string([&] { return id() + " name"; }, kNoLimit);
  std::string problem = name_problem(ti.name);
  if (!problem.empty()) fail(c.file, ": ", id(), ": ", problem);
  auto field = [&] { return str("tensor ", fmt::quote(ti.name)); };
  uint32_t n_dims = c.read<uint32_t>([&] { return field() + " n_dims"; });
  if (n_dims < 1 || n_dims > kGgufMaxDims)
    fail(c.file, ": ", field(), ": n_dims = ", n_dims, ", expected 1..", kGgufMaxDims);
  uint64_t numel = 1;
  for (uint32_t j = 0; j < n_dims; j++) {
    uint64_t ne = c.read<uint64_t>([&] { return str(field(), " ne[", j, "]"); });
    if (ne == 0) fail(c.file, ": ", field(), ": ne[", j, "] = 0, expected >= 1");
    if (!fmt::mul_u64(numel, ne, &numel) || numel > uint64_t(INT64_MAX))
      fail(c.file, ": ", field(), ": ne[", j, "] = ", ne, " makes the element count overflow int64");
    ti.ne.push_back(int64_t(ne));
  }
  uint32_t type = c.read<uint32_t>([&] { return field() + " type"; });
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info) fail(c.file, ": ", field(), ": unknown or unsupported ggml type ", type);
  ti.type = GgmlType(type);
  if (uint64_t(ti.ne[0]) % info->block_elems)
    fail(c.file, ": ", field(), ": ne[0] = ", ti.ne[0], " is not a multiple of the ", info->name, " block size ",
         info->block_elems);
  if (!fmt::mul_u64(numel / info->block_elems, info->block_bytes, &ti.nbytes))
    fail(c.file, ": ", field(), ": byte size overflows 64 bits");
  ti.offset = c.read<uint64_t>([&] { return field() + " offset"; });
}

// Magic and version; returns the version.
uint32_t read_header(Cursor& c) {
  c.need(4, [] { return std::string("magic"); });
  if (std::memcmp(c.p, kMagic, 4) != 0) {
    std::string got;
    for (int i = 0; i < 4; i++) got += (c.p[i] >= 0x20 && c.p[i] < 0x7f) ? char(c.p[i]) : '?';
    fail(c.file, ": magic: got '", got, "', expected 'GGUF' (not a GGUF file)");
  }
  c.pos = 4;
  const uint32_t version = c.read<uint32_t>([] { return std::string("version"); });
  if (version != 0 && (version & 0xffffu) == 0)
    fail(c.file, ": version: ", version, " looks byte-swapped; big-endian GGUF files are not supported");
  if (version != 2 && version != 3) fail(c.file, ": version: ", version, ", expected 3 (or 2)");
  return version;
}

// The two counts, refused when their smallest possible encodings cannot fit in the bytes left.
void read_counts(Cursor& c, uint64_t* n_tensors, uint64_t* n_kv) {
  *n_tensors = c.read<uint64_t>([] { return std::string("n_tensors"); });
  *n_kv = c.read<uint64_t>([] { return std::string("n_kv"); });
  if (*n_tensors > c.left() / kMinTensorInfoBytes)
    fail(c.file, ": n_tensors: ", *n_tensors, " tensor infos cannot fit in the ", c.left(), " bytes left");
  if (*n_kv > c.left() / kMinKvBytes)
    fail(c.file, ": n_kv: ", *n_kv, " key-value pairs cannot fit in the ", c.left(), " bytes left");
  if (*n_tensors * kMinTensorInfoBytes + *n_kv * kMinKvBytes > c.left())
    fail(c.file, ": n_kv: ", *n_kv, " key-value pairs and ", *n_tensors, " tensor infos cannot fit in the ", c.left(),
         " bytes left");
}

// Containers grow as entries are parsed, never reserved from the counts, so memory stays
// proportional to the bytes actually present.
void read_kvs(Cursor& c, uint64_t n_kv, GgufFile& g) {
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; i++) {
    GgufKv kv;
    kv.key = c.read_string([&] { return str("key ", i); }, kGgufMaxKeyLen);
    std::string problem = key_problem(kv.key);
    if (!problem.empty()) fail(c.file, ": key ", i, ": ", problem);
    if (!keys.insert(kv.key).second) fail(c.file, ": key ", fmt::quote(kv.key), ": duplicate key");
    read_value(c, kv.key, kv.value);
    g.kv.push_back(std::move(kv));
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    if (a->type != GgufType::u32)
      fail(c.file, ": key 'general.alignment': is ", value_type_str(*a), ", expected u32");
    uint32_t al;
    std::memcpy(&al, a->raw.data(), 4);
    if (!is_pow2(al)) fail(c.file, ": key 'general.alignment': ", al, " is not a power of two");
    // A writer pads the header and every tensor to it: 2^30 made a 1 GiB string of zeros (found by the
    // fuzz smoke). Files in use say 32; 1 MiB leaves room and bounds what a file can make us allocate.
    if (al > (1u << 20)) fail(c.file, ": key 'general.alignment': ", al, " is larger than 1048576, the largest accepted");
    g.alignment = al;
  }
}

void read_tensor_infos(Cursor& c, uint64_t n_tensors, GgufFile& g) {
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; i++) {
    GgufTensorInfo ti;
    read_tensor_info(c, i, ti);
    if (!names.insert(ti.name).second) fail(c.file, ": tensor ", fmt::quote(ti.name), ": duplicate tensor name");
    g.tensors.push_back(std::move(ti));
  }
}

// The data section starts at the next multiple of the alignment (llama.cpp seeks there only when
// there are tensors); offsets must be exactly contiguous, each tensor padded to the alignment.
void place_tensors(const Cursor& c, GgufFile& g) {
  const std::string& file = c.file;
  uint64_t start = c.pos;
  if (!g.tensors.empty() && (!fmt::align_up(c.pos, g.alignment, &start) || start > c.size))
    fail(file, ": data section: padding to the alignment ", g.alignment, " runs past the end of the file (",
         c.size, " bytes)");
  g.data_offset = start;
  uint64_t room = c.size - start, expected = 0;
  const GgufTensorInfo* prev = nullptr;
  for (GgufTensorInfo& t : g.tensors) {
    std::string where = str(file, ": tensor ", fmt::quote(t.name), ": offset ", t.offset);
    if (t.offset % g.alignment) fail(where, " is not a multiple of the alignment ", g.alignment);
    if (t.offset < expected)
      fail(where, " overlaps tensor ", fmt::quote(prev->name), " (which ends, padded, at ", expected, ")");
    if (t.offset > expected)
      fail(where, " leaves a gap: offsets must be contiguous, expected ", expected);
    if (t.nbytes > room || t.offset > room - t.nbytes)
      fail(where, ": data of ", t.nbytes, " bytes runs past the end of the file (", c.size, " bytes)");
    t.data = g.bytes->data() + start + t.offset;
    uint64_t padded;
    if (!fmt::align_up(t.nbytes, g.alignment, &padded) || !fmt::add_u64(expected, padded, &expected))
      fail(where, ": size overflows");
    prev = &t;
  }
  if (expected > room)
    fail(file, ": data section: ", expected, " bytes with padding after the last tensor, but only ", room,
         " bytes are left in the file");
}

GgufFile parse(std::shared_ptr<Bytes> bytes, const std::string& file) {
  GgufFile g;
  g.path = file;
  g.bytes = bytes;
  Cursor c{bytes->data(), bytes->size(), 0, file};
  g.version = read_header(c);
  uint64_t n_tensors = 0, n_kv = 0;
  read_counts(c, &n_tensors, &n_kv);
  read_kvs(c, n_kv, g);
  read_tensor_infos(c, n_tensors, g);
  place_tensors(c, g);
  return g;
}

template <class T>
T scalar(const GgufFile& g, std::string_view key, GgufType want) {
  const GgufValue* v = g.find(key);
  if (!v) fail(g.path, ": missing key ", fmt::quote(key), " (expected ", gguf_type_name(want), ")");
  if (v->type != want) fail(g.path, ": key ", fmt::quote(key), " is ", value_type_str(*v), ", expected ", gguf_type_name(want));
  T x;
  std::memcpy(&x, v->raw.data(), sizeof(T));
  return x;
}

const GgufValue& array_of(const GgufFile& g, std::string_view key, GgufType elem) {
  const GgufValue* v = g.find(key);
  if (!v) fail(g.path, ": missing key ", fmt::quote(key), " (expected array of ", gguf_type_name(elem), ")");
  if (v->type != GgufType::array || v->elem_type != elem)
    fail(g.path, ": key ", fmt::quote(key), " is ", value_type_str(*v), ", expected array of ", gguf_type_name(elem));
  return *v;
}

template <class T>
std::vector<T> array(const GgufFile& g, std::string_view key, GgufType elem) {
  const GgufValue& v = array_of(g, key, elem);
  std::vector<T> out(size_t(v.count));
  if (v.count) std::memcpy(out.data(), v.raw.data(), v.raw.size());
  return out;
}

template <class T>
GgufValue make_scalar(GgufType t, T x) {
  GgufValue v;
  v.type = v.elem_type = t;
  v.raw.assign(reinterpret_cast<const char*>(&x), sizeof(T));
  return v;
}

template <class T>
GgufValue make_array(GgufType t, const std::vector<T>& xs) {
  GgufValue v;
  v.type = GgufType::array;
  v.elem_type = t;
  v.count = xs.size();
  if (!xs.empty()) v.raw.assign(reinterpret_cast<const char*>(xs.data()), xs.size() * sizeof(T));
  return v;
}

template <class T>
void put(std::string& out, T x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof(T));
}
void put_string(std::string& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.append(s);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::u8: return "u8";
    case GgufType::i8: return "i8";
    case GgufType::u16: return "u16";
    case GgufType::i16: return "i16";
    case GgufType::u32: return "u32";
    case GgufType::i32: return "i32";
    case GgufType::f32: return "f32";
    case GgufType::boolean: return "bool";
    case GgufType::string: return "string";
    case GgufType::array: return "array";
    case GgufType::u64: return "u64";
    case GgufType::i64: return "i64";
    case GgufType::f64: return "f64";
  }
  return "?";
}

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  // Block layouts from ggml/src/ggml-common.h (QK_K = 256).
  static const GgmlTypeInfo F32{"F32", 1, 4}, F16{"F16", 1, 2}, Q4_0{"Q4_0", 32, 18}, Q4_1{"Q4_1", 32, 20},
      Q5_0{"Q5_0", 32, 22}, Q5_1{"Q5_1", 32, 24}, Q8_0{"Q8_0", 32, 34}, Q8_1{"Q8_1", 32, 36},
      Q2_K{"Q2_K", 256, 84}, Q3_K{"Q3_K", 256, 110}, Q4_K{"Q4_K", 256, 144}, Q5_K{"Q5_K", 256, 176},
      Q6_K{"Q6_K", 256, 210}, Q8_K{"Q8_K", 256, 292}, I8{"I8", 1, 1}, I16{"I16", 1, 2}, I32{"I32", 1, 4},
      I64{"I64", 1, 8}, F64{"F64", 1, 8}, BF16{"BF16", 1, 2}, TQ1_0{"TQ1_0", 256, 54}, TQ2_0{"TQ2_0", 256, 66};
  switch (GgmlType(type)) {
    case GgmlType::F32: return &F32;
    case GgmlType::F16: return &F16;
    case GgmlType::Q4_0: return &Q4_0;
    case GgmlType::Q4_1: return &Q4_1;
    case GgmlType::Q5_0: return &Q5_0;
    case GgmlType::Q5_1: return &Q5_1;
    case GgmlType::Q8_0: return &Q8_0;
    case GgmlType::Q8_1: return &Q8_1;
    case GgmlType::Q2_K: return &Q2_K;
    case GgmlType::Q3_K: return &Q3_K;
    case GgmlType::Q4_K: return &Q4_K;
    case GgmlType::Q5_K: return &Q5_K;
    case GgmlType::Q6_K: return &Q6_K;
    case GgmlType::Q8_K: return &Q8_K;
    case GgmlType::I8: return &I8;
    case GgmlType::I16: return &I16;
    case GgmlType::I32: return &I32;
    case GgmlType::I64: return &I64;
    case GgmlType::F64: return &F64;
    case GgmlType::BF16: return &BF16;
    case GgmlType::TQ1_0: return &TQ1_0;
    case GgmlType::TQ2_0: return &TQ2_0;
  }
  return nullptr;
}

uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  QAT_CHECK(info, "ggml type ", uint32_t(type), " is unknown or unsupported");
  QAT_CHECK(!ne.empty() && ne.size() <= kGgufMaxDims, "ggml tensor: ", ne.size(), " dims, expected 1..", kGgufMaxDims);
  uint64_t numel = 1;
  for (size_t j = 0; j < ne.size(); j++) {
    QAT_CHECK(ne[j] >= 1, "ggml tensor: ne[", j, "] = ", ne[j], ", expected >= 1");
    QAT_CHECK(fmt::mul_u64(numel, uint64_t(ne[j]), &numel) && numel <= uint64_t(INT64_MAX),
              "ggml tensor: element count overflows int64");
  }
  QAT_CHECK(uint64_t(ne[0]) % info->block_elems == 0, "ggml tensor: ne[0] = ", ne[0], " is not a multiple of the ",
            info->name, " block size ", info->block_elems);
  uint64_t n;
  QAT_CHECK(fmt::mul_u64(numel / info->block_elems, info->block_bytes, &n), "ggml tensor: byte size overflows");
  return n;
}

// ---- GgufTensorInfo / GgufFile ----

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

Shape GgufTensorInfo::shape() const { return Shape(ne.rbegin(), ne.rend()); }

GgufFile read_gguf(const std::string& path) { return parse(Bytes::map_file(path), path); }

GgufFile parse_gguf(std::string_view bytes, const std::string& name) { return parse(Bytes::copy(bytes), name); }

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKv& kv : this->kv)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

uint8_t GgufFile::get_u8(std::string_view k) const { return scalar<uint8_t>(*this, k, GgufType::u8); }
int8_t GgufFile::get_i8(std::string_view k) const { return scalar<int8_t>(*this, k, GgufType::i8); }
uint16_t GgufFile::get_u16(std::string_view k) const { return scalar<uint16_t>(*this, k, GgufType::u16); }
int16_t GgufFile::get_i16(std::string_view k) const { return scalar<int16_t>(*this, k, GgufType::i16); }
uint32_t GgufFile::get_u32(std::string_view k) const { return scalar<uint32_t>(*this, k, GgufType::u32); }
int32_t GgufFile::get_i32(std::string_view k) const { return scalar<int32_t>(*this, k, GgufType::i32); }
uint64_t GgufFile::get_u64(std::string_view k) const { return scalar<uint64_t>(*this, k, GgufType::u64); }
int64_t GgufFile::get_i64(std::string_view k) const { return scalar<int64_t>(*this, k, GgufType::i64); }
float GgufFile::get_f32(std::string_view k) const { return scalar<float>(*this, k, GgufType::f32); }
double GgufFile::get_f64(std::string_view k) const { return scalar<double>(*this, k, GgufType::f64); }
bool GgufFile::get_bool(std::string_view k) const { return scalar<uint8_t>(*this, k, GgufType::boolean) != 0; }

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path, ": missing key ", fmt::quote(key), " (expected string)");
  if (v->type != GgufType::string) fail(path, ": key ", fmt::quote(key), " is ", value_type_str(*v), ", expected string");
  return v->strings[0];
}

const std::vector<std::string>& GgufFile::get_arr_string(std::string_view key) const {
  return array_of(*this, key, GgufType::string).strings;
}
std::vector<int32_t> GgufFile::get_arr_i32(std::string_view k) const { return array<int32_t>(*this, k, GgufType::i32); }
std::vector<uint32_t> GgufFile::get_arr_u32(std::string_view k) const { return array<uint32_t>(*this, k, GgufType::u32); }
std::vector<int64_t> GgufFile::get_arr_i64(std::string_view k) const { return array<int64_t>(*this, k, GgufType::i64); }
std::vector<float> GgufFile::get_arr_f32(std::string_view k) const { return array<float>(*this, k, GgufType::f32); }
std::vector<uint8_t> GgufFile::get_arr_u8(std::string_view k) const { return array<uint8_t>(*this, k, GgufType::u8); }
std::vector<bool> GgufFile::get_arr_bool(std::string_view key) const {
  const GgufValue& v = array_of(*this, key, GgufType::boolean);
  std::vector<bool> out;
  for (char c : v.raw) out.push_back(c != 0);
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail(path, ": no tensor ", fmt::quote(name));
  return *t;
}

Tensor GgufFile::tensor_view(std::string_view name) const {
  const GgufTensorInfo& t = tensor(name);
  DType dt;
  switch (t.type) {
    case GgmlType::F32: dt = DType::f32; break;
    case GgmlType::F16: dt = DType::f16; break;
    case GgmlType::I8: dt = DType::s8; break;
    case GgmlType::I32: dt = DType::s32; break;
    default:
      fail(path, ": tensor ", fmt::quote(name), " is ", ggml_type_info(uint32_t(t.type))->name,
           "; a Tensor view needs F32, F16, I8 or I32");
  }
  if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(dt))
    fail(path, ": tensor ", fmt::quote(name), ": data is not aligned for ", dtype_name(dt), " (alignment ", alignment, ")");
  auto impl = std::make_shared<TensorImpl>();
  impl->dtype = dt;
  impl->shape = t.shape();
  impl->strides = contiguous_strides(impl->shape);
  // The storage does not own the bytes; its deleter holds the file's bytes alive until it goes.
  std::shared_ptr<Bytes> owner = bytes;
  impl->storage = std::shared_ptr<Storage>(new Storage(const_cast<uint8_t*>(t.data), size_t(t.nbytes)),
                                           [owner](Storage* s) { delete s; });
  return Tensor(impl);
}

// ---- GgufWriter ----

void GgufWriter::set(const std::string& key, GgufValue v) {
  std::string problem = key_problem(key);
  QAT_CHECK(problem.empty(), "GgufWriter: ", problem);
  if (key == "general.alignment") {
    QAT_CHECK(v.type == GgufType::u32, "GgufWriter: general.alignment must be u32, got ", value_type_str(v));
    uint32_t al;
    std::memcpy(&al, v.raw.data(), 4);
    QAT_CHECK(is_pow2(al) && al % 8 == 0, "GgufWriter: general.alignment = ", al,
              ", expected a power of two and a multiple of 8");
    alignment_ = al;
  }
  for (GgufKv& kv : kv_)
    if (kv.key == key) {
      kv.value = std::move(v);
      return;
    }
  kv_.push_back({key, std::move(v)});
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) { set(k, make_scalar(GgufType::u8, v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { set(k, make_scalar(GgufType::i8, v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { set(k, make_scalar(GgufType::u16, v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { set(k, make_scalar(GgufType::i16, v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { set(k, make_scalar(GgufType::u32, v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { set(k, make_scalar(GgufType::i32, v)); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { set(k, make_scalar(GgufType::u64, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { set(k, make_scalar(GgufType::i64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { set(k, make_scalar(GgufType::f32, v)); }
void GgufWriter::set_f64(const std::string& k, double v) { set(k, make_scalar(GgufType::f64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { set(k, make_scalar(GgufType::boolean, uint8_t(v ? 1 : 0))); }
void GgufWriter::set_string(const std::string& k, const std::string& s) {
  GgufValue v;
  v.type = v.elem_type = GgufType::string;
  v.strings = {s};
  set(k, std::move(v));
}
void GgufWriter::set_arr_u8(const std::string& k, const std::vector<uint8_t>& v) { set(k, make_array(GgufType::u8, v)); }
void GgufWriter::set_arr_i8(const std::string& k, const std::vector<int8_t>& v) { set(k, make_array(GgufType::i8, v)); }
void GgufWriter::set_arr_u16(const std::string& k, const std::vector<uint16_t>& v) { set(k, make_array(GgufType::u16, v)); }
void GgufWriter::set_arr_i16(const std::string& k, const std::vector<int16_t>& v) { set(k, make_array(GgufType::i16, v)); }
void GgufWriter::set_arr_u32(const std::string& k, const std::vector<uint32_t>& v) { set(k, make_array(GgufType::u32, v)); }
void GgufWriter::set_arr_i32(const std::string& k, const std::vector<int32_t>& v) { set(k, make_array(GgufType::i32, v)); }
void GgufWriter::set_arr_u64(const std::string& k, const std::vector<uint64_t>& v) { set(k, make_array(GgufType::u64, v)); }
void GgufWriter::set_arr_i64(const std::string& k, const std::vector<int64_t>& v) { set(k, make_array(GgufType::i64, v)); }
void GgufWriter::set_arr_f32(const std::string& k, const std::vector<float>& v) { set(k, make_array(GgufType::f32, v)); }
void GgufWriter::set_arr_f64(const std::string& k, const std::vector<double>& v) { set(k, make_array(GgufType::f64, v)); }
void GgufWriter::set_arr_bool(const std::string& k, const std::vector<bool>& v) {
  std::vector<uint8_t> bytes(v.begin(), v.end());
  set(k, make_array(GgufType::boolean, bytes));
}
void GgufWriter::set_arr_string(const std::string& k, const std::vector<std::string>& s) {
  GgufValue v;
  v.type = GgufType::array;
  v.elem_type = GgufType::string;
  v.count = s.size();
  v.strings = s;
  set(k, std::move(v));
}

void GgufWriter::set_value(const std::string& key, const GgufValue& v) {
  bool is_array = v.type == GgufType::array;
  QAT_CHECK(known_value_type(uint32_t(v.type)) && known_value_type(uint32_t(v.elem_type)) &&
                v.elem_type != GgufType::array && (is_array || (v.elem_type == v.type && v.count == 1)),
            "GgufWriter: key ", fmt::quote(key), ": inconsistent value type");
  if (v.elem_type == GgufType::string) {
    QAT_CHECK(v.strings.size() == v.count && v.raw.empty(), "GgufWriter: key ", fmt::quote(key),
              ": ", v.strings.size(), " strings for a count of ", v.count);
  } else {
    uint64_t need = 0;
    QAT_CHECK(v.strings.empty() && fmt::mul_u64(v.count, value_size(v.elem_type), &need) && v.raw.size() == need,
              "GgufWriter: key ",
              fmt::quote(key), ": ", v.raw.size(), " value bytes for ", v.count, " x ", gguf_type_name(v.elem_type));
    if (v.elem_type == GgufType::boolean)
      for (char b : v.raw) QAT_CHECK(uint8_t(b) <= 1, "GgufWriter: key ", fmt::quote(key), ": bool byte ", int(uint8_t(b)));
  }
  set(key, v);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne, std::string data) {
  std::string problem = name_problem(name);
  QAT_CHECK(problem.empty(), "GgufWriter: ", problem);
  for (const PendingTensor& t : tensors_)
    QAT_CHECK(t.info.name != name, "GgufWriter: duplicate tensor name ", fmt::quote(name));
  uint64_t nbytes;
  try {
    nbytes = ggml_nbytes(type, ne);
  } catch (const Error& e) {
    fail("GgufWriter: tensor ", fmt::quote(name), ": ", e.what());
  }
  QAT_CHECK(data.size() == nbytes, "GgufWriter: tensor ", fmt::quote(name), ": data is ", data.size(), " bytes, ",
            ggml_type_info(uint32_t(type))->name, " ", shape_str(ne), " needs ", nbytes);
  PendingTensor t;
  t.info.name = name;
  t.info.type = type;
  t.info.ne = ne;
  t.info.nbytes = nbytes;
  t.data = std::move(data);
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor(const std::string& name, const Tensor& t) {
  QAT_CHECK(t.defined(), "GgufWriter: tensor ", fmt::quote(name), " is undefined");
  GgmlType type;
  switch (t.dtype()) {
    case DType::f32: type = GgmlType::F32; break;
    case DType::f16: type = GgmlType::F16; break;
    case DType::s8: type = GgmlType::I8; break;
    case DType::s32: type = GgmlType::I32; break;
    default: fail("GgufWriter: tensor ", fmt::quote(name), ": dtype ", dtype_name(t.dtype()), " has no ggml type");
  }
  std::vector<int64_t> ne(t.shape().rbegin(), t.shape().rend());
  if (ne.empty()) ne = {1};  // a scalar
  Tensor c = t.is_contiguous() || t.numel() == 0 ? t : t.clone();
  std::string data;
  if (c.nbytes())
    data.assign(static_cast<const char*>(c.impl->storage->data) + c.impl->offset * int64_t(dtype_size(c.dtype())),
                c.nbytes());
  add_tensor(name, type, ne, std::move(data));
}

std::string GgufWriter::meta_bytes() const {
  std::string out(kMagic, 4);
  put<uint32_t>(out, kVersion);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const GgufKv& kv : kv_) {
    put_string(out, kv.key);
    const GgufValue& v = kv.value;
    put<uint32_t>(out, uint32_t(v.type));
    if (v.type == GgufType::array) {
      put<uint32_t>(out, uint32_t(v.elem_type));
      put<uint64_t>(out, v.count);
    }
    if (v.elem_type == GgufType::string)
      for (const std::string& s : v.strings) put_string(out, s);
    else
      out += v.raw;
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    put_string(out, t.info.name);
    put<uint32_t>(out, uint32_t(t.info.ne.size()));
    for (int64_t d : t.info.ne) put<uint64_t>(out, uint64_t(d));
    put<uint32_t>(out, uint32_t(t.info.type));
    put<uint64_t>(out, offset);
    offset += (t.info.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  out.append((alignment_ - out.size() % alignment_) % alignment_, '\0');  // as ggml's writer, always
  return out;
}

std::string GgufWriter::serialize() const {
  std::string out = meta_bytes();
  for (const PendingTensor& t : tensors_) {
    out += t.data;
    out.append((alignment_ - t.data.size() % alignment_) % alignment_, '\0');
  }
  return out;
}

void GgufWriter::write(const std::string& path) const {
  std::string meta = meta_bytes();
  std::string zeros(alignment_, '\0');
  std::vector<std::string_view> parts{meta};
  for (const PendingTensor& t : tensors_) {
    parts.emplace_back(t.data);
    parts.emplace_back(zeros.data(), (alignment_ - t.data.size() % alignment_) % alignment_);
  }
  write_file_atomic(path, parts);
}

}  // namespace qat
