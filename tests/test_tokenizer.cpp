// The byte-level BPE tokenizer: GPT-2 pre-tokenization vectors (expected splits from GPT-2's regex run by
// Python's `re` in tests/reference/bpe_reference.py), token-id vectors for a tiny trained tokenizer (ids from the
// same independent reference), the merge order against a naive encoder, byte round trips (invalid UTF-8
// included), the GGUF views, and tokenizer.json save/load with corrupted variants rejected.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "data/byte_level.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/pretokenize.h"
#include "data/tokenizer.h"
#include "data/unicode.h"
#include "src/io/file.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

// Keep in sync with tests/reference/bpe_reference.py (TINY_CORPUS, TINY_VOCAB, VECTORS).
const std::vector<std::string> kTinyCorpus = {
    "the cat sat on the mat. the cat's hat is flat!",
    "that hat? it's the cat's hat, and that's that.",
    "3 cats and 12 hats; 123 mats...  then   the end\n\nthe end",
    "café café naïve 日本語 日本",
};
constexpr int kTinyVocab = 300;

const Tokenizer& tiny() {
  static const Tokenizer t = Tokenizer::train(kTinyCorpus, kTinyVocab);
  return t;
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view p : pretokenize(s)) out.emplace_back(p);
  return out;
}

// GPT-2's bpe(): repeatedly merge every occurrence of the lowest-ranked pair, left to right. A different
// procedure from Tokenizer::encode_piece (one merge at a time from a heap); the results must agree.
std::vector<int32_t> naive_encode(const Tokenizer& t, std::string_view text) {
  std::map<std::pair<int32_t, int32_t>, int32_t> rank;
  std::map<std::string, int32_t> id_of;
  for (int32_t i = 0; i < t.vocab_size(); i++) id_of[t.token_bytes(i)] = i;
  std::vector<std::string> merges = t.gguf_merges();
  std::vector<std::string> strs = t.gguf_tokens();
  std::map<std::string, int32_t> id_of_str;
  for (int32_t i = 0; i < t.vocab_size(); i++) id_of_str[strs[size_t(i)]] = i;
  for (size_t r = 0; r < merges.size(); r++) {
    size_t sp = merges[r].find(' ');
    rank[{id_of_str.at(merges[r].substr(0, sp)), id_of_str.at(merges[r].substr(sp + 1))}] = int32_t(r);
  }
  std::vector<int32_t> out;
  for (std::string_view piece : pretokenize(text)) {
    std::vector<int32_t> ids;
    for (char c : piece) ids.push_back(id_of.at(std::string(1, c)));
    while (ids.size() > 1) {
      int32_t best = INT32_MAX;
      for (size_t i = 0; i + 1 < ids.size(); i++) {
        auto it = rank.find({ids[i], ids[i + 1]});
        if (it != rank.end()) best = std::min(best, it->second);
      }
      if (best == INT32_MAX) break;
      size_t sp = merges[size_t(best)].find(' ');
      int32_t a = id_of_str.at(merges[size_t(best)].substr(0, sp)), b = id_of_str.at(merges[size_t(best)].substr(sp + 1));
      int32_t c = id_of.at(t.token_bytes(a) + t.token_bytes(b));
      std::vector<int32_t> next;
      for (size_t i = 0; i < ids.size(); i++) {
        if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) next.push_back(c), i++;
        else next.push_back(ids[i]);
      }
      ids.swap(next);
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  // A mix that exercises every pre-tokenizer branch: ASCII letters, digits, spaces, punctuation, valid
  // multi-byte characters, and raw bytes (mostly invalid UTF-8).
  static const std::vector<std::string> atoms = {"a", "b", "e", "t", "h", " ", "  ", "\n", "\t", "'", "'s", "1", "2",
                                                 ".", "!", "é", "日", "😀", "\u3000", "\xc2\xa0", "\x1c"};
  std::string s;
  while (s.size() < n) {
    uint32_t r = rng() % 4;
    if (r == 0) s += char(rng() & 0xFF);
    else s += atoms[rng() % atoms.size()];
  }
  return s;
}

}  // namespace

TEST_CASE("GPT-2 pre-tokenization splits like the regex", "[tokenizer]") {
  using V = std::vector<std::string>;
  CHECK(split("Hello world's  123 foo!!\n\n  bar") == V{"Hello", " world", "'s", " ", " 123", " foo", "!!", "\n\n ", " bar"});
  CHECK(split("I'm we're they've she'll he'd it's don't IT'S") ==
        V{"I", "'m", " we", "'re", " they", "'ve", " she", "'ll", " he", "'d", " it", "'s", " don", "'t", " IT", "'", "S"});
  CHECK(split("abc123def 4567 x1.5") == V{"abc", "123", "def", " 4567", " x", "1", ".", "5"});
  CHECK(split("café 日本語です naïve") == V{"café", " 日本語です", " naïve"});
  CHECK(split("😀😀 ok 👍") == V{"😀😀", " ok", " 👍"});
  CHECK(split("a\tb \t c") == V{"a", "\t", "b", " \t", " c"});
  // \s+(?!\S): the last space of a run joins the next word; at the end the run stays whole.
  CHECK(split("a   b") == V{"a", "  ", " b"});
  CHECK(split("a  ") == V{"a", "  "});
  CHECK(split("  a") == V{" ", " a"});
  CHECK(split("x  \ny") == V{"x", "  ", "\n", "y"});
  CHECK(split("a\u3000\u3000b") == V{"a", "\u3000", "\u3000", "b"});
  CHECK(split("''s") == V{"''", "s"});
  CHECK(split("!!'s") == V{"!!'", "s"});
  CHECK(split(" ") == V{" "});
  CHECK(split("") == V{});
  // \s is White_Space: NBSP is a space, U+001C (which Python's str.isspace counts) is not.
  CHECK(split("a\u00a0b") == V{"a", "\u00a0", "b"});
  CHECK(split("a\x1c" "b") == V{"a", "\x1c", "b"});
  // Invalid UTF-8: each bad byte is one "other" unit (llama.cpp's U+FFFD), nothing lost.
  CHECK(split("\xff\xfe" "abc") == V{"\xff\xfe", "abc"});
  CHECK(split("a\xc3") == V{"a", "\xc3"});
  CHECK(split(" \x80x") == V{" \x80", "x"});
  CHECK(split("\xed\xa0\x80!") == V{"\xed\xa0\x80!"});  // an encoded surrogate: three bad bytes
}

TEST_CASE("the pinned Unicode table is 15.1, as llama.cpp's", "[tokenizer]") {
  CHECK(char_class('a') == CharClass::letter);
  CHECK(char_class('7') == CharClass::number);
  CHECK(char_class(0x00B2) == CharClass::number);      // superscript two (No)
  CHECK(char_class(0x2167) == CharClass::number);      // roman numeral eight (Nl)
  CHECK(char_class(0x00AA) == CharClass::letter);      // feminine ordinal (Lo)
  CHECK(char_class(0x0301) == CharClass::other);       // combining acute (Mn)
  CHECK(char_class(0x11F04) == CharClass::letter);     // Kawi letter A (Unicode 15.0)
  CHECK(char_class(0x2EBF0) == CharClass::letter);     // CJK Extension I (Unicode 15.1)
  CHECK(char_class(0x1C89) == CharClass::other);       // Cyrillic TJE: Unicode 16.0, not in 15.1
  CHECK(char_class(0x0085) == CharClass::whitespace);  // NEL
  CHECK(char_class(0x001C) == CharClass::other);
  CHECK(char_class(0x110000) == CharClass::other);
  CHECK(split("x\U0002EBF0y") == std::vector<std::string>{"x\U0002EBF0y"});
}

TEST_CASE("the byte-to-unicode map is GPT-2's", "[tokenizer]") {
  CHECK(byte_to_unicode('a') == "a");
  CHECK(byte_to_unicode('!') == "!");
  CHECK(byte_to_unicode(0x00) == "\u0100");
  CHECK(byte_to_unicode(' ') == "\u0120");  // Ġ
  CHECK(byte_to_unicode('\n') == "\u010a");  // Ċ
  CHECK(byte_to_unicode(0x7F) == "\u0121");
  CHECK(byte_to_unicode(0xAD) == "\u0143");
  CHECK(byte_to_unicode(0xE9) == "\u00e9");
  std::string all, back;
  for (int b = 0; b < 256; b++) all += char(b);
  REQUIRE(unicode_string_to_bytes(bytes_to_unicode_string(all), &back));
  CHECK(back == all);
  CHECK_FALSE(unicode_string_to_bytes("a b", &back));  // a raw space is never in a token string
}

TEST_CASE("a tiny trained tokenizer gives the reference ids", "[tokenizer]") {
  const Tokenizer& t = tiny();
  REQUIRE(t.vocab_size() == kTinyVocab);
  REQUIRE(t.n_merges() == 43);
  REQUIRE(t.eot_id() == kTinyVocab - 1);
  CHECK(t.token_bytes(256) == "at");
  CHECK(t.token_bytes(260) == " the");
  CHECK(t.token_bytes(t.eot_id()) == "<|endoftext|>");
  // From `tests/reference/bpe_reference.py vectors`.
  const std::vector<std::pair<std::string, std::vector<int32_t>>> vectors = {
      {"the cat sat on the mat.", {278, 264, 291, 256, 290, 110, 260, 283, 46}},
      {"that's the hat they'll wear", {257, 256, 262, 260, 265, 260, 121, 39, 108, 108, 32, 119, 101, 97, 114}},
      {"  then   the end\n\n", {32, 260, 110, 287, 260, 282, 10, 10}},
      {"café 日本 123 cats!!", {293, 286, 280, 51, 264, 115, 33, 33}},
      {"😀 emoji\tand tabs", {240, 159, 152, 128, 268, 109, 111, 106, 105, 9, 97, 263, 32, 116, 97, 98, 115}},
  };
  for (const auto& [text, ids] : vectors) {
    INFO("text: " << text);
    CHECK(t.encode(text) == ids);
    CHECK(t.decode(ids) == text);
  }
  // The text of the special token is just text: no EOT from encode.
  std::vector<int32_t> ids = t.encode("a<|endoftext|>b");
  CHECK(std::find(ids.begin(), ids.end(), t.eot_id()) == ids.end());
  CHECK_THROWS_WITH(t.decode({0, kTinyVocab}), Catch::Contains("token id 300 outside [0, 300)"));
}

TEST_CASE("training is deterministic, order-independent and validated", "[tokenizer]") {
  std::vector<std::string> shuffled = kTinyCorpus;
  std::reverse(shuffled.begin(), shuffled.end());
  CHECK(Tokenizer::train(shuffled, kTinyVocab).fingerprint() == tiny().fingerprint());
  CHECK(Tokenizer::train(kTinyCorpus, kTinyVocab + 1).fingerprint() != tiny().fingerprint());
  // Training stops when no pair is left: "abab" -> "ab", "abab".
  Tokenizer small = Tokenizer::train({"abab"}, 1000);
  CHECK(small.vocab_size() == 256 + 2 + 1);
  CHECK(small.encode("abab") == std::vector<int32_t>{257});
  CHECK_THROWS_WITH(Tokenizer::train(kTinyCorpus, 256), Catch::Contains("vocab size must be in [257"));
}

TEST_CASE("encode applies merges in llama.cpp's order (checked against GPT-2's bpe)", "[tokenizer]") {
  // Repetitive text makes overlapping candidates ("aaaa", "abab") common, where a wrong order shows.
  std::vector<std::string> docs;
  std::mt19937 rng(7);
  for (int d = 0; d < 200; d++) {
    std::string s;
    for (int i = 0; i < 60; i++) s += "aab ."[rng() % 5];
    docs.push_back(s);
  }
  Tokenizer t = Tokenizer::train(docs, 400);
  REQUIRE(t.n_merges() > 50);
  for (int i = 0; i < 200; i++) {
    std::string s = i % 2 ? docs[size_t(i)] : random_bytes(rng, 80);
    INFO("case " << i);
    REQUIRE(t.encode(s) == naive_encode(t, s));
  }
}

TEST_CASE("any byte string round-trips, invalid UTF-8 included", "[tokenizer]") {
  std::mt19937 rng(1234);
  Tokenizer t = Tokenizer::train({random_bytes(rng, 20000), random_bytes(rng, 20000)}, 600);
  for (int i = 0; i < 500; i++) {
    std::string s = random_bytes(rng, size_t(rng() % 300));
    std::string joined;
    for (std::string_view p : pretokenize(s)) joined += p;
    REQUIRE(joined == s);
    REQUIRE(t.decode(t.encode(s)) == s);
    REQUIRE(tiny().decode(tiny().encode(s)) == s);
  }
  std::string every;
  for (int b = 255; b >= 0; b--) every += char(b);
  CHECK(t.decode(t.encode(every)) == every);
  // A long run (one pre-token, merged by the heap) stays fast and exact.
  std::string run(100000, '.');
  CHECK(tiny().decode(tiny().encode(run)) == run);
}

TEST_CASE("the default corpus: training, compression and a val round trip", "[tokenizer]") {
  Corpus c = load_corpus("");
  Tokenizer t = Tokenizer::train(c.train, 512);
  REQUIRE(t.vocab_size() == 512);
  TokenizedSplit val = tokenize_split(c.val, t);
  double bytes_per_token = double(val.bytes) / double(val.tokens.size() - val.docs);
  INFO("val bytes/token " << bytes_per_token);
  CHECK(bytes_per_token > 1.8);  // measured 1.92 at vocab 512 (docs/TOKENIZER.md)
  size_t start = 0, doc = 0;
  for (size_t i = 0; i < val.tokens.size(); i++) {
    if (val.tokens[i] != t.eot_id()) continue;
    std::vector<int32_t> ids(val.tokens.begin() + long(start), val.tokens.begin() + long(i));
    REQUIRE(t.decode(ids) == c.val[doc]);
    start = i + 1;
    doc++;
  }
  CHECK(doc == c.val.size());
}

TEST_CASE("GGUF views: byte-level token strings, merges, types", "[tokenizer]") {
  const Tokenizer& t = tiny();
  std::vector<std::string> toks = t.gguf_tokens(), merges = t.gguf_merges();
  std::vector<int32_t> types = t.gguf_token_types();
  REQUIRE(int(toks.size()) == t.vocab_size());
  CHECK(toks[' '] == "Ġ");
  CHECK(toks['\n'] == "Ċ");
  CHECK(toks[260] == "Ġthe");
  CHECK(toks[size_t(t.eot_id())] == "<|endoftext|>");
  CHECK(types[size_t(t.eot_id())] == Tokenizer::kTypeControl);
  CHECK(std::count(types.begin(), types.end(), Tokenizer::kTypeNormal) == t.vocab_size() - 1);
  std::vector<std::string> sorted = toks;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  REQUIRE(int(merges.size()) == t.n_merges());
  CHECK(merges[0] == "a t");
  for (const std::string& m : merges) CHECK(std::count(m.begin(), m.end(), ' ') == 1);
}

TEST_CASE("tokenizer.json round-trips and rejects corrupted files", "[tokenizer]") {
  const Tokenizer& t = tiny();
  std::string path = "/tmp/qat-test-tokenizer-" + std::to_string(::getpid()) + ".json";
  t.save(path);
  Tokenizer u = Tokenizer::load(path);
  CHECK(u.fingerprint() == t.fingerprint());
  CHECK(u.gguf_tokens() == t.gguf_tokens());
  CHECK(u.encode("the cat's hat") == t.encode("the cat's hat"));
  std::string text = read_file(path);
  std::remove(path.c_str());
  CHECK(text.find("\"type\": \"ByteLevel\"") != std::string::npos);
  // The newer Hugging Face merge form, ["A", "B"], loads the same.
  std::string pairs = text;
  size_t at = pairs.find("\"a t\"");
  pairs.replace(at, 5, "[\"a\", \"t\"]");
  CHECK(Tokenizer::from_json(pairs).fingerprint() == t.fingerprint());

  auto with = [&](const std::string& from, const std::string& to) {
    size_t pos = text.find(from);
    REQUIRE(pos != std::string::npos);
    std::string s = text;
    s.replace(pos, from.size(), to);
    return s;
  };
  std::vector<std::pair<std::string, std::string>> bad = {
      {text.substr(0, text.size() / 2), "json:"},
      {"[1, 2]", "top level"},
      {with("\"type\": \"BPE\"", "\"type\": \"WordPiece\""), "model.type"},
      {with("\"type\": \"ByteLevel\"", "\"type\": \"Whitespace\""), "pre_tokenizer.type"},
      {with("\"byte_fallback\": false", "\"byte_fallback\": true"), "model.byte_fallback"},
      {with("\"at\": 256", "\"at\": 300"), "id 300 outside [0, 300)"},
      {with("\"at\": 256", "\"at\": -1"), "expected a non-negative integer id"},
      {with("\"at\": 256", "\"at\": 1.5"), "expected a non-negative integer id"},
      {with("\"at\": 256", "\"at\": 257"), "used twice"},
      {with("\"at\": 256", "\"a t\": 256"), "not a byte-level token string"},
      {with("\"at\": 256", "\"\\u0100\\u0100\": 256"), "not in model.vocab"},
      {with("\"Ā\": 0", "\"ĀĀ\": 0"), "no token for byte 0"},
      {with("\"at\": 256", "\"th\": 256"), "json: duplicate key 'th'"},  // (the parser refuses it first)
      {with("\"a t\"", "\"at\""), "expected \"A B\""},
      {with("\"a t\"", "\"a  t\""), "expected \"A B\""},
      {with("\"a t\"", "\"a Z\""), "the merged token \"aZ\" is not in model.vocab"},
      {with("\"a t\"", "\"a \\u0100\""), "not in model.vocab"},
      {with("\"t h\"", "\"a t\""), "the same pair merged twice"},
      {with("\"a t\"", "7"), "expected \"A B\" or"},
      {with("\"id\": 299", "\"id\": 5"), "added_tokens[0].id"},
      {with("\"content\": \"<|endoftext|>\"", "\"content\": \"<eos>\""), "added_tokens[0].content"},
      {with("\"vocab\": {", "\"vocab\": 3, \"x\": {"), "model.vocab: has the wrong type"},
      {with("\"merges\": [", "\"merges_\": ["), "model.merges: missing"},
  };
  std::string eot_first = with("\"<|endoftext|>\": 299", "\"<|endoftext|>\": 0");
  const std::string byte0 = "\"Ā\": 0";
  eot_first.replace(eot_first.find(byte0), byte0.size(), "\"Ā\": 299");  // swap the ids of byte 0 and EOT
  bad.push_back({eot_first, "<|endoftext|> must have the last id"});
  for (const auto& [json, want] : bad) {
    INFO("expecting: " << want);
    CHECK_THROWS_WITH(Tokenizer::from_json(json, "tok.json"), Catch::StartsWith("tok.json") && Catch::Contains(want));
  }
  CHECK_THROWS_WITH(Tokenizer::load("/nonexistent/tokenizer.json"), Catch::Contains("/nonexistent/tokenizer.json"));
}

TEST_CASE("random damage to tokenizer.json is rejected with a message, never a crash", "[tokenizer]") {
  const std::string text = tiny().to_json();
  std::mt19937 rng(99);
  int rejected = 0;
  for (int i = 0; i < 300; i++) {
    std::string s = text;
    if (i % 3 == 0) s.resize(rng() % s.size());
    else for (int k = 0; k < 3; k++) s[rng() % s.size()] = char(rng() & 0xFF);
    try {
      Tokenizer t = Tokenizer::from_json(s, "x.json");  // damage in a harmless place (whitespace) loads
      CHECK(t.decode(t.encode("the cat's hat")) == "the cat's hat");
    } catch (const Error& e) {
      rejected++;
      CHECK_THAT(e.what(), Catch::StartsWith("x.json: "));
    }
  }
  CHECK(rejected > 200);
}
