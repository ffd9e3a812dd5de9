// JSON parse and dump (see json.h). Recursive descent with a depth limit; strings are validated as
// UTF-8 only as far as escapes go (\uXXXX, surrogate pairs); raw bytes pass through.
#include "src/io/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "src/io/format_util.h"
#include "src/util/error.h"

namespace qat {

struct JsonParser {
  std::string_view s;
  size_t i = 0;
  int depth = 0;

  [[noreturn]] void error(const char* what) { fail("json: ", what, " at byte ", i); }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) { i++; return true; }
    return false;
  }
  void expect_word(const char* w) {
    size_t n = std::strlen(w);
    if (s.substr(i, n) != w) error("invalid literal");
    i += n;
  }

  Json value() {
    if (++depth > 64) error("nesting deeper than 64");
    ws();
    if (i >= s.size()) error("unexpected end");
    Json v;
    char c = s[i];
    if (c == '{') v = object();
    else if (c == '[') v = array();
    else if (c == '"') v = Json(string());
    else if (c == 't') { expect_word("true"); v = Json(true); }
    else if (c == 'f') { expect_word("false"); v = Json(false); }
    else if (c == 'n') { expect_word("null"); }
    else if (c == '-' || (c >= '0' && c <= '9')) v = number();
    else error("unexpected character");
    depth--;
    return v;
  }

  Json object() {
    Json o = Json::object();
    i++;  // {
    if (eat('}')) return o;
    do {
      ws();
      if (i >= s.size() || s[i] != '"') error("expected a string key");
      size_t key_at = i;
      std::string k = string();
      if (o.member_pos(k) >= 0) fail("json: duplicate key ", fmt::quote(k), " at byte ", key_at);
      if (!eat(':')) error("expected ':'");
      o.append_member(std::move(k), value());
    } while (eat(','));
    if (!eat('}')) error("expected ',' or '}'");
    return o;
  }

  Json array() {
    Json a = Json::array();
    i++;  // [
    if (eat(']')) return a;
    do a.a_.push_back(value());
    while (eat(','));
    if (!eat(']')) error("expected ',' or ']'");
    return a;
  }

  unsigned hex4() {
    if (i + 4 > s.size()) error("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s[i++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else error("bad hex digit in \\u escape");
    }
    return v;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xc0 | (cp >> 6)); out += char(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3f)); out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f)); out += char(0x80 | (cp & 0x3f));
    }
  }

  std::string string() {
    i++;  // opening quote
    std::string out;
    while (true) {
      if (i >= s.size()) error("unterminated string");
      char c = s[i++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i >= s.size()) error("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {  // high surrogate: a low one must follow
            if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') error("lone high surrogate");
            i += 2;
            unsigned lo = hex4();
            if (lo < 0xdc00 || lo >= 0xe000) error("bad low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            error("lone low surrogate");
          }
          put_utf8(out, cp);
          break;
        }
        default: error("bad escape");
      }
    }
  }

  Json number() {
    size_t start = i;
    if (s[i] == '-') i++;
    if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) error("bad number");
    if (s[i] == '0') i++;
    else while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    bool integral = true;
    if (i < s.size() && s[i] == '.') {
      integral = false;
      i++;
      if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) error("bad fraction");
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      integral = false;
      i++;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
      if (i >= s.size() || !(s[i] >= '0' && s[i] <= '9')) error("bad exponent");
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    }
    std::string text(s.substr(start, i - start));
    if (integral) {
      errno = 0;
      char* end = nullptr;
      if (text[0] == '-') {
        long long v = std::strtoll(text.c_str(), &end, 10);
        if (errno == 0) return Json(int64_t(v));
      } else {
        unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        if (errno == 0) return Json(uint64_t(v));
      }
    }
    return Json(std::strtod(text.c_str(), nullptr));
  }
};

Json Json::parse(std::string_view text) {
  JsonParser p{text};
  Json v = p.value();
  p.ws();
  if (p.i != text.size()) p.error("trailing characters");
  return v;
}

static void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

static void dump_value(std::string& out, const Json& v, int indent, int level) {
  auto newline = [&](int lv) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent * lv), ' ');
  };
  switch (v.type()) {
    case Json::Type::null: out += "null"; break;
    case Json::Type::boolean: out += v.as_bool() ? "true" : "false"; break;
    case Json::Type::number: {
      double d = v.as_double();
      if (!std::isfinite(d)) { out += "null"; break; }  // JSON has no inf/nan
      char buf[32];
      bool integral = false;
      int64_t iv = 0;
      uint64_t uv = 0;
      bool unsigned_big = false;
      try { iv = v.as_int(); integral = true; } catch (const Error&) {
        try { uv = v.as_uint(); unsigned_big = true; } catch (const Error&) {}
      }
      if (integral) std::snprintf(buf, sizeof buf, "%lld", (long long)iv);
      else if (unsigned_big) std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)uv);
      else {  // shortest of %.15g / %.17g that reads back exactly
        std::snprintf(buf, sizeof buf, "%.15g", d);
        if (std::strtod(buf, nullptr) != d) std::snprintf(buf, sizeof buf, "%.17g", d);
      }
      out += buf;
      break;
    }
    case Json::Type::string: dump_string(out, v.as_string()); break;
    case Json::Type::array: {
      out += '[';
      const auto& items = v.items();
      for (size_t k = 0; k < items.size(); k++) {
        if (k) out += indent < 0 ? "," : ",";
        newline(level + 1);
        dump_value(out, items[k], indent, level + 1);
      }
      if (!items.empty()) newline(level);
      out += ']';
      break;
    }
    case Json::Type::object: {
      out += '{';
      const auto& m = v.members();
      for (size_t k = 0; k < m.size(); k++) {
        if (k) out += ',';
        newline(level + 1);
        dump_string(out, m[k].first);
        out += indent < 0 ? ":" : ": ";
        dump_value(out, m[k].second, indent, level + 1);
      }
      if (!m.empty()) newline(level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_value(out, *this, indent, 0);
  return out;
}

static const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "a boolean";
    case Json::Type::number: return "a number";
    case Json::Type::string: return "a string";
    case Json::Type::array: return "an array";
    case Json::Type::object: return "an object";
  }
  return "?";
}

bool Json::as_bool() const {
  QAT_CHECK(type_ == Type::boolean, "json: expected a boolean, got ", type_name(type_));
  return b_;
}
double Json::as_double() const {
  QAT_CHECK(type_ == Type::number, "json: expected a number, got ", type_name(type_));
  return d_;
}
int64_t Json::as_int() const {
  QAT_CHECK(type_ == Type::number, "json: expected an integer, got ", type_name(type_));
  QAT_CHECK(!is_u64_, "json: integer ", uint64_t(i_), " is larger than 2^63 - 1");
  if (is_int_) return i_;
  QAT_CHECK(std::floor(d_) == d_ && std::fabs(d_) < 9.007199254740992e15, "json: expected an integer, got ", d_);
  return int64_t(d_);
}
uint64_t Json::as_uint() const {
  QAT_CHECK(type_ == Type::number, "json: expected an integer, got ", type_name(type_));
  if (is_u64_) return uint64_t(i_);
  int64_t v = as_int();
  QAT_CHECK(v >= 0, "json: expected a non-negative integer, got ", v);
  return uint64_t(v);
}

const std::string& Json::as_string() const {
  QAT_CHECK(type_ == Type::string, "json: expected a string, got ", type_name(type_));
  return s_;
}
const std::vector<Json>& Json::items() const {
  QAT_CHECK(type_ == Type::array, "json: expected an array, got ", type_name(type_));
  return a_;
}
const std::vector<std::pair<std::string, Json>>& Json::members() const {
  QAT_CHECK(type_ == Type::object, "json: expected an object, got ", type_name(type_));
  return o_;
}
// Members are found through index_ once there are kIndexFrom of them; below, by a scan.
int64_t Json::member_pos(std::string_view key) const {
  if (index_.empty()) {
    for (size_t p = 0; p < o_.size(); p++)
      if (o_[p].first == key) return int64_t(p);
    return -1;
  }
  const size_t mask = index_.size() - 1;
  for (size_t h = std::hash<std::string_view>{}(key) & mask;; h = (h + 1) & mask) {
    uint32_t e = index_[h];
    if (e == 0) return -1;
    if (o_[e - 1].first == key) return int64_t(e - 1);
  }
}

void Json::index_member(size_t pos) {
  const size_t mask = index_.size() - 1;
  size_t h = std::hash<std::string_view>{}(o_[pos].first) & mask;
  while (index_[h] != 0) h = (h + 1) & mask;
  index_[h] = uint32_t(pos + 1);
}

Json& Json::append_member(std::string key, Json value) {
  QAT_CHECK(o_.size() < UINT32_MAX - 1, "json: more than 2^32 - 2 keys in one object");
  o_.emplace_back(std::move(key), std::move(value));
  if (o_.size() < kIndexFrom) return o_.back().second;
  if (2 * o_.size() > index_.size()) {  // (re)build at 4x the members: stays at most half full
    size_t slots = 64;
    while (slots < 4 * o_.size()) slots *= 2;
    index_.assign(slots, 0);
    for (size_t p = 0; p < o_.size(); p++) index_member(p);
  } else {
    index_member(o_.size() - 1);
  }
  return o_.back().second;
}

const Json* Json::find(std::string_view key) const {
  if (type_ != Type::object) return nullptr;
  int64_t p = member_pos(key);
  return p < 0 ? nullptr : &o_[size_t(p)].second;
}
const Json& Json::at(std::string_view key) const {
  QAT_CHECK(type_ == Type::object, "json: expected an object with key '", key, "', got ", type_name(type_));
  const Json* v = find(key);
  QAT_CHECK(v, "json: missing key '", key, "'");
  return *v;
}
Json& Json::set(std::string key, Json value) {
  QAT_CHECK(type_ == Type::object, "json: set on ", type_name(type_));
  int64_t p = member_pos(key);
  if (p >= 0) return o_[size_t(p)].second = std::move(value);
  return append_member(std::move(key), std::move(value));
}
Json& Json::push(Json value) {
  QAT_CHECK(type_ == Type::array, "json: push on ", type_name(type_));
  a_.push_back(std::move(value));
  return a_.back();
}
size_t Json::size() const {
  if (type_ == Type::array) return a_.size();
  if (type_ == Type::object) return o_.size();
  return 0;
}

}  // namespace qat
