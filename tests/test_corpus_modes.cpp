// Any text trains (issue 17, "Any model shape, any text", the text part): a file without document
// separators is one stream split by position (no longer refused), a book's paragraphs are not documents
// unless --documents blank-line asks, the fortune format is detected; a --data directory follows
// symlinks, reads each file once, reports and skips the files it cannot use, and is refused only when
// nothing usable is left; bin/eval scores the same val split as training. Code under test:
// data/corpus.cpp, data/text_files.cpp, data/dataset.cpp, models/train/trainer.cpp, tools/eval.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "src/io/json.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// `lines` lines of prose; a blank line after every `paragraph` lines (0: none).
std::string book(int lines, int paragraph = 0) {
  const char* words[] = {"the", "river", "ran", "past", "an", "old", "mill", "where", "nobody", "lived", "any", "more"};
  std::string text;
  uint64_t x = 99;
  for (int l = 0; l < lines; l++) {
    for (int i = 0; i < 8; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      text += words[(x >> 33) % 12];
      text += i < 7 ? " " : ".\n";
    }
    if (paragraph > 0 && (l + 1) % paragraph == 0) text += "\n";
  }
  return text;
}

std::string error_of(const std::string& path, DocMode mode = DocMode::detect) {
  try {
    load_corpus(path, mode);
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find('\n') == std::string::npos);
    return m;
  }
  return "no error";
}

bool has_problem(const Corpus& c, const std::string& path, const std::string& why) {
  for (const std::string& p : c.files.problems)
    if (p.find(path) != std::string::npos && p.find(why) != std::string::npos) return true;
  return false;
}

// The val tokens of a training run's final evaluation (the whole split), from its metrics log.
int64_t final_val_tokens(const std::string& ckpt) {
  int64_t n = -1;
  const std::string metrics = read_file(ckpt + "/metrics.jsonl");
  for (size_t pos = 0, eol; (eol = metrics.find('\n', pos)) != std::string::npos; pos = eol + 1) {
    Json m = Json::parse(metrics.substr(pos, eol - pos));
    if (m.contains("val_split") && m.at("val_split").as_string() == "all") n = m.at("val_tokens").as_int();
  }
  return n;
}

}  // namespace

TEST_CASE("a file without separators is one stream, split by position: the last ~10% is val", "[corpus]") {
  ScratchDir dir("corpus-stream");
  const std::string text = book(300);
  const std::string p = dir.put("notes.txt", text);
  Corpus c = load_corpus(p);
  REQUIRE(c.stream());
  REQUIRE(c.train.size() == 1);
  REQUIRE(c.val.size() == 1);
  CHECK(c.train[0] + c.val[0] == text);  // nothing dropped, nothing reordered
  CHECK(c.val[0] == text.substr(text.size() - c.val[0].size()));
  CHECK(c.train[0].back() == '\n');  // cut at a line start
  const double val_frac = double(c.val_bytes()) / double(text.size());
  CHECK(val_frac > 0.08);
  CHECK(val_frac <= 0.10);
  CHECK_THAT(c.describe(), Catch::Contains("one stream of") && Catch::Contains("no '%' separator lines") &&
                               Catch::Contains("~10% by position"));
  // A book with paragraphs is a stream too: its paragraphs are not documents unless asked.
  const std::string with_paragraphs = book(300, 5);
  Corpus b = load_corpus(dir.put("book.txt", with_paragraphs));
  CHECK(b.stream());
  CHECK(b.train[0] + b.val[0] == with_paragraphs);
  // The same two texts as documents hash differently (tokens differ: a stream has no EOT).
  Corpus as_docs = c;
  as_docs.mode = DocMode::percent;
  CHECK(as_docs.content_hash() != c.content_hash());
  // --documents none forces a stream on a fortune-format file.
  Corpus f = load_corpus(dir.put("fortunes", synthetic_corpus(50)), DocMode::none);
  CHECK(f.stream());
  CHECK_THAT(f.why, Catch::Contains("--documents none"));
}

TEST_CASE("the stream cut: a line start near the 90% mark, else a UTF-8 character boundary", "[corpus]") {
  std::string lines;
  for (int i = 0; i < 105; i++) lines += "line " + std::to_string(1000 + i) + "\n";  // 10 bytes each
  CHECK(stream_cut(lines) == 950);  // the 90% mark is 945, mid-line: the next line start
  std::string long_line(1000, 'a');
  long_line[980] = '\n';  // the next line start (981) is more than 2% past the mark (900)
  CHECK(stream_cut(long_line) == 900);
  // No newline: 2-byte characters, never cut inside one.
  std::string accents;
  for (int i = 0; i < 101; i++) accents += "\xc3\xa9";  // 202 bytes; the 90% mark (182) is a lead byte
  CHECK(stream_cut(accents) == 182);
  accents += "x";  // 203 bytes: the mark (183) is a continuation byte, the cut moves to 184
  CHECK(stream_cut(accents) == 184);
  CHECK(stream_cut("ab") == 1);
}

TEST_CASE("--documents blank-line splits at blank lines; the % format is detected", "[corpus]") {
  ScratchDir dir("corpus-docs");
  const std::string p = dir.put("book.txt", book(100, 4));
  Corpus c = load_corpus(p, DocMode::blank_line);
  CHECK_FALSE(c.stream());
  CHECK(c.docs() == 25);
  for (const auto* split : {&c.train, &c.val})
    for (const std::string& d : *split) CHECK(std::count(d.begin(), d.end(), '\n') == 3);  // 4 lines, no trailer
  // Detected: the fortune format, one document per '%' chunk.
  Corpus f = load_corpus(dir.put("fortunes", synthetic_corpus(60)));
  CHECK(f.mode == DocMode::percent);
  CHECK(f.docs() == 60);
  CHECK_THAT(f.describe(), Catch::Contains("60 documents") && Catch::Contains("'%'"));
  // --documents percent on a file without '%' lines: one document, refused with the ways out.
  CHECK_THAT(error_of(p, DocMode::percent), Catch::Contains(p) && Catch::Contains("only one document") &&
                                                Catch::Contains("--documents none"));
  CHECK_THROWS_AS(parse_doc_mode("paragraphs"), UsageError);
  for (DocMode m : {DocMode::detect, DocMode::none, DocMode::percent, DocMode::blank_line})
    CHECK(parse_doc_mode(doc_mode_name(m)) == m);
}

TEST_CASE("a stream is tokenized without EOT", "[corpus]") {
  ScratchDir dir("corpus-stream-tok");
  Corpus c = load_corpus(dir.put("notes.txt", book(200)));
  Tokenizer tok = Tokenizer::train(c.train, 300);
  TokenizedData d = load_or_tokenize(c, tok, "");
  CHECK(d.train.tokens == tok.encode(c.train[0]));
  CHECK(d.val.tokens == tok.encode(c.val[0]));
  CHECK(std::count(d.train.tokens.begin(), d.train.tokens.end(), tok.eot_id()) == 0);
  CHECK(d.train.bytes + d.val.bytes == c.train_bytes() + c.val_bytes());
}

TEST_CASE("a --data directory follows symlinks, reads each file once, skips unusable files and says so", "[corpus]") {
  ScratchDir dir("corpus-links"), outside("corpus-links-outside");
  const std::string d = dir.path + "/data";
  make_dirs(d);
  const std::string a = dir.put("data/a.txt", book(20, 4));  // one document: paragraphs stay together
  const std::string ext = outside.put("b-outside.txt", synthetic_corpus(30));
  REQUIRE(::symlink(ext.c_str(), (d + "/b-link").c_str()) == 0);       // followed: 30 documents
  REQUIRE(::symlink(a.c_str(), (d + "/c-same-as-a").c_str()) == 0);    // a again: read once
  REQUIRE(::symlink((dir.path + "/nowhere").c_str(), (d + "/d-dangling").c_str()) == 0);
  const std::string bin = dir.put("data/e-binary", std::string("ELF\0\x01\x02", 6));
  const std::string latin = dir.put("data/f-latin1.txt", "caf\xe9\n");
  const std::string locked = dir.put("data/g-locked.txt", "secret words\n");
  ::chmod(locked.c_str(), 0);
  dir.put("data/.hidden", "hidden\n");
  dir.put("data/b-link.dat", "index");
  Corpus c = load_corpus(d);
  const bool root = ::geteuid() == 0;  // root reads a mode-000 file anyway
  CHECK(c.mode == DocMode::percent);
  CHECK(c.docs() == 31u + (root ? 1u : 0u));
  std::vector<std::string> used{a, d + "/b-link"};
  if (root) used.push_back(locked);
  CHECK(c.files.files == used);
  CHECK(c.files.skipped.at("another name of a file already read") == 1);
  CHECK(c.files.skipped.at("hidden") == 1);
  CHECK(c.files.skipped.at("strfile .dat index") == 1);
  CHECK(has_problem(c, d + "/d-dangling", "a symlink to nothing"));
  CHECK(has_problem(c, bin, "looks binary (a NUL byte at offset 3)"));
  CHECK(has_problem(c, latin, "not valid UTF-8 (byte offset 3)"));
  if (!root) CHECK(has_problem(c, locked, "cannot read"));
  CHECK(c.files.problems.size() == (root ? 3u : 4u));
  CHECK_THAT(c.describe(), Catch::Contains(std::to_string(used.size()) + " files used") &&
                               Catch::Contains("1 (another name of a file already read)") &&
                               Catch::Contains("(unusable: see the warnings)"));
  // --documents none: the usable files joined in sorted order, one stream.
  Corpus s = load_corpus(d, DocMode::none);
  REQUIRE(s.stream());
  std::string joined;
  for (const std::string& f : used) joined += read_file(f);
  CHECK(s.train[0] + s.val[0] == joined);
}

TEST_CASE("a --data directory with nothing usable is refused, naming a reason", "[corpus]") {
  ScratchDir dir("corpus-unusable");
  dir.put("binary", std::string("\0\0\0", 3));
  dir.put("blank.txt", "  \n\n");
  REQUIRE(::symlink((dir.path + "/nowhere").c_str(), (dir.path + "/dangling").c_str()) == 0);
  CHECK_THAT(error_of(dir.path), Catch::Contains(dir.path) && Catch::Contains("has no usable text file") &&
                                     Catch::Contains("3 (unusable"));
  ScratchDir empty("corpus-empty");
  empty.put("x.dat", "index");
  CHECK_THAT(error_of(empty.path), Catch::Contains("holds no text files (skipped 1 (strfile .dat index))"));
}

TEST_CASE("bin/train trains on a plain text file as a stream; bin/eval scores the same val split", "[corpus]") {
  ScratchDir dir("corpus-train");
  const std::string p = dir.put("notes.txt", book(400)), out = dir.path + "/ckpt", cache = dir.path + "/cache";
  auto train = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> argv{"bin/train", "--data", p, "--preset", "tiny", "--vocab", "300", "--ctx", "16",
                                  "--batch", "2", "--steps", "2", "--threads", "1", "--out", out, "--cache-dir", cache,
                                  "--no-plot"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_proc(argv, dir.path + "/train");
  };
  ProcResult r = train({});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("data: " + p + ": one stream of") && Catch::Contains("~10% by position"));
  Json opts = Json::parse(read_file(out + "/state.json")).at("options");
  CHECK(opts.at("documents").as_string() == "none");
  // The final evaluation of training (all windows) and bin/eval's: the same number of val tokens.
  const int64_t trained_tokens = final_val_tokens(out);
  ProcResult e = run_proc({"bin/eval", "--model", out, "--cache-dir", cache, "--threads", "1", "--json"}, dir.path + "/eval");
  INFO(e.what());
  REQUIRE(e.code == 0);
  Json j = Json::parse(e.out);
  CHECK_THAT(j.at("text").as_string(), Catch::Contains("one stream, val = its last 10%"));
  CHECK(j.at("tokens").as_int() == trained_tokens);
  // Asking for the stream explicitly scores the same; the old paragraph rule would be another split.
  ProcResult x = run_proc({"bin/eval", "--model", out, "--cache-dir", cache, "--threads", "1", "--json", "--data", p,
                           "--documents", "none"}, dir.path + "/eval2");
  INFO(x.what());
  REQUIRE(x.code == 0);
  CHECK(Json::parse(x.out).at("val_loss").as_double() == j.at("val_loss").as_double());
  // Too small for a train and a val window: one line with the sizes.
  const std::string tiny = dir.put("tiny.txt", "a few words only, not even one line of a book\n");
  ProcResult t = run_proc({"bin/train", "--data", tiny, "--preset", "tiny", "--vocab", "300", "--ctx", "16", "--steps",
                           "2", "--threads", "1", "--out", dir.path + "/tiny-run", "--cache-dir", cache, "--quiet"},
                          dir.path + "/tiny");
  CHECK(t.code == 1);
  CHECK(t.err.find('\n') == t.err.size() - 1);
  CHECK_THAT(t.err, Catch::Contains("one stream of") && Catch::Contains("the train part has") &&
                        Catch::Contains("val part (the last 10%)") && Catch::Contains("one context window of 17"));
}

TEST_CASE("bin/eval on a checkpoint that records no --documents: the rule it was trained with (blank-line)",
          "[corpus]") {
  ScratchDir dir("corpus-legacy");
  const std::string p = dir.put("book.txt", book(400, 3)), out = dir.path + "/ckpt", cache = dir.path + "/cache";
  ProcResult r = run_proc({"bin/train", "--data", p, "--documents", "blank-line", "--preset", "tiny", "--vocab", "300",
                           "--ctx", "16", "--batch", "2", "--steps", "2", "--threads", "1", "--out", out, "--cache-dir",
                           cache, "--no-plot", "--quiet"},
                          dir.path + "/train");
  INFO(r.what());
  REQUIRE(r.code == 0);
  auto eval_tokens = [&](const std::string& name, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{"bin/eval", "--model", out, "--cache-dir", cache, "--threads", "1", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ProcResult e = run_proc(argv, dir.path + name);
    INFO(e.what());
    REQUIRE(e.code == 0);
    return Json::parse(e.out).at("tokens").as_int();
  };
  const int64_t recorded = eval_tokens("/eval1");
  CHECK(recorded == final_val_tokens(out));
  // Remove the field, as in a checkpoint written before --documents existed.
  const Json st = Json::parse(read_file(out + "/state.json"));
  REQUIRE(st.at("options").at("documents").as_string() == "blank-line");
  Json old_st = Json::object(), old_opts = Json::object();
  for (const auto& [k, v] : st.at("options").members())
    if (k != "documents") old_opts.set(k, v);
  for (const auto& [k, v] : st.members()) old_st.set(k, k == "options" ? old_opts : v);
  write_file_atomic(out + "/state.json", old_st.dump(2));
  CHECK(eval_tokens("/eval2") == recorded);
  // The auto rule makes this book one stream: another split, another count (--documents overrides).
  CHECK(eval_tokens("/eval3", {"--documents", "auto"}) != recorded);
}
