// Imported tokenizers (data/model_vocab.h, data/pre_split.h) on tiny vocabularies built here as GGUF
// metadata, with the expected ids worked out by hand from llama.cpp's algorithms (llm_tokenizer_spm and
// llm_tokenizer_bpe in its src/llama-vocab.cpp); each case's comment gives the steps. The full check
// against llama.cpp's own vectors is bin/tokenizer-vectors (docs/TOKENIZER.md), outside `make test`.
#include "data/model_vocab.h"
#include "data/pre_split.h"
#include "data/tokenizer.h"
#include "data/unicode.h"

#include <regex>
#include "src/io/gguf.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;

namespace {

using Ids = std::vector<int32_t>;

// SPM: <unk> <s> </s>, three byte tokens, pieces with scores, one user-defined token.
GgufWriter spm_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_arr_string("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "<0xA9>", "\xe2\x96\x81", "a", "b",
                                             "c", "ab", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab", "bc", "<|user|>"});
  //                                          0        1      2       3         4         5         6 "▁"  7    8
  //                                          9    10   11 "▁a"   12 "▁ab"   13    14
  w.set_arr_f32("tokenizer.ggml.scores", {0, 0, 0, 0, 0, 0, -10, -10, -10, -10, -1, -2, -3, -0.5f, 0});
  w.set_arr_i32("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 4});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  return w;
}
ModelVocab load(const GgufWriter& w) { return ModelVocab::from_gguf(parse_gguf(w.serialize(), "v.gguf")); }

// BPE (byte-level tokens): merges in rank order; "c a" makes "ca", which is no token, then "ca b" "cab".
GgufWriter bpe_writer(const std::string& pre) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_arr_string("tokenizer.ggml.tokens", {"<|begin_of_text|>", "a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "ab", "bc", "abc", "cab"});
  //                                          0                    1    2    3    4 "Ġ"       5     6 "Ġab"           7     8      9
  w.set_arr_i32("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  w.set_arr_string("tokenizer.ggml.merges", {"c a", "a b", "\xc4\xa0 ab", "b c", "ca b"});
  w.set_u32("tokenizer.ggml.bos_token_id", 0);
  w.set_u32("tokenizer.ggml.eos_token_id", 0);
  return w;
}

// The regex itself, run as llama.cpp runs the ones it has no hand-written splitter for: std::regex on
// the text "collapsed" to one byte per codepoint (ASCII as is; other whitespace 0x0B; other letters
// 0xD2, numbers 0xD1, the rest 0xD0), \p{L} / \p{N} written as those bytes plus their ASCII ranges.
std::vector<std::string> regex_split(const std::string& text, const std::string& re) {
  std::vector<uint32_t> cps;
  std::string collapsed;
  for (size_t pos = 0; pos < text.size();) {
    Utf8Unit u = next_utf8_unit(text, pos);
    pos += u.len;
    cps.push_back(u.cp);
    const CharClass c = char_class(u.cp);
    collapsed += u.cp < 128 ? char(u.cp) : c == CharClass::whitespace ? '\x0B' : c == CharClass::letter ? '\xD2'
                                         : c == CharClass::number   ? '\xD1' : '\xD0';
  }
  std::vector<size_t> lengths;
  size_t done = 0;
  const std::regex r(re);
  for (auto it = std::sregex_iterator(collapsed.begin(), collapsed.end(), r); it != std::sregex_iterator(); ++it) {
    if (size_t(it->position()) > done) lengths.push_back(size_t(it->position()) - done);
    lengths.push_back(size_t(it->length()));
    done = size_t(it->position() + it->length());
  }
  if (done < cps.size()) lengths.push_back(cps.size() - done);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t n : lengths) {
    std::string w;
    for (size_t i = start; i < start + n; i++) append_utf8(cps[i], w);
    out.push_back(w);
    start += n;
  }
  return out;
}

// Random short texts over an alphabet that reaches every alternative: ASCII letters (the contraction
// letters in both cases), digits, apostrophe, spaces, CR / LF / tab, punctuation, a non-ASCII letter,
// digit and two spaces, an emoji.
std::vector<std::string> random_texts(size_t count) {
  const std::vector<std::string> alphabet = {"a", "Z", "s", "T", "l", "L", "e", "'", " ", " ", "\n", "\r", "\t", "1", "2",
                                             ".", "!", "\xc3\xa9", "\xe6\x97\xa5", "\xd9\xa3", "\xc2\xa0", "\xe3\x80\x80",
                                             "\xf0\x9f\x98\x80"};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  std::vector<std::string> out;
  for (size_t i = 0; i < count; i++) {
    std::string t;
    for (uint64_t n = next() % 24; n > 0; n--) t += alphabet[next() % alphabet.size()];
    out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("the hand-written Llama 3, Qwen2 and GPT-2 splitters equal their regexes run by std::regex", "[tokenizer_import]") {
  const std::string L = "\xD2" "A-Za-z", N = "\xD1" "0-9";
  const std::string contractions = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
  auto llama3_re = [&](const std::string& digits) {
    return contractions + "|[^\\r\\n" + L + N + "]?[" + L + "]+|[" + N + "]" + digits + "| ?[^\\s" + L + N +
           "]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  };
  const std::string gpt2_re = "'s|'t|'re|'ve|'m|'ll|'d| ?[" + L + "]+| ?[" + N + "]+| ?[^\\s" + L + N + "]+|\\s+(?!\\S)|\\s+";
  size_t checked = 0;
  for (const std::string& t : random_texts(3000)) {
    INFO("text: " << t);
    REQUIRE(pre_split(t, PreType::llama3) == regex_split(t, llama3_re("{1,3}")));
    REQUIRE(pre_split(t, PreType::qwen2) == regex_split(t, llama3_re("")));
    REQUIRE(pre_split(t, PreType::gpt2) == regex_split(t, gpt2_re));
    checked++;
  }
  CHECK(checked == 3000);
}

TEST_CASE("SPM import: scores, leading space, byte fallback, specials", "[tokenizer_import]") {
  const ModelVocab v = load(spm_writer());
  REQUIRE(v.kind() == ModelVocab::Kind::spm);
  // "▁ab": bigrams ▁a (-2), ab (-1): ab first, then ▁ab (-3).
  CHECK(v.encode("ab", false, false) == Ids{12});
  // "▁abc": bc (-0.5) beats ab (-1) and ▁a (-2); then abc is no token, ▁a merges: ▁a bc.
  CHECK(v.encode("abc", false, false) == Ids{11, 13});
  // "▁é": ▁é is no token; é is no token -> its bytes C3 A9 as <0xC3> <0xA9>.
  CHECK(v.encode("\xc3\xa9", false, false) == Ids{6, 4, 5});
  // "▁a\nq": ▁a; "\n" -> <0x0A>; "q" has no byte token and no token: <unk>.
  CHECK(v.encode("a\nq", false, false) == Ids{11, 3, 0});
  // Spaces become ▁, each its own token when nothing merges them.
  CHECK(v.encode("a  b", false, false) == Ids{11, 6, 6, 8});
  // add_bos defaults to true for SPM, add_eos to false.
  CHECK(v.encode("ab", true, false) == Ids{1, 12});
  CHECK(v.encode("", true, false) == Ids{1});
  // A user-defined token is cut out even without parse_special; the text after it gets a leading space again.
  CHECK(v.encode("ab<|user|>ab", false, false) == Ids{12, 14, 12});
  // A control token only with parse_special: else "</s>" is text (4 characters without tokens: <unk> each).
  CHECK(v.encode("ab</s>", false, false) == Ids{12, 0, 0, 0, 0});
  CHECK(v.encode("ab</s>", false, true) == Ids{12, 2});
  CHECK(v.decode({11, 13}) == " abc");
  CHECK(v.decode({6, 4, 5, 1, 14}) == " \xc3\xa9<|user|>");
  CHECK(v.bos_id() == 1);
  CHECK(v.eos_id() == 2);
  CHECK(v.add_bos());
  CHECK_FALSE(v.add_eos());
}

TEST_CASE("BPE import: merge ranks, non-token intermediates, ignore_merges, BOS", "[tokenizer_import]") {
  const ModelVocab dbrx = load(bpe_writer("dbrx"));  // Llama 3's regex without ignore_merges or add_bos
  // "abc": (a,b) rank 1 before (b,c) rank 3 -> ab c; (ab,c) is no merge.
  CHECK(dbrx.encode("abc", false, false) == Ids{5, 3});
  // "cab": (c,a) rank 0 gives "ca" (no token), then (ca,b) rank 4 gives "cab".
  CHECK(dbrx.encode("cab", false, false) == Ids{9});
  // " ab": one word "Ġab": (a,b) then (Ġ,ab).
  CHECK(dbrx.encode(" ab", false, false) == Ids{6});
  // "ca": "ca" stays a non-token symbol: llama.cpp emits the tokens of its single bytes, c a.
  CHECK(dbrx.encode("ca", false, false) == Ids{3, 1});
  CHECK(dbrx.encode("ab", true, false) == Ids{5});  // add_bos is false for dbrx

  const ModelVocab l3 = load(bpe_writer("llama-bpe"));
  CHECK(l3.encode("abc", false, false) == Ids{8});     // ignore_merges: the word is a token
  CHECK(l3.encode("ab", true, false) == Ids{0, 5});     // llama-bpe adds BOS
  CHECK(l3.encode("<|begin_of_text|>ab", false, true) == Ids{0, 5});
  CHECK(l3.decode({6, 9}) == " abcab");
  CHECK(l3.eot_id() == -1);
}

TEST_CASE("pre-tokenizers split as llama.cpp's regexes", "[tokenizer_import]") {
  using W = std::vector<std::string>;
  // Llama 3: "  " leaves its last space to " world"; "\n\n" ends at the last newline; digits by three;
  // contractions case-insensitive.
  CHECK(pre_split("Hello   world\n\n 1234 it'S", PreType::llama3) ==
        W{"Hello", "  ", " world", "\n\n", " ", "123", "4", " it", "'S"});
  CHECK(pre_split("1234", PreType::qwen2) == W{"1", "2", "3", "4"});
  // StarCoder: every digit alone first, then GPT-2's regex inside each piece.
  CHECK(pre_split("a12 b", PreType::starcoder) == W{"a", "1", "2", " b"});
  // GPT-2: lower-case contractions only.
  CHECK(pre_split("it'S", PreType::gpt2) == W{"it", "'", "S"});
  // DeepSeek LLM: newlines alone, letter runs with one leading space, trailing spaces.
  CHECK(pre_split("ab cd\n12  ", PreType::deepseek_llm) == W{"ab", " cd", "\n", "12", "  "});
  // Falcon: punctuation and $+<=>^~|` runs first, GPT-2 inside the rest, then ASCII digits by three.
  CHECK(pre_split("a,b $1234", PreType::falcon) == W{"a", ",", "b", " ", "$", "123", "4"});
  // DeepSeek Coder: \s?\p{P}+ takes "," but not " 1"; \p{N} splits digits one by one.
  CHECK(pre_split("ab, 12", PreType::deepseek_coder) == W{"ab", ",", " ", "1", "2"});
  // default (gpt-neox, no tokenizer.ggml.pre): \p{N}+ then [0-9]{3} splits long numbers by three.
  CHECK(pre_split("x...1234567", PreType::default_) == W{"x", "...", "123", "456", "7"});
  // Unicode punctuation (\p{P}, U+3001 IDEOGRAPHIC COMMA) is not a symbol (U+00A9 COPYRIGHT SIGN).
  CHECK(pre_split("a\xe3\x80\x81\xc2\xa9", PreType::falcon) == W{"a", "\xe3\x80\x81", "\xc2\xa9"});
  // An invalid byte is read as U+FFFD, as llama.cpp does.
  CHECK(pre_split("a\xff", PreType::gpt2) == W{"a", "\xef\xbf\xbd"});
  CHECK(find_pre_type("llama-bpe")->type == PreType::llama3);
  CHECK(find_pre_type("no-such") == nullptr);
}

TEST_CASE("bad tokenizer metadata is refused in one line", "[tokenizer_import]") {
  auto refused = [](GgufWriter w, const std::string& what) {
    INFO(what);
    try {
      load(w);
      FAIL("accepted");
    } catch (const Error& e) {
      std::string m = e.what();
      CHECK(m.find('\n') == std::string::npos);
      CHECK_THAT(m, Catch::Contains("v.gguf") && Catch::Contains(what));
    }
  };
  GgufWriter w = spm_writer();
  w.set_arr_i32("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 9});
  refused(w, "tokenizer.ggml.token_type[14] is 9");
  w = spm_writer();
  w.set_arr_f32("tokenizer.ggml.scores", {0, 1});
  refused(w, "tokenizer.ggml.scores has 2 entries");
  w = spm_writer();
  w.set_arr_f32("tokenizer.ggml.scores", std::vector<float>(15, std::nanf("")));
  refused(w, "tokenizer.ggml.scores[0] is not finite");
  w = spm_writer();
  w.set_u32("tokenizer.ggml.eos_token_id", 15);
  refused(w, "tokenizer.ggml.eos_token_id is 15, outside the vocabulary of 15 tokens");
  w = spm_writer();
  w.set_string("tokenizer.ggml.model", "bert");
  refused(w, "tokenizer.ggml.model \"bert\" is not supported");
  w = spm_writer();
  w.set_arr_string("tokenizer.ggml.tokens", {});
  refused(w, "expected 1 to 1048576 tokens, got 0");
  refused(bpe_writer("no-such-pre"), "tokenizer.ggml.pre \"no-such-pre\" is not supported");
  w = bpe_writer("gpt-2");
  w.set_arr_string("tokenizer.ggml.merges", {"ab"});
  refused(w, "tokenizer.ggml.merges[0]: expected \"A B\"");
  w = bpe_writer("gpt-2");
  w.set_u32("tokenizer.ggml.bos_token_id", 1u << 31);
  refused(w, "tokenizer.ggml.bos_token_id is 2147483648");
}

TEST_CASE("our trained tokenizer, exported as GGUF gpt2 / gpt-2, imports to the same ids", "[tokenizer_import]") {
  // Two implementations of one algorithm: data/tokenizer.cpp (ids on bytes) and ModelVocab (llama.cpp's
  // string merges over byte-level text); the keys are those models/gguf_model.cpp writes.
  const std::vector<std::string> docs = {
      "The quick brown fox jumps over the lazy dog. The dog's 12 toys, 345 bones and 6789 sticks.",
      "  indented\tline\r\nwith CRLF and trailing spaces   ", "it's I'm you're we've they'll he'd DON'T Won't",
      "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80", "the the then them there these"};
  const Tokenizer tok = Tokenizer::train(docs, 400);
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_arr_string("tokenizer.ggml.tokens", tok.gguf_tokens());
  w.set_arr_i32("tokenizer.ggml.token_type", tok.gguf_token_types());
  w.set_arr_string("tokenizer.ggml.merges", tok.gguf_merges());
  w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(tok.eot_id()));
  w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(tok.eot_id()));
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  const ModelVocab v = load(w);
  REQUIRE(v.vocab_size() == tok.vocab_size());
  CHECK(v.eot_id() == tok.eot_id());  // found by its text, <|endoftext|>
  std::vector<std::string> texts = docs;
  texts.push_back("brown dogs' sticks\n\n\n  1234567 ...!!! <|endoftext|> \xc2\xa0x");
  for (const std::string& t : texts) {
    INFO(t);
    CHECK(v.encode(t, false, false) == tok.encode(t));
    CHECK(v.decode(v.encode(t, false, false)) == t);
  }
  std::vector<int32_t> with_bos = tok.encode("the dog");
  with_bos.insert(with_bos.begin(), tok.eot_id());
  CHECK(v.encode("the dog", true, false) == with_bos);
}

TEST_CASE("bin/tokenizer-vectors: ids as llama-tokenize prints them, the vectors check, one-line errors", "[tokenizer_import][cli]") {
  test::ScratchDir dir("tokenizer-import");
  auto run = [&](const std::vector<std::string>& argv) { return test::run_proc(argv, dir.path + "/log"); };
  const std::string gguf = dir.put("spm.gguf", spm_writer().serialize());
  // llama-tokenize's defaults: BOS when the model adds it, special tokens parsed.
  test::ProcResult r = run({"bin/tokenizer-vectors", "--model", gguf, "--prompt", "ab</s>abc"});
  INFO(r.what());
  CHECK(r.code == 0);
  CHECK(r.out == "[1, 12, 2, 11, 13]\n");
  r = run({"bin/tokenizer-vectors", "--model", gguf, "--prompt", "ab</s>", "--no-bos", "--no-parse-special"});
  CHECK(r.out == "[12, 0, 0, 0, 0]\n");
  // A vectors directory in llama.cpp's layout: one vocabulary, two cases, one of them wrong on purpose.
  dir.put("ggml-vocab-tiny.gguf", spm_writer().serialize());
  dir.put("ggml-vocab-tiny.gguf.inp", "ab\n__ggml_vocab_test__\nabc\n__ggml_vocab_test__\n");
  dir.put("ggml-vocab-tiny.gguf.out", " 12\n 11 9\n");
  r = run({"bin/tokenizer-vectors", "--vocab-dir", dir.path});
  INFO(r.what());
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("tiny") && Catch::Contains("2 cases     1 identical") &&
                        Catch::Contains("first difference: 'abc' at id 1: expected [11 9], got [11 13]"));
  dir.put("ggml-vocab-tiny.gguf.out", " 12\n 11 13\n");
  r = run({"bin/tokenizer-vectors", "--vocab-dir", dir.path});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("all identical"));
  r = run({"bin/tokenizer-vectors", "--vocab-dir", dir.path + "/none"});
  CHECK(r.code == 1);
  CHECK(r.err == "tokenizer-vectors: error: --vocab-dir: " + dir.path + "/none is not a directory\n");
  r = run({"bin/tokenizer-vectors", "--model", dir.path + "/ggml-vocab-tiny.gguf.inp", "--prompt", "x"});
  CHECK(r.code == 1);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = run({"bin/tokenizer-vectors", "--model", gguf});
  CHECK(r.code == 2);
  CHECK(r.err == "tokenizer-vectors: --model: give exactly one of --prompt and --file\n");
  r = run({"bin/tokenizer-vectors", "--help"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("--vocab-dir DIR") && Catch::Contains("--model FILE.gguf") && Catch::Contains("--no-bos"));
}
