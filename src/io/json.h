// A small JSON value: parse (untrusted input: depth-limited, every error names the byte offset) and
// dump. Objects keep their key order, which safetensors headers and config.json readers rely on for
// stable output. Numbers keep whether they were written as integers, so u64 offsets stay exact.
// Duplicate keys are rejected when parsing (Python and Hugging Face would silently keep the last one).
// Objects index their keys once they grow (a hash table beside the ordered members), so building or
// parsing an object of n keys costs O(n), not O(n^2): a 1M-token vocabulary is one object.
// Used by config.json, safetensors headers, metrics.jsonl and tokenizer files.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qat {

class Json {
 public:
  enum class Type : uint8_t { null, boolean, number, string, array, object };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : type_(Type::boolean), b_(b) {}
  Json(int v) : type_(Type::number), is_int_(true), i_(v), d_(v) {}
  Json(int64_t v) : type_(Type::number), is_int_(true), i_(v), d_(double(v)) {}
  Json(uint64_t v) : type_(Type::number), is_int_(true), is_u64_(v > uint64_t(INT64_MAX)), i_(int64_t(v)), d_(double(v)) {}
  Json(double v) : type_(Type::number), d_(v) {}
  Json(float v) : type_(Type::number), d_(double(v)) {}
  Json(const char* s) : type_(Type::string), s_(s) {}
  Json(std::string s) : type_(Type::string), s_(std::move(s)) {}
  static Json array() { Json j; j.type_ = Type::array; return j; }
  static Json object() { Json j; j.type_ = Type::object; return j; }

  // Throws qat::Error("json: <what> at byte N") on malformed input, depth > 64, trailing bytes, or a key
  // that appears twice in one object ("json: duplicate key 'k' at byte N").
  static Json parse(std::string_view text);
  // Compact when indent < 0; otherwise pretty-printed with `indent` spaces.
  std::string dump(int indent = -1) const;

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_number() const { return type_ == Type::number; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  // Typed getters throw qat::Error naming the expected type.
  bool as_bool() const;
  double as_double() const;
  int64_t as_int() const;    // must be an integral number in int64 range
  uint64_t as_uint() const;  // must be a non-negative integral number in uint64 range
  const std::string& as_string() const;
  const std::vector<Json>& items() const;                         // array
  const std::vector<std::pair<std::string, Json>>& members() const;  // object

  // Object access: find returns nullptr when absent; at throws "missing key 'k'".
  const Json* find(std::string_view key) const;
  const Json& at(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Sets (or replaces) a member, keeping insertion order. O(1) on average.
  Json& set(std::string key, Json value);
  Json& push(Json value);  // array append
  size_t size() const;

 private:
  Type type_ = Type::null;
  bool b_ = false;
  bool is_int_ = false;
  bool is_u64_ = false;  // an integer above INT64_MAX, held in i_'s bits
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::vector<Json> a_;
  std::vector<std::pair<std::string, Json>> o_;
  // Open-addressing hash table over o_: entry = member position + 1 (0: empty slot), a power of two
  // in size, at most half full. Empty below kIndexFrom members, where a linear scan is as fast.
  std::vector<uint32_t> index_;
  static constexpr size_t kIndexFrom = 16;
  int64_t member_pos(std::string_view key) const;  // -1 when absent
  Json& append_member(std::string key, Json value);  // the key must be absent
  void index_member(size_t pos);
  friend struct JsonParser;
};

}  // namespace qat
