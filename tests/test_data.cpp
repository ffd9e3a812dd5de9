// Corpus reading (document splitting, the default fortune corpus, the deterministic split, one-line
// errors for bad input) and the tokenized-data cache (hit on the second run, corrupted files rebuilt for
// the reason they were rejected). Code under test: data/corpus.h, data/dataset.h.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

struct TempDir {
  std::string path;
  explicit TempDir(const std::string& name) : path("/tmp/qat-test-" + name + "-" + std::to_string(::getpid())) {
    remove_tree(path);
    make_dirs(path);
  }
  ~TempDir() { remove_tree(path); }
  std::string put(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    write_file_atomic(p, text);
    return p;
  }
};

Corpus two_doc_corpus() {
  Corpus c;
  c.train = {"the cat sat on the mat", "a dog's life"};
  c.val = {"the end"};
  c.source = "test";
  return c;
}

}  // namespace

TEST_CASE("documents split at % lines, or at blank lines", "[data]") {
  using V = std::vector<std::string>;
  CHECK(split_documents("a\nb\n%\nc\n%\n\n%\n  \n%\nd") == V{"a\nb", "c", "d"});
  CHECK(split_documents("one\r\n%\r\ntwo\r\n") == V{"one", "two"});   // CRLF
  CHECK(split_documents("  indented\n  art  \n%\n") == V{"  indented\n  art  "});  // leading space kept
  CHECK(split_documents("50% off\n%%\n") == V{"50% off\n%%"});  // no separator line: one paragraph
  CHECK(split_documents("p1 line1\np1 line2\n\n\n  \np2\n") == V{"p1 line1\np1 line2", "p2"});
  CHECK(split_documents("\n\n") == V{});
}

TEST_CASE("the default corpus: fortunes, split ~90/10 by hash, deterministically", "[data]") {
  Corpus a = load_corpus("");
  Corpus b = load_corpus(kDefaultCorpusDir);
  CHECK(a.source == kDefaultCorpusDir);
  CHECK(a.content_hash() == b.content_hash());
  REQUIRE(a.docs() > 10000);
  double val_frac = double(a.val.size()) / double(a.docs());
  CHECK(val_frac > 0.08);
  CHECK(val_frac < 0.12);
  CHECK(a.train_bytes() + a.val_bytes() > 2000000);
  for (const std::string& d : a.val) REQUIRE(is_val_document(d));
  for (const std::string& d : a.train) REQUIRE_FALSE(is_val_document(d));
  for (const std::string& d : a.train) REQUIRE((!d.empty() && d.back() != '\n'));
}

TEST_CASE("a --data directory: text files, sorted, recursive, each file once", "[data]") {
  TempDir dir("corpus-dir");
  std::string docs;
  for (int i = 0; i < 40; i++) docs += "fortune number " + std::to_string(i) + "\n%\n";
  std::string f = dir.put("b-fortunes", docs);
  dir.put("a-notes.txt", "first paragraph\n\nsecond paragraph\n");  // no '%' lines: one document
  make_dirs(dir.path + "/sub");
  dir.put("sub/more", "from a subdirectory\n");
  dir.put("b-fortunes.dat", std::string("\0\0\0\x02", 4));  // strfile index: skipped, not "binary"
  dir.put(".hidden", std::string("\0", 1));                  // hidden: skipped
  REQUIRE(::symlink(f.c_str(), (dir.path + "/b-fortunes.u8").c_str()) == 0);  // the same file: read once
  Corpus c = load_corpus(dir.path);
  CHECK(c.docs() == 42);
  CHECK(c.source == dir.path);
  std::vector<std::string> all = c.train;
  all.insert(all.end(), c.val.begin(), c.val.end());
  CHECK(std::count(all.begin(), all.end(), "fortune number 7") == 1);
  CHECK(std::count(all.begin(), all.end(), "from a subdirectory") == 1);
  CHECK(std::count(all.begin(), all.end(), "first paragraph\n\nsecond paragraph") == 1);
  CHECK(!c.val.empty());
  CHECK(!c.train.empty());
}

TEST_CASE("a tiny corpus still gets both splits", "[data]") {
  TempDir dir("corpus-tiny");
  Corpus c = load_corpus(dir.put("two.txt", "alpha\n\nbeta\n"), DocMode::blank_line);
  CHECK(c.train.size() == 1);
  CHECK(c.val.size() == 1);
}

TEST_CASE("bad --data input gets a one-line error naming the file", "[data]") {
  TempDir dir("corpus-bad");
  auto err = [](const std::string& path, DocMode mode = DocMode::detect) {
    try {
      load_corpus(path, mode);
    } catch (const Error& e) {
      std::string m = e.what();
      CHECK(m.find('\n') == std::string::npos);
      return m;
    }
    return std::string("no error");
  };
  std::string p;
  CHECK_THAT(err(dir.path + "/missing"), Catch::Contains(dir.path + "/missing") && Catch::Contains("does not exist"));
  p = dir.put("empty", "");
  CHECK_THAT(err(p), Catch::Contains(p) && Catch::Contains("is empty"));
  p = dir.put("nul", std::string("text\0more\n\nx", 12));
  CHECK_THAT(err(p), Catch::Contains(p) && Catch::Contains("binary (a NUL byte at offset 4)"));
  p = dir.put("latin1", "caf\xe9\n\nbar\n");
  CHECK_THAT(err(p), Catch::Contains(p) && Catch::Contains("not valid UTF-8 (byte offset 3)"));
  p = dir.put("one", "just one document\n");
  CHECK_THAT(err(p, DocMode::blank_line), Catch::Contains(p) && Catch::Contains("only one document"));
  p = dir.put("seps", "%\n%\n  \n%\n");
  CHECK_THAT(err(p), Catch::Contains(p) && Catch::Contains("has no documents"));
  make_dirs(dir.path + "/empty-dir");
  CHECK_THAT(err(dir.path + "/empty-dir"), Catch::Contains("empty-dir") && Catch::Contains("holds no text files"));
  p = dir.put("secret", "a\n\nb\n");
  ::chmod(p.c_str(), 0);
  if (::geteuid() != 0) CHECK_THAT(err(p), Catch::Contains(p) && Catch::Contains("cannot read"));  // root reads anyway
}

TEST_CASE("tokenized splits: each document then EOT; bytes exclude EOT", "[data]") {
  Corpus c = two_doc_corpus();
  Tokenizer t = Tokenizer::train(c.train, 270);
  TokenizedSplit s = tokenize_split(c.train, t);
  CHECK(s.docs == 2);
  CHECK(s.bytes == c.train[0].size() + c.train[1].size());
  REQUIRE(s.tokens.back() == t.eot_id());
  CHECK(std::count(s.tokens.begin(), s.tokens.end(), t.eot_id()) == 2);
  std::vector<int32_t> first = t.encode(c.train[0]);
  CHECK(std::equal(first.begin(), first.end(), s.tokens.begin()));
  CHECK(s.tokens[first.size()] == t.eot_id());
  CHECK(t.decode(s.tokens.to_vector()) == c.train[0] + "<|endoftext|>" + c.train[1] + "<|endoftext|>");
}

TEST_CASE("the token cache: hit on the second run, corrupted files rebuilt", "[data]") {
  TempDir dir("token-cache");
  Corpus c = two_doc_corpus();
  Tokenizer t = Tokenizer::train(c.train, 270);
  const std::string cache = dir.path + "/cache";

  TokenizedData first = load_or_tokenize(c, t, cache);
  CHECK_FALSE(first.from_cache);
  REQUIRE(file_exists(first.cache_path));
  TokenizedData second = load_or_tokenize(c, t, cache);
  CHECK(second.from_cache);
  CHECK(second.train.tokens == first.train.tokens);
  CHECK(second.val.tokens == first.val.tokens);
  CHECK(second.train.bytes == first.train.bytes);
  CHECK(second.val.docs == first.val.docs);

  // Another tokenizer or another corpus is another file.
  Tokenizer t2 = Tokenizer::train(c.train, 265);
  CHECK(token_cache_path(c, t2, cache) != first.cache_path);
  Corpus c2 = c;
  c2.val.push_back("more");
  CHECK(token_cache_path(c2, t, cache) != first.cache_path);

  const std::string good = read_file(first.cache_path);
  // Returns why the corrupted file was rejected; the data is re-tokenized and the file rewritten.
  auto rejected_because = [&](const std::string& bytes) {
    write_file_atomic(first.cache_path, bytes);
    TokenizedData d = load_or_tokenize(c, t, cache);
    CHECK_FALSE(d.from_cache);
    CHECK(d.train.tokens == first.train.tokens);
    CHECK(d.val.tokens == first.val.tokens);
    CHECK(read_file(first.cache_path) == good);
    return d.cache_problem;
  };
  auto with_byte = [&](size_t pos, char xor_mask) {
    std::string s = good;
    s[pos] = char(s[pos] ^ xor_mask);
    return s;
  };
  const size_t header = 8 + 12 * 8;
  REQUIRE(good.size() == header + 4 * (first.train.tokens.size() + first.val.tokens.size()));
  CHECK(rejected_because(with_byte(good.size() - 3, 0x01)) == "checksum mismatch");
  CHECK(rejected_because(good.substr(0, good.size() - 4)) == "token counts do not match the file size");
  CHECK(rejected_because(good + "xxxx") == "token counts do not match the file size");
  CHECK(rejected_because(good.substr(0, 20)) == "shorter than its header");
  CHECK(rejected_because("") == "shorter than its header");
  CHECK(rejected_because(std::string(header + 40, 'x')) == "bad magic");
  CHECK(rejected_because(with_byte(8, 0x08)) == "version 9, expected 1");
  CHECK(rejected_because(with_byte(8 + 8, 0x01)) == "made for another corpus or tokenizer");
  CHECK(rejected_because(with_byte(8 + 4 * 8 + 7, 0x40)) == "token counts do not match the file size");  // huge count
  // A valid checksum over an out-of-range id: the ids are checked too.
  std::string bad_id = good;
  int32_t big = 1000;
  std::memcpy(&bad_id[header], &big, 4);
  uint64_t sum = fnv1a64(bad_id.data() + header, bad_id.size() - header);
  std::memcpy(&bad_id[8 + 10 * 8], &sum, 8);
  CHECK(rejected_because(bad_id) == "token id 1000 out of range");
  CHECK(load_or_tokenize(c, t, cache).from_cache);  // and the rewritten file is good again

  TokenizedData nocache = load_or_tokenize(c, t, "");
  CHECK_FALSE(nocache.from_cache);
  CHECK(nocache.cache_path.empty());
  // An unwritable cache directory (below a regular file, so even root cannot create it) costs a warning.
  TokenizedData unwritable = load_or_tokenize(c, t, first.cache_path + "/sub");
  CHECK_FALSE(unwritable.from_cache);
  CHECK(unwritable.train.tokens == first.train.tokens);
}
