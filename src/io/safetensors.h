// safetensors, the checkpoint format (huggingface/safetensors, safetensors/src/tensor.rs):
//   u64 little-endian N | N bytes of JSON header, space-padded to a multiple of 8 |
//   data: every tensor's bytes, C order, little-endian, back to back.
//   header = {"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [2, 3],
//             "data_offsets": [begin, end]}, ...}; offsets are relative to the start of the data.
// The loader treats the file as hostile and checks what the reference loader checks, plus more (see
// load_safetensors). It returns owning copies: tensors are read straight from the file into their own
// 64-byte-aligned storage (one pass, no second copy of the file in memory).
// Read next: gguf.h (the deployable format), src/io/json.h (the header's parser).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/tensor.h"

namespace qat {

// The reference loader's cap on N (safetensors MAX_HEADER_SIZE = 100_000_000).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafeTensors {
  std::string path;                                      // names the file in errors
  std::vector<std::pair<std::string, Tensor>> tensors;   // in file order (increasing data offset)
  std::map<std::string, std::string> metadata;           // "__metadata__"; empty when absent

  const Tensor* find(std::string_view name) const;       // nullptr when absent
  const Tensor& at(std::string_view name) const;         // throws "<path>: no tensor 'name'"
};

struct SafeTensorsOptions {
  bool reject_nonfinite = false;  // throw naming the first tensor that holds a NaN or an infinity
  // When set, the tensors the caller can use, by name, with their shapes: any other name or shape is
  // refused from the header, before a byte of tensor data is allocated or read (a file with an extra
  // 8 GB tensor fails at once). Absent names are the caller's to check.
  const std::vector<std::pair<std::string, Shape>>* expect = nullptr;
  // F16 and BF16 tensors are read as f32 tensors (exactly: both widen without rounding), and BF16, which
  // Tensor cannot hold, is accepted only then (Hugging Face checkpoints, models/hf_import.h).
  bool to_f32 = false;
};

// Writes `tensors` in the given order (non-contiguous views are written as contiguous copies) with
// `metadata` plus "format": "pt" (unless the caller sets "format"). Atomic (file.h): on any error the
// previous file is intact. Throws on an empty, duplicate or reserved ("__metadata__") name, an
// undefined tensor, or a header over kSafetensorsMaxHeader.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// The exact bytes save_safetensors writes (tests, seed corpora).
std::string serialize_safetensors(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Reads and validates a file. Every error is one line "<path>: <field>: <problem>", e.g.
//   "m.safetensors: tensor 'x': data_offsets [0, 12] do not match shape (2, 2) of F32 (16 bytes)".
// Checked: file >= 8 bytes; N <= 100 MB and 8 + N <= file size; header valid UTF-8 and a JSON object
// (at most 2M JSON values, so a hostile header cannot blow up memory); no duplicate keys; each tensor
// entry has exactly dtype/shape/data_offsets with the right JSON types; dtype one of F32 F16 I8 U8 I32
// (and BF16 with to_f32);
// shape non-negative integers (at most 16 dims), element count and byte size computed without
// overflow; end - begin == byte size; sorted by offset, the tensors tile the data section exactly
// (first begins at 0, each begins where the previous ends, the last ends at the end of the file), as
// the reference loader requires; __metadata__ is a string -> string object.
SafeTensors load_safetensors(const std::string& path, const SafeTensorsOptions& opt = {});
// The same checks on an in-memory file; `name` stands for the path in errors (fuzzing, tests).
SafeTensors parse_safetensors(std::string_view bytes, const std::string& name = "<buffer>",
                              const SafeTensorsOptions& opt = {});

// Non-finite values (NaN, +-inf) of an f32 or f16 tensor; other dtypes have none.
struct NonFinite {
  int64_t count = 0;
  int64_t first_index = -1;  // row-major index of the first one
  float first_value = 0;
};
NonFinite find_nonfinite(const Tensor& t);
// Throws "<path>: tensor 'x': 3 non-finite values (first: nan at index 5)" for the first such tensor.
void check_finite(const SafeTensors& st);

// safetensors dtype name of a DType ("F32", "F16", "I8", "U8", "I32").
const char* safetensors_dtype_name(DType t);

}  // namespace qat
