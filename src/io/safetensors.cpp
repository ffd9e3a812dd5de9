// safetensors writer and hostile-input reader (see safetensors.h). The checks follow the reference
// loader (huggingface/safetensors safetensors/src/tensor.rs: read_metadata + Metadata::validate):
// header cap, offsets sorted and tiling the data section, byte size == shape * dtype size.
#include "src/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>

#include "src/io/file.h"
#include "src/io/format_util.h"
#include "src/io/json.h"
#include "src/util/error.h"

namespace qat {

namespace {

constexpr size_t kMaxDims = 16;
constexpr uint64_t kMaxJsonValues = uint64_t(1) << 21;  // ~2M values (~0.3 GB of parsed Json)

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {{"F32", DType::f32}, {"F16", DType::f16}, {"I8", DType::s8},
                                 {"U8", DType::u8}, {"I32", DType::s32}};
// Valid in the format, not representable by our Tensor: named in the error.
constexpr const char* kOtherDTypes[] = {"BOOL", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
                                        "I16", "U16", "BF16", "U32", "F64", "I64", "U64", "C64"};

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

// How a tensor's stored elements become the Tensor's: as they are, or widened to f32 (to_f32).
enum class Widen : uint8_t { none, f16, bf16 };

// One tensor entry of the header, validated.
struct Entry {
  std::string name;
  DType dtype;        // the Tensor's dtype (f32 when widened)
  Widen widen = Widen::none;
  Shape shape;
  uint64_t begin, end;
};

float bf16_to_f32(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }

// The stored dtype of `dn` under opt.to_f32: F16 and BF16 widen to f32 (BF16 is accepted only then).
bool resolve_dtype(const std::string& dn, bool to_f32, DType* dtype, Widen* widen, size_t* stored_size) {
  *widen = Widen::none;
  if (to_f32 && (dn == "F16" || dn == "BF16")) {
    *dtype = DType::f32;
    *widen = dn == "F16" ? Widen::f16 : Widen::bf16;
    *stored_size = 2;
    return true;
  }
  for (const auto& d : kDTypes)
    if (dn == d.name) {
      *dtype = d.dtype;
      *stored_size = dtype_size(d.dtype);
      return true;
    }
  return false;
}

struct Header {
  std::vector<Entry> entries;  // sorted by (begin, end)
  std::map<std::string, std::string> metadata;
};

// Upper bound on the number of JSON values in `s`: one, plus one per ',' ':' '[' outside strings.
uint64_t json_value_bound(std::string_view s) {
  uint64_t n = 1;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') i++;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ',' || c == ':' || c == '[') {
      n++;
    }
  }
  return n;
}

const char* json_type_name(const Json& j) {
  switch (j.type()) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "a boolean";
    case Json::Type::number: return "a number";
    case Json::Type::string: return "a string";
    case Json::Type::array: return "an array";
    case Json::Type::object: return "an object";
  }
  return "?";
}

// A JSON number that is a non-negative integer (u64 range), else nullopt-like false.
bool json_u64(const Json& j, uint64_t* out) {
  if (!j.is_number() || !(j.as_double() >= 0)) return false;
  try {
    *out = j.as_uint();
  } catch (const Error&) {
    return false;
  }
  return true;
}

std::string offsets_str(uint64_t b, uint64_t e) { return str("[", b, ", ", e, "]"); }

Entry parse_entry(const std::string& file, const std::string& name, const Json& v, bool to_f32) {
  std::string where = str(file, ": tensor ", fmt::quote(name), ": ");
  if (!v.is_object()) fail(where, "expected an object {dtype, shape, data_offsets}, got ", json_type_name(v));
  const Json *jd = nullptr, *js = nullptr, *jo = nullptr;
  for (const auto& [k, x] : v.members()) {
    const Json** slot = k == "dtype" ? &jd : k == "shape" ? &js : k == "data_offsets" ? &jo : nullptr;
    if (!slot) fail(where, "unknown field ", fmt::quote(k), " (expected dtype, shape, data_offsets)");
    *slot = &x;  // (never set twice: Json::parse refuses duplicate keys)
  }
  if (!jd) fail(where, "missing field 'dtype'");
  if (!js) fail(where, "missing field 'shape'");
  if (!jo) fail(where, "missing field 'data_offsets'");

  Entry e;
  e.name = name;
  if (!jd->is_string()) fail(where, "dtype: expected a string, got ", json_type_name(*jd));
  const std::string& dn = jd->as_string();
  size_t stored_size = 0;
  if (!resolve_dtype(dn, to_f32, &e.dtype, &e.widen, &stored_size)) {
    const char* supported = to_f32 ? "F32, F16, BF16, I8, U8, I32" : "F32, F16, I8, U8, I32";
    for (const char* o : kOtherDTypes)
      if (dn == o) fail(where, "dtype ", fmt::quote(dn), " is not supported (supported: ", supported, ")");
    fail(where, "unknown dtype ", fmt::quote(dn), " (supported: ", supported, ")");
  }

  if (!js->is_array()) fail(where, "shape: expected an array, got ", json_type_name(*js));
  if (js->items().size() > kMaxDims) fail(where, "shape has ", js->items().size(), " dimensions, at most ", kMaxDims);
  // Element count without overflow. Zero dimensions are skipped in the product so that the
  // prefix/suffix products Tensor computes (shape_numel, strides) all fit in int64 as well.
  uint64_t nonzero = 1;
  bool overflow = false, has_zero = false;
  for (size_t i = 0; i < js->items().size(); i++) {
    uint64_t d;
    if (!json_u64(js->items()[i], &d) || d > uint64_t(INT64_MAX))
      fail(where, "shape[", i, "]: expected a non-negative integer, got ", js->items()[i].dump());
    e.shape.push_back(int64_t(d));
    if (d == 0) has_zero = true;
    else if (!fmt::mul_u64(nonzero, d, &nonzero)) overflow = true;
  }
  if (overflow || nonzero > uint64_t(INT64_MAX) / 8)
    fail(where, "shape ", shape_str(e.shape), " of ", dn, " overflows 64-bit sizes");
  uint64_t nbytes = (has_zero ? 0 : nonzero) * stored_size;

  if (!jo->is_array() || jo->items().size() != 2) fail(where, "data_offsets: expected [begin, end], got ", jo->dump());
  if (!json_u64(jo->items()[0], &e.begin) || !json_u64(jo->items()[1], &e.end))
    fail(where, "data_offsets: expected two non-negative integers, got ", jo->dump());
  if (e.end < e.begin) fail(where, "data_offsets ", offsets_str(e.begin, e.end), ": end is before begin");
  if (e.end - e.begin != nbytes)
    fail(where, "data_offsets ", offsets_str(e.begin, e.end), " do not match shape ", shape_str(e.shape), " of ",
         dn, " (", nbytes, " bytes)");
  return e;
}

// Validates the JSON header against a data section of `data_size` bytes.
Header parse_header(const std::string& file, std::string_view text, uint64_t data_size, bool to_f32) {
  size_t bad = fmt::utf8_error_at(text);
  if (bad != std::string_view::npos) fail(file, ": header: not valid UTF-8 at header byte ", bad);
  uint64_t bound = json_value_bound(text);
  if (bound > kMaxJsonValues)
    fail(file, ": header: holds up to ", bound, " JSON values, more than the limit of ", kMaxJsonValues);
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Error& e) {
    fail(file, ": header: ", e.what());
  }
  if (!j.is_object()) fail(file, ": header: expected a JSON object, got ", json_type_name(j));

  Header h;
  for (const auto& [k, v] : j.members()) {  // keys are unique: Json::parse refuses duplicates
    if (k == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) fail(file, ": __metadata__: expected an object of strings, got ", json_type_name(v));
      for (const auto& [mk, mv] : v.members()) {
        if (!mv.is_string())
          fail(file, ": __metadata__: value of ", fmt::quote(mk), " is ", json_type_name(mv), ", expected a string");
        h.metadata.emplace(mk, mv.as_string());
      }
      continue;
    }
    if (k.empty()) fail(file, ": header: empty tensor name");
    h.entries.push_back(parse_entry(file, k, v, to_f32));
  }

  // The reference sorts by data_offsets and requires each tensor to start where the previous ended,
  // the first at 0, the last to end exactly at the end of the file.
  std::stable_sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : h.entries) {
    std::string where = str(file, ": tensor ", fmt::quote(e.name), ": data_offsets ", offsets_str(e.begin, e.end));
    if (e.end > data_size) fail(where, " extend past the end of the data section (", data_size, " bytes)");
    if (e.begin < pos)
      fail(where, " overlap tensor ", fmt::quote(prev->name), " ", offsets_str(prev->begin, prev->end));
    if (e.begin > pos) {
      if (prev) fail(where, " leave a gap after tensor ", fmt::quote(prev->name), " (expected begin ", pos, ")");
      fail(where, " leave a gap at the start of the data section (expected begin 0)");
    }
    pos = e.end;
    prev = &e;
  }
  if (pos != data_size)
    fail(file, ": data section is ", data_size, " bytes but the tensors cover ", pos,
         " (every byte must belong to a tensor)");
  return h;
}

// Parses the 8-byte length; returns N after checking it against the cap and the file size.
uint64_t check_header_length(const std::string& file, const unsigned char* first8, uint64_t file_size) {
  uint64_t n = read_le64(first8);
  if (n > kSafetensorsMaxHeader)
    fail(file, ": header length ", n, " exceeds the limit of ", kSafetensorsMaxHeader, " bytes");
  if (n > file_size - 8)
    fail(file, ": header length ", n, " runs past the end of the file (", file_size, " bytes)");
  return n;
}

void check_min_size(const std::string& file, uint64_t size) {
  if (size < 8) fail(file, ": file is ", size, " bytes, too short for the 8-byte header length");
}

// The header's tensors against the caller's list (SafeTensorsOptions::expect), before any data.
void check_expected(const std::string& file, const Header& h, const SafeTensorsOptions& opt) {
  if (!opt.expect) return;
  std::map<std::string_view, const Shape*> want;
  for (const auto& [name, shape] : *opt.expect) want.emplace(name, &shape);
  for (const Entry& e : h.entries) {
    auto it = want.find(e.name);
    if (it == want.end()) fail(file, ": unexpected tensor ", fmt::quote(e.name), " (not part of this model's config)");
    if (e.shape != *it->second)
      fail(file, ": tensor ", fmt::quote(e.name), " has shape ", shape_str(e.shape), ", the config expects ",
           shape_str(*it->second));
  }
}

// The tensor of entry `e` from its stored bytes `src` (end - begin of them), widened where asked.
Tensor tensor_from_bytes(const Entry& e, const char* src) {
  Tensor t = Tensor::empty(e.shape, e.dtype);
  if (e.widen == Widen::none) {
    if (t.nbytes()) std::memcpy(t.impl->storage->data, src, t.nbytes());
    return t;
  }
  float* dst = t.data<float>();
  for (int64_t i = 0, n = t.numel(); i < n; i++) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);  // little-endian file, little-endian host
    dst[i] = e.widen == Widen::f16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
  return t;
}

void finish(SafeTensors& st, const SafeTensorsOptions& opt) {
  if (opt.reject_nonfinite) check_finite(st);
}

const void* tensor_bytes(const Tensor& t) {
  if (!t.impl->storage || !t.impl->storage->data) return nullptr;
  return static_cast<const char*>(t.impl->storage->data) + t.impl->offset * int64_t(dtype_size(t.dtype()));
}

// Header text (padded) and the contiguous tensors whose bytes follow it.
std::string build_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata, std::vector<Tensor>& contiguous) {
  Json meta = Json::object();
  if (!metadata.count("format")) meta.set("format", "pt");
  for (const auto& [k, v] : metadata) meta.set(k, v);
  Json h = Json::object();
  h.set("__metadata__", meta);
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    QAT_CHECK(!name.empty(), "save_safetensors: empty tensor name");
    QAT_CHECK(name != "__metadata__", "save_safetensors: '__metadata__' is reserved, not a tensor name");
    QAT_CHECK(names.insert(name).second, "save_safetensors: duplicate tensor name ", fmt::quote(name));
    QAT_CHECK(t.defined(), "save_safetensors: tensor ", fmt::quote(name), " is undefined");
    Tensor c = t.is_contiguous() || t.numel() == 0 ? t : t.clone();  // (no copy of an empty view)
    Json e = Json::object();
    e.set("dtype", safetensors_dtype_name(c.dtype()));
    Json shape = Json::array();
    for (int64_t d : c.shape()) shape.push(d);
    e.set("shape", shape);
    Json off = Json::array();
    off.push(offset);
    offset += c.nbytes();
    off.push(offset);
    e.set("data_offsets", off);
    h.set(name, e);
    contiguous.push_back(c);
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // as the reference writer: data starts 8-aligned
  QAT_CHECK(text.size() <= kSafetensorsMaxHeader, "save_safetensors: header of ", text.size(),
            " bytes exceeds the limit of ", kSafetensorsMaxHeader);
  return text;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.dtype == t) return d.name;
  fail("safetensors: no name for dtype ", dtype_name(t));
}

const Tensor* SafeTensors::find(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const Tensor& SafeTensors::at(std::string_view name) const {
  const Tensor* t = find(name);
  if (!t) fail(path, ": no tensor ", fmt::quote(name));
  return *t;
}

std::string serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> contiguous;
  std::string header = build_header(tensors, metadata, contiguous);
  std::string out = le64(header.size()) + header;
  for (const Tensor& t : contiguous)
    if (t.nbytes()) out.append(static_cast<const char*>(tensor_bytes(t)), t.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> contiguous;
  std::string header = build_header(tensors, metadata, contiguous);
  std::string len = le64(header.size());
  std::vector<std::string_view> parts{len, header};
  for (const Tensor& t : contiguous)
    if (t.nbytes()) parts.emplace_back(static_cast<const char*>(tensor_bytes(t)), t.nbytes());
  write_file_atomic(path, parts);
}

SafeTensors parse_safetensors(std::string_view bytes, const std::string& name, const SafeTensorsOptions& opt) {
  check_min_size(name, bytes.size());
  auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  uint64_t n = check_header_length(name, p, bytes.size());
  Header h = parse_header(name, bytes.substr(8, n), bytes.size() - 8 - n, opt.to_f32);
  check_expected(name, h, opt);
  SafeTensors st;
  st.path = name;
  st.metadata = std::move(h.metadata);
  const char* data = bytes.data() + 8 + n;
  for (Entry& e : h.entries) {
    Tensor t = tensor_from_bytes(e, data + e.begin);
    st.tensors.emplace_back(std::move(e.name), t);
  }
  finish(st, opt);
  return st;
}

namespace {
// pread exactly n bytes at `offset`, naming the file on failure.
void pread_all(int fd, const std::string& path, void* dst, uint64_t n, uint64_t offset) {
  auto* d = static_cast<char*>(dst);
  while (n > 0) {
    size_t chunk = size_t(std::min<uint64_t>(n, uint64_t(1) << 30));
    ssize_t r = ::pread(fd, d, chunk, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read ", path, ": ", std::strerror(errno));
    if (r == 0) fail("cannot read ", path, ": file shrank while reading");
    d += r;
    n -= uint64_t(r);
    offset += uint64_t(r);
  }
}

struct Fd {
  int fd;
  ~Fd() { if (fd >= 0) ::close(fd); }
};
}  // namespace

SafeTensors load_safetensors(const std::string& path, const SafeTensorsOptions& opt) {
  uint64_t size = 0;
  Fd f{open_regular_file(path, &size)};  // a FIFO is refused, not waited on
  check_min_size(path, size);
  unsigned char first8[8];
  pread_all(f.fd, path, first8, 8, 0);
  uint64_t n = check_header_length(path, first8, size);
  std::string text(size_t(n), '\0');
  pread_all(f.fd, path, text.data(), n, 8);
  Header h = parse_header(path, text, size - 8 - n, opt.to_f32);
  check_expected(path, h, opt);

  SafeTensors st;
  st.path = path;
  st.metadata = std::move(h.metadata);
  for (Entry& e : h.entries) {
    Tensor t;
    if (e.widen == Widen::none) {
      t = Tensor::empty(e.shape, e.dtype);
      if (t.nbytes()) pread_all(f.fd, path, t.impl->storage->data, t.nbytes(), 8 + n + e.begin);
    } else {  // one tensor's stored bytes at a time: the peak is the f32 tensors plus one stored tensor
      std::string raw(size_t(e.end - e.begin), '\0');
      if (!raw.empty()) pread_all(f.fd, path, raw.data(), raw.size(), 8 + n + e.begin);
      t = tensor_from_bytes(e, raw.data());
    }
    st.tensors.emplace_back(std::move(e.name), t);
  }
  finish(st, opt);
  return st;
}

NonFinite find_nonfinite(const Tensor& t) {
  NonFinite r;
  if (!t.defined() || (t.dtype() != DType::f32 && t.dtype() != DType::f16)) return r;
  Tensor c = t.is_contiguous() || t.numel() == 0 ? t : t.clone();  // (no copy of an empty view)
  int64_t n = c.numel();
  for (int64_t i = 0; i < n; i++) {
    float v = c.dtype() == DType::f32 ? c.data<float>()[i] : f16_to_f32(c.data<uint16_t>()[i]);
    if (std::isfinite(v)) continue;
    if (r.count++ == 0) {
      r.first_index = i;
      r.first_value = v;
    }
  }
  return r;
}

void check_finite(const SafeTensors& st) {
  for (const auto& [name, t] : st.tensors) {
    NonFinite nf = find_nonfinite(t);
    if (nf.count)
      fail(st.path, ": tensor ", fmt::quote(name), ": ", nf.count, " non-finite value", nf.count > 1 ? "s" : "",
           " (first: ", nf.first_value, " at index ", nf.first_index, ")");
  }
}

}  // namespace qat
