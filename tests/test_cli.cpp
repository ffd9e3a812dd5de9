// What a user sees when they get something wrong (issue 8, "Bad input gets a clear error, never a
// crash"): every binary runs as a child process. --help exits 0 and lists the options; a bad flag or
// value exits 2, a bad file exits 1, each with exactly one line on stderr naming the flag or the file,
// never a signal, abort or stack trace. Covers bin/train (including the data edge cases and corrupt
// checkpoints for --resume / --init), bin/generate, bin/quantize, bin/eval and bin/bench.
// Code under test: src/util/cli.cpp, tools/*.cpp, data/corpus.cpp, models/train/*.cpp, models/*.cpp.
#include <signal.h>

#include <filesystem>

#include <cblas.h>

#include "models/train/data_free.h"
#include "src/core/parallel.h"
#include "src/io/gguf.h"
#include "src/io/json.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// A tiny trained checkpoint (2 steps on the synthetic corpus) and its GGUF export, made once.
struct Fixture {
  ScratchDir dir{"cli"};
  std::string corpus, ckpt, gguf;
  Fixture() {
    corpus = dir.put("corpus.txt", synthetic_corpus(120));
    ckpt = dir.path + "/ckpt";
    ProcResult r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "16",
                             "--batch", "2", "--steps", "2", "--threads", "1", "--out", ckpt, "--cache-dir",
                             dir.path + "/cache", "--quiet", "--no-plot"},
                            dir.path + "/train");
    if (r.code != 0) fail("fixture: bin/train failed: ", r.what());
    gguf = dir.path + "/model.gguf";
    r = run_proc({"bin/quantize", "--model", ckpt, "--scheme", "q8_0", "--to-gguf", gguf, "--threads", "1"},
                 dir.path + "/quantize");
    if (r.code != 0) fail("fixture: bin/quantize failed: ", r.what());
  }
  // A copy of the checkpoint directory in which `file` holds `bytes`.
  std::string damaged(const std::string& name, const std::string& file, const std::string& bytes) const {
    std::string d = dir.path + "/" + name;
    remove_tree(d);
    make_dirs(d);
    for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors", "state.json"})
      write_file_atomic(d + "/" + f, read_file(ckpt + "/" + f));
    write_file_atomic(d + "/" + file, bytes);
    return d;
  }
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}

int g_run = 0;
ProcResult run(const std::vector<std::string>& argv, double timeout_s = 60) {
  return run_proc(argv, fixture().dir.path + "/run" + std::to_string(g_run++), {}, timeout_s);
}

// The process exited with `code` and wrote exactly one line to stderr, holding every one of `parts`.
void expect_error(const std::vector<std::string>& argv, int code, const std::vector<std::string>& parts) {
  std::string cmd;
  for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  ProcResult r = run(argv);
  INFO("$ " << cmd << "\n" << r.what());
  REQUIRE(r.signal == 0);
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.code == code);
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
  for (const std::string& p : parts) CHECK_THAT(r.err, Catch::Contains(p));
  for (const char* bad : {"terminate called", "Aborted", "Segmentation", "what():", "AddressSanitizer", "runtime error"})
    CHECK_THAT(r.err, !Catch::Contains(bad));
}

void expect_help(const std::vector<std::string>& argv, const std::vector<std::string>& options) {
  ProcResult r = run(argv);
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Catch::StartsWith("usage: "));
  for (const std::string& o : options) CHECK_THAT(r.out, Catch::Contains(o));
}

}  // namespace

TEST_CASE("every binary: --help, unknown flags, missing and out-of-range values", "[cli]") {
  (void)fixture();
  expect_help({"bin/train", "--help"}, {"--data PATH", "--steps N", "--resume", "--out DIR", "--qat SCHEME", "--help"});
  expect_help({"bin/generate", "--help"}, {"--model PATH", "--prompt TEXT", "-n, --tokens N", "--temp X", "--seed N"});
  expect_help({"bin/quantize", "--help"}, {"--model PATH", "--scheme S", "--to-gguf FILE.gguf"});
  expect_help({"bin/eval", "--help"}, {"--model PATH", "--data PATH", "--ptq S[:M]", "--windows N", "--reference MODEL"});
  expect_help({"bin/landscape", "--help"}, {"--fp32 DIR", "--qat DIR", "--grid N", "--rise X", "--out PREFIX"});
  expect_help({"bin/qat-study", "--help"}, {"--schemes LIST", "--dim N", "--plot FILE.png"});
  expect_help({"bin/bench", "--help"}, {"bench kernels"});
  expect_help({"bin/bench", "kernels", "--help"}, {"--isa LIST", "--threads LIST", "--rounds N"});
  expect_help({"bin/bench", "serve-load", "--help"}, {"--clients LIST", "--llama-server PATH", "--shapes LIST"});

  for (const char* bin : {"bin/train", "bin/generate", "bin/quantize", "bin/eval", "bin/landscape"}) {
    expect_error({bin, "--bogus"}, 2, {"unknown option '--bogus'"});
    expect_error({bin, "stray"}, 2, {"unexpected argument 'stray'"});
    expect_error({bin, "--threads"}, 2, {"--threads: missing value"});
    expect_error({bin, "--threads", "-1"}, 2, {"--threads: expected an integer in [0, 4096], got '-1'"});
    expect_error({bin, "--threads", "2x"}, 2, {"--threads: expected an integer"});
    expect_error({bin, "--threads", "99999999999999999999"}, 2, {"--threads: expected an integer"});
  }
  expect_error({"bin/train", "--steps", "-5"}, 2, {"--steps: expected an integer in [0, 100000000], got '-5'"});
  expect_error({"bin/train", "--batch", "0"}, 2, {"--batch: expected an integer in [1, 65536]"});
  expect_error({"bin/train", "--lr", "1e9"}, 2, {"--lr: expected a number in [0, 10], got '1e9'"});
  expect_error({"bin/train", "--lr", "nan"}, 2, {"--lr: expected a number"});
  expect_error({"bin/train", "--vocab", "12"}, 2, {"--vocab: expected an integer in [258, 65536]"});
  expect_error({"bin/train", "--data"}, 2, {"--data: missing value (expected PATH)"});
  expect_error({"bin/train", "--quiet=yes"}, 2, {"--quiet: takes no value"});
  expect_error({"bin/train", "--resume", "--init", "x"}, 2, {"--resume and --init exclude each other"});
  expect_error({"bin/train", "--min-lr-ratio", "2"}, 2, {"--min-lr-ratio: expected a number in [0, 1], got '2'"});
  expect_error({"bin/train", "--resume", "--out", fixture().ckpt, "--min-lr-ratio", "0.5"}, 2,
               {"--min-lr-ratio cannot change on --resume"});
  expect_error({"bin/train", "--resume", "--out", fixture().ckpt, "--qat-scale-lr", "10"}, 2,
               {"--qat-scale-lr cannot change on --resume"});
  expect_error({"bin/train", "--preset", "huge"}, 2, {"--preset", "huge"});
  expect_error({"bin/train", "--qat", "q3_k"}, 2, {"q3_k"});
  expect_error({"bin/generate", "-n", "-2"}, 2, {"--tokens: expected an integer in [-1, 1048576], got '-2'"});
  expect_error({"bin/generate", "--top-p", "2"}, 2, {"--top-p: expected a number in [0, 1], got '2'"});
  expect_error({"bin/generate", "--temp", "-0.5"}, 2, {"--temp: expected a number in [0, 100]"});
  expect_error({"bin/generate", "--isa", "sse9"}, 2, {"unknown ISA 'sse9'"});
  expect_error({"bin/generate", "--backend", "gpu"}, 2, {"--backend: expected native, onednn or openblas, got 'gpu'"});
  expect_error({"bin/quantize", "--model", fixture().ckpt}, 2, {"--to-gguf: missing"});
  expect_error({"bin/quantize", "--ptq", "median", "--to-gguf", "x.gguf"}, 2, {"--ptq: expected minmax or mse"});
  expect_error({"bin/eval", "--windows", "-3"}, 2, {"--windows: expected an integer in [0, 1073741824], got '-3'"});
  expect_error({"bin/eval", "--scheme", "q4_0", "--ptq", "q4_0"}, 2, {"--scheme and --ptq exclude each other"});
  expect_error({"bin/bench"}, 2, {"usage: bench kernels"});
  expect_error({"bin/bench", "kernel"}, 2, {"unknown subcommand 'kernel'"});
  expect_error({"bin/bench", "kernels", "--rounds", "0"}, 2, {"--rounds: expected an integer in [1, 1000], got '0'"});
  expect_error({"bin/bench", "serve-load", "--clients", "1,0"}, 2, {"--clients: expected client counts like 1,4,16,64, got '1,0'"});
  expect_error({"bin/bench", "serve-load", "--shapes", "huge"}, 2, {"--shapes: expected base and/or 300m, got 'huge'"});
  expect_error({"bin/bench", "kernels", "--bogus"}, 2, {"unknown option '--bogus'"});
  expect_error({"bin/bench", "kernels", "--isa", "sse9"}, 2, {"unknown ISA 'sse9'"});
  expect_error({"bin/bench", "kernels", "--threads", "-1"}, 2, {"--threads", "'-1'"});
  expect_error({"bin/bench", "kernels", "--threads", "two"}, 2, {"--threads", "'two'"});
  expect_error({"bin/bench", "kernels", "--threads", ""}, 2, {"--threads"});
  expect_error({"bin/bench", "kernels", "--shapes", "9"}, 2, {"--shapes", "'9'"});
}

TEST_CASE("nonexistent and unwritable paths: one line naming the file, exit 1", "[cli]") {
  const Fixture& f = fixture();
  const std::string missing = f.dir.path + "/no-such-thing";
  const std::string file = f.dir.put("plain-file", "not a directory\n");
  expect_error({"bin/train", "--data", missing, "--out", f.dir.path + "/t1"}, 1, {missing, "does not exist"});
  expect_error({"bin/train", "--resume", "--out", missing}, 1, {missing + "/state.json", "does not exist"});
  expect_error({"bin/train", "--init", missing, "--data", f.corpus, "--out", f.dir.path + "/t2"}, 1, {missing});
  // A path below a regular file cannot be created, even by root: the message names the file in the way.
  expect_error({"bin/train", "--data", f.corpus, "--preset", "tiny", "--vocab", "280", "--ctx", "16", "--steps", "1",
                "--out", file + "/run", "--cache-dir", f.dir.path + "/cache", "--quiet", "--no-plot"},
               1, {"cannot create directory " + file + ": a file of that name exists"});
  expect_error({"bin/generate", "--model", missing}, 1, {"--model: " + missing + " does not exist"});
  expect_error({"bin/generate", "--model", file}, 1, {file});
  expect_error({"bin/quantize", "--model", missing, "--to-gguf", f.dir.path + "/x.gguf"}, 1, {missing});
  expect_error({"bin/quantize", "--model", f.ckpt, "--to-gguf", file + "/x.gguf"}, 1, {file + "/x.gguf"});
  expect_error({"bin/eval", "--model", missing}, 1, {missing});
  expect_error({"bin/eval", "--model", f.ckpt, "--data", missing}, 1, {missing, "does not exist"});

  // A GGUF file is quantized again from its weights as f32 (PTQ of an imported model), its tokenizer kept:
  // q8_0 -> q4_0 here; eval --ptq does the same in memory and measures the same loss.
  {
    const std::string y = f.dir.path + "/requant-q4_0.gguf";
    ProcResult q = run({"bin/quantize", "--model", f.gguf, "--scheme", "q4_0", "--to-gguf", y, "--threads", "1"});
    INFO(q.what());
    REQUIRE(q.code == 0);
    auto loss = [&](std::vector<std::string> argv) {
      argv.insert(argv.end(), {"--data", f.corpus, "--windows", "2", "--threads", "1", "--json"});
      ProcResult e = run(argv);
      INFO(e.what());
      REQUIRE(e.code == 0);
      return Json::parse(lines_of(e.out).back()).at("val_loss").as_double();
    };
    CHECK(loss({"bin/eval", "--model", y}) == loss({"bin/eval", "--model", f.gguf, "--ptq", "q4_0:minmax"}));
  }

  // An unwritable token cache is a warning, not a failure (the cache only saves time).
  ProcResult r = run({"bin/eval", "--model", f.ckpt, "--data", f.corpus, "--cache-dir", file + "/cache", "--windows", "1",
                      "--threads", "1"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("warning: token cache not written: cannot create directory " + file));
  CHECK_THAT(r.out, Catch::StartsWith("eval: "));
}

// The one data-free-*.txt file of a cache directory ("" when there is none).
std::string data_free_file(const std::string& cache) {
  std::string found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(cache, ec))
    if (e.path().filename().string().rfind("data-free-", 0) == 0) found = e.path().string();
  return found;
}

TEST_CASE("bin/train --data-free: QAT on sequences sampled from the teacher, cached; refusals", "[cli][distill]") {
  const Fixture& f = fixture();
  const std::string cache = f.dir.path + "/df-cache", cache2 = f.dir.path + "/df-cache2";
  auto qat = [&](const std::string& out, const std::string& cache_dir, const std::string& seed) {
    return run({"bin/train", "--init", f.ckpt, "--distill", f.ckpt, "--qat", "q4_0", "--data-free", "40",
                "--data-free-len", "16", "--seed", seed, "--steps", "2", "--batch", "2", "--threads", "1", "--out",
                f.dir.path + "/" + out, "--cache-dir", cache_dir, "--no-plot"});
  };
  ProcResult r = qat("df1", cache, "5");
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("data-free: sampled 40/40 sequences from " + f.ckpt));
  const std::string corpus = data_free_file(cache);
  REQUIRE(!corpus.empty());
  const std::string text = read_file(corpus);
  CHECK(text.find("\n%\n") != std::string::npos);  // fortune-format documents
  CHECK_THAT(read_file(f.dir.path + "/df1/state.json"), Catch::Contains(corpus));  // the run's --data
  // A second run finds the cached corpus and samples nothing; the same spec elsewhere gives the same
  // bytes (a function of teacher, N, length and seed); another seed, other bytes.
  r = qat("df2", cache, "5");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, !Catch::Contains("data-free: sampled"));
  REQUIRE(qat("df3", cache2, "5").code == 0);
  CHECK(read_file(data_free_file(cache2)) == text);
  remove_tree(cache2);
  REQUIRE(qat("df4", cache2, "6").code == 0);
  CHECK(read_file(data_free_file(cache2)) != text);
  // Refusals: one line each.
  const std::string out = f.dir.path + "/df-bad";
  expect_error({"bin/train", "--init", f.ckpt, "--data-free", "4", "--out", out}, 2, {"--data-free", "--distill"});
  expect_error({"bin/train", "--distill", f.ckpt, "--data-free", "4", "--data", f.corpus, "--out", out}, 2,
               {"--data-free and --data exclude each other"});
  expect_error({"bin/train", "--distill", f.ckpt, "--data-free-len", "8", "--out", out}, 2, {"--data-free-len"});
  expect_error({"bin/train", "--distill", f.dir.path + "/df1", "--data-free", "4", "--cache-dir", cache2, "--out", out},
               1, {"--data-free: " + f.dir.path + "/df1 is a QAT checkpoint"});
}

// The cause of a 13-minute sampling run: bin/train samples while it parses its arguments, before
// set_num_threads() has made OpenBLAS single-threaded, so every token's sgemv ran OpenBLAS's own threads.
TEST_CASE("data-free sampling runs OpenBLAS single-threaded, whoever calls it", "[distill]") {
  const Fixture& f = fixture();
  openblas_set_num_threads(2);
  REQUIRE(openblas_get_num_threads() == 2);
  data_free_corpus({f.ckpt, 4, 8, 3}, f.dir.path + "/df-blas", true);
  CHECK(openblas_get_num_threads() == 1);
  blas_single_threaded();  // as every other test expects
}

TEST_CASE("bad training data: empty, NUL bytes, invalid UTF-8, too short, no usable files", "[cli][data]") {
  const Fixture& f = fixture();
  auto train_on = [&](const std::string& data, const std::vector<std::string>& parts, const std::string& ctx = "16") {
    expect_error({"bin/train", "--data", data, "--preset", "tiny", "--vocab", "280", "--ctx", ctx, "--steps", "2",
                  "--threads", "1", "--out", f.dir.path + "/bad-data-run", "--cache-dir", f.dir.path + "/cache",
                  "--quiet", "--no-plot"},
                 1, parts);
  };
  std::string p = f.dir.put("empty.txt", "");
  train_on(p, {p, "is empty"});
  p = f.dir.put("nul.txt", std::string(4096, '\0'));
  train_on(p, {p, "looks binary (a NUL byte at offset 0)"});
  p = f.dir.put("latin1.txt", "caf\xe9 au lait\n%\nna\xefve\n");
  train_on(p, {p, "is not valid UTF-8 (byte offset 3)"});
  p = f.dir.put("overlong.txt", "a\xc0\xaf b\n%\nc\n");  // an overlong '/', rejected as invalid
  train_on(p, {p, "is not valid UTF-8 (byte offset 1)"});
  p = f.dir.put("only-separators.txt", "%\n%\n   \n%\n");
  train_on(p, {p, "has no documents"});
  // No separators: one stream, too short to give a train and a val window.
  p = f.dir.put("one-doc.txt", "just one document with no separator\n");
  train_on(p, {p, "one stream of", "the train part has", "one context window of 17"});
  // Two short documents: fewer tokens than one context window.
  p = f.dir.put("short.txt", "the cat sat\n%\non the mat\n%\nand ran away\n");
  train_on(p, {p, "the training split has", "fewer than one context window of 65", "--ctx"}, "64");
  // Enough training text, but the documents that hash to validation are too short for one window.
  std::string val_short = synthetic_corpus(40);
  p = f.dir.put("short-val.txt", val_short);
  train_on(p, {p, "the validation split has", "fewer than one context window of 129", "--ctx"}, "128");
  make_dirs(f.dir.path + "/empty-dir");
  train_on(f.dir.path + "/empty-dir", {f.dir.path + "/empty-dir", "holds no text files"});
  make_dirs(f.dir.path + "/unusable-dir");
  f.dir.put("unusable-dir/.hidden", "hidden text\n%\nmore\n");
  f.dir.put("unusable-dir/fortunes.dat", "strfile index");
  train_on(f.dir.path + "/unusable-dir", {f.dir.path + "/unusable-dir", "holds no text files"});
  // A directory whose files are all bad names the first (a bad file among good ones is skipped with a
  // warning: tests/test_corpus_modes.cpp).
  make_dirs(f.dir.path + "/mixed-dir");
  f.dir.put("mixed-dir/a.txt", "caf\xe9\n");
  f.dir.put("mixed-dir/b.txt", std::string("ok\n%\nbinary\0junk\n", 17));  // 17 bytes: the literal, no terminator
  train_on(f.dir.path + "/mixed-dir", {f.dir.path + "/mixed-dir", "has no usable text file", "mixed-dir/a.txt",
                                       "not valid UTF-8"});
}

TEST_CASE("corrupt checkpoints for --resume, --init and --model: one line naming the file", "[cli]") {
  const Fixture& f = fixture();
  const std::string model = read_file(f.ckpt + "/model.safetensors");
  const std::string config = read_file(f.ckpt + "/config.json");
  Json cfg = Json::parse(config);

  std::string truncated = f.damaged("truncated", "model.safetensors", model.substr(0, model.size() / 2));
  std::string trunc_file = truncated + "/model.safetensors";
  Json narrow = cfg;
  narrow.set("hidden_size", cfg.at("hidden_size").as_int() / 2);
  std::string mismatch = f.damaged("mismatch", "config.json", narrow.dump(2));
  Json shallow = cfg;
  shallow.set("num_hidden_layers", cfg.at("num_hidden_layers").as_int() - 1);
  std::string fewer_layers = f.damaged("fewer-layers", "config.json", shallow.dump(2));
  Json deep = cfg;
  deep.set("num_hidden_layers", cfg.at("num_hidden_layers").as_int() + 1);
  std::string extra_layer = f.damaged("extra-layer", "config.json", deep.dump(2));
  Json odd = cfg;
  odd.set("num_attention_heads", int64_t(7));
  std::string bad_heads = f.damaged("bad-heads", "config.json", odd.dump(2));
  std::string garbage_tok = f.damaged("garbage-tok", "tokenizer.json", "\x89PNG\r\n\x1a\n garbage {{{");
  Json huge = cfg;  // a config far larger than its tensors: rejected before a model of that size is built
  huge.set("num_hidden_layers", int64_t(1024));
  huge.set("hidden_size", int64_t(65536));
  huge.set("intermediate_size", int64_t(1) << 20);
  std::string huge_cfg = f.damaged("huge-cfg", "config.json", huge.dump(2));
  std::string bad_json_cfg = f.damaged("bad-json-cfg", "config.json", "{\"vocab_size\": 280,");
  std::string opt = read_file(f.ckpt + "/optimizer.safetensors");
  std::string trunc_opt = f.damaged("trunc-opt", "optimizer.safetensors", opt.substr(0, opt.size() - 100));
  std::string bad_state = f.damaged("bad-state", "state.json", "{\"step\": -3}");
  std::string nan_model = model;
  // The last 4 bytes of model.safetensors belong to a weight: make it NaN.
  const char nan_bits[4] = {0, 0, char(0xc0), char(0x7f)};
  nan_model.replace(nan_model.size() - 4, 4, nan_bits, 4);
  std::string nan_ckpt = f.damaged("nan-model", "model.safetensors", nan_model);

  for (const char* bin : {"bin/generate", "bin/eval", "bin/quantize"}) {
    auto with = [&](const std::string& m) {
      std::vector<std::string> a{bin, "--model", m, "--threads", "1"};
      if (std::string(bin) == "bin/quantize") a.insert(a.end(), {"--to-gguf", f.dir.path + "/out.gguf"});
      if (std::string(bin) == "bin/eval") a.insert(a.end(), {"--data", f.corpus});
      return a;
    };
    expect_error(with(truncated), 1, {trunc_file});
    expect_error(with(mismatch), 1, {mismatch + "/model.safetensors", "has shape", "the config expects"});
    expect_error(with(fewer_layers), 1, {fewer_layers + "/model.safetensors", "unexpected tensor 'model.layers.1."});
    expect_error(with(extra_layer), 1, {extra_layer, "config.json describes", "model.safetensors holds"});
    expect_error(with(bad_heads), 1, {bad_heads, "config.json", "num_attention_heads"});
    expect_error(with(garbage_tok), 1, {garbage_tok + "/tokenizer.json"});
    expect_error(with(bad_json_cfg), 1, {bad_json_cfg, "config.json"});
    expect_error(with(huge_cfg), 1, {huge_cfg + "/model.safetensors", "has shape", "the config expects"});  // from the header
    expect_error(with(nan_ckpt), 1, {nan_ckpt + "/model.safetensors", "non-finite"});
  }
  // GGUF: truncated, and a text file with the .gguf name.
  const std::string g = read_file(f.gguf);
  std::string tg = f.dir.put("truncated.gguf", g.substr(0, g.size() * 2 / 3));
  expect_error({"bin/generate", "--model", tg}, 1, {tg});
  expect_error({"bin/eval", "--model", tg, "--data", f.corpus}, 1, {tg});
  std::string text_gguf = f.dir.put("text.gguf", "hello, I am not a model\n");
  expect_error({"bin/generate", "--model", text_gguf}, 1, {text_gguf});
  // A NaN block scale (f16 0x7e00) in the first Q8_0 block of a weight, and an inf in a norm.
  GgufFile parsed = parse_gguf(g, f.gguf);
  auto offset_of = [&](const std::string& name) { return size_t(parsed.tensor(name).data - parsed.bytes->data()); };
  std::string nan_scale = g, inf_norm = g;
  nan_scale.replace(offset_of("blk.0.attn_q.weight"), 2, "\x00\x7e", 2);
  const char inf_bits[4] = {0, 0, char(0x80), char(0x7f)};
  inf_norm.replace(offset_of("output_norm.weight") + 4, 4, inf_bits, 4);
  std::string ns = f.dir.put("nan-scale.gguf", nan_scale), ni = f.dir.put("inf-norm.gguf", inf_norm);
  expect_error({"bin/generate", "--model", ns}, 1, {ns, "tensor 'blk.0.attn_q.weight' holds a non-finite block scale"});
  expect_error({"bin/eval", "--model", ni, "--data", f.corpus}, 1, {ni, "tensor 'output_norm.weight' holds a non-finite value (inf at index 1)"});

  // train --resume: the damaged checkpoint is the run directory itself.
  // Each with the file at fault.
  const std::pair<std::string, std::string> damaged[] = {{truncated, "/model.safetensors"}, {mismatch, "/model.safetensors"},
                                                         {garbage_tok, "/tokenizer.json"}, {trunc_opt, "/optimizer.safetensors"},
                                                         {huge_cfg, "/model.safetensors"}};
  for (const auto& [d, file] : damaged)
    expect_error({"bin/train", "--resume", "--out", d, "--quiet", "--no-plot"}, 1, {d + file});
  expect_error({"bin/train", "--resume", "--out", bad_state, "--quiet", "--no-plot"}, 1, {bad_state + "/state.json"});
  // train --init: a checkpoint to start from.
  for (const auto& [d, file] : damaged)
    expect_error({"bin/train", "--init", d, "--data", f.corpus, "--steps", "1", "--out", f.dir.path + "/init-run",
                  "--cache-dir", f.dir.path + "/cache", "--quiet", "--no-plot"},
                 1, {d + file});
}

TEST_CASE("bin/generate: OpenBLAS's worker threads are stopped, only the OpenMP team runs", "[cli][serve]") {
  // OpenBLAS's pthread build starts worker threads that spin for ~90 ms after the library loads; on a
  // 2-core machine they held up the first OpenMP regions of a prefill (time to first token 90-120 ms
  // instead of ~0.5 ms). set_num_threads() shuts them down. The suite checks that cause, not the time
  // (a time fails under load or with QAT_ISA=scalar): generate's final line counts the threads in the
  // process, which must not exceed the OpenMP threads it asked for. The time to first token of a fresh
  // process is measured by `bin/bench serve`.
  const Fixture& f = fixture();
  for (const char* threads : {"1", "2"}) {
    ProcResult r = run({"bin/generate", "--model", f.gguf, "--prompt", "the cat", "--tokens", "2", "--seed", "1", "--threads", threads});
    INFO(r.what());
    REQUIRE(r.code == 0);
    int asked = 0, running = 0;
    const size_t at = r.err.find(", threads ");
    REQUIRE(at != std::string::npos);
    REQUIRE(std::sscanf(r.err.c_str() + at, ", threads %d (%d in the process)", &asked, &running) == 2);
    CHECK(asked == std::stoi(threads));
    CHECK(running >= 1);
    CHECK(running <= asked);
  }
}
