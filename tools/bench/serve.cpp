// `bench serve`: prefill and decode tokens/s of one model per backend, as bin/generate runs it (the
// KV-cache DecodeSession), in interleaved rounds: our integer kernels on q4_0 and q8_0, oneDNN's int8
// matmul (per-channel int8 weights) and OpenBLAS f32 sgemm / sgemv on the dequantized weights. The model
// is the `base` preset with random weights, PTQ'd by the ggml rule (speed does not depend on trained
// values), and written as GGUF (f32, q8_0, q4_0) to a temp directory for the file sizes.
// Goals of the benchmark issue: q4_0 decode >= 4x openblas and >= 2x onednn, q8_0 decode >= 2x openblas,
// q4_0 file <= 0.16x the f32 file. Also the time to first token of a fresh bin/generate process (the
// start-up cost a warm loop hides; the suite checks its cause, the thread count). Read next: models/decode.h, models/quantized.h.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "data/tokenizer.h"
#include "kernels/kernels.h"
#include "models/decode.h"
#include "models/gguf_model.h"
#include "models/quantized.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

struct ServeContender {
  std::string name;                 // "native q4_0", ...
  std::unique_ptr<DecodeModel> model;
  std::unique_ptr<DecodeSession> session;
  std::vector<double> prefill, decode;  // tokens/s, one sample per round
};

ServeContender make_contender(std::string name, const QuantizedModel& qm, Backend b, int64_t ctx) {
  ServeContender c;
  c.name = std::move(name);
  c.model = std::make_unique<DecodeModel>(decode_model(qm, b));
  c.session = std::make_unique<DecodeSession>(*c.model, ctx);
  return c;
}

// One sample: prefill `prompt`, then decode `n` tokens one at a time (fixed ids: speed does not depend
// on which tokens). Returns {prefill tokens/s, decode tokens/s}.
std::pair<double, double> run_once(ServeContender& c, const std::vector<int32_t>& prompt, int64_t n) {
  c.session->reset();
  auto t0 = Clock::now();
  Tensor logits = c.session->forward(prompt.data(), int64_t(prompt.size()));
  const double tp = seconds_since(t0);
  auto t1 = Clock::now();
  for (int64_t i = 0; i < n; i++) {
    const int32_t id = prompt[size_t(i) % prompt.size()];
    logits = c.session->forward(&id, 1);
  }
  const double td = seconds_since(t1);
  return {double(prompt.size()) / tp, double(n) / td};
}

// bin/generate, next to this binary (bin/bench): the fresh-process measurement runs the real thing.
std::string generate_binary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("bin/generate") : (self.parent_path() / "generate").string();
}

// Text that the tokenizer turns into about `tokens` tokens (bin/generate adds one EOT in front).
std::string prompt_text(const Tokenizer& tok, int64_t tokens) {
  Rng rng(7);
  std::string text;
  while (int64_t(tok.encode(text).size()) < tokens - 1) {
    const int len = 2 + int(rng.below(7));
    for (int i = 0; i < len; i++) text += char('a' + rng.below(26));
    text += ' ';
  }
  return text;
}

// Time to first token (ms) that a fresh `bin/generate --threads th` process reports for `model`: what
// a user waits for, start-up included (OpenBLAS's spinning start-up threads had cost 90 ms of it on 2
// cores). Its stderr goes to `log`; the number is parsed from its final line. Nothing goes to a shell.
double fresh_ttft_ms(const std::string& model, const std::string& prompt, int th, const std::string& log) {
  const std::string bin = generate_binary(), threads = std::to_string(th);
  std::vector<std::string> args{bin, "--model", model, "--prompt", prompt, "--tokens", "1", "--threads", threads};
  const int status = wait_child(spawn_child(args, "", log, false, "bench serve"));
  const std::string err = read_file(log);
  const std::string key = "time to first token ";
  const size_t at = err.find(key);
  QAT_CHECK(exited_ok(status) && at != std::string::npos, "bench serve: ", bin,
            " failed: ", err);
  return std::atof(err.c_str() + at + key.size());
}

// The command line of `bench serve`, with the thread counts and the preset resolved.
struct ServeArgs : ModelBenchArgs {
  std::string tmp_dir = "/tmp";
  int64_t rounds = 7, prompt_len = 128, gen = 64;
  ServeArgs() { preset = "base"; }
};

// Parses argv into *a; false after --help.
bool parse_serve_args(int argc, char** argv, ServeArgs* a) {
  ArgParser p("bench serve", "Prefill and decode tokens/s per backend (native q4_0 / q8_0, onednn int8, openblas f32) and GGUF\n"
                             "file sizes, on a random-weight model. Ratios are medians of per-round ratios.");
  a->declare(p, "3 rounds, 64-token prompt, 32 decoded tokens");
  p.option("--rounds", &a->rounds, "interleaved rounds", 1, 1000);
  p.option("--prompt", &a->prompt_len, "prompt tokens (prefill)", 1, 1 << 20);
  p.option("--tokens", &a->gen, "tokens decoded one at a time after the prompt", 1, 1 << 20);
  p.option("--tmp", &a->tmp_dir, "directory for the GGUF files (removed after)", "DIR");
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = std::min<int64_t>(a->rounds, 3);
    a->prompt_len = std::min<int64_t>(a->prompt_len, 64);
    a->gen = std::min<int64_t>(a->gen, 32);
  }
  a->resolve();
  QAT_CHECK(a->prompt_len + a->gen <= a->cfg.context, "--prompt + --tokens = ", a->prompt_len + a->gen, " exceeds the ",
            a->preset, " context of ", a->cfg.context);
  return true;
}

// The model under test: random FP32 weights, PTQ'd (ggml rule) to q4_0 and q8_0.
struct ServeModels {
  int64_t params = 0;
  QuantizedModel f32, q4, q8;
};
ServeModels serve_models(const ModelConfig& cfg) {
  Transformer t(cfg, nullptr, Transformer::Frozen{});  // weights only: no gradient buffer
  t.init_weights(1337);
  return {t.params.count(), quantized_from_f32(t),
          quantized_from_ptq(t, QatConfig::make("q4_0", "", cfg.n_layers, cfg.tied), "minmax"),
          quantized_from_ptq(t, QatConfig::make("q8_0", "", cfg.n_layers, cfg.tied), "minmax")};
}

// Bytes of the GGUF files as bin/quantize writes them.
struct FileSizes {
  int64_t f32 = 0, q8 = 0, q4 = 0;
};

// Writes the three GGUF files to a temp directory (removed after) for their sizes, and times the first
// token of a fresh bin/generate on the q4_0 file, `rounds` times per thread count, before the in-process
// rounds warm anything up. *ttft: ms, one sample per round, per thread count.
FileSizes gguf_sizes_and_ttft(const ServeArgs& a, const ServeModels& m, std::vector<std::vector<double>>* ttft) {
  const Tokenizer tok = bench_tokenizer(int(a.cfg.vocab));
  const std::string dir = str(a.tmp_dir, "/qat-bench-serve-", ::getpid());
  make_dirs(dir);
  FileSizes sizes;
  ttft->assign(a.threads.size(), {});
  const std::string prompt_s = prompt_text(tok, a.prompt_len);
  try {
    struct File {
      const QuantizedModel* m;
      int64_t* bytes;
      const char* name;
    };
    for (const File& f : {File{&m.f32, &sizes.f32, "f32"}, File{&m.q8, &sizes.q8, "q8_0"}, File{&m.q4, &sizes.q4, "q4_0"}}) {
      const std::string path = str(dir, "/", f.name, ".gguf");
      write_gguf_model(path, *f.m, tok);
      *f.bytes = int64_t(std::filesystem::file_size(path));
    }
    for (int64_t r = 0; r < a.rounds; r++)
      for (size_t i = 0; i < a.threads.size(); i++)
        (*ttft)[i].push_back(fresh_ttft_ms(dir + "/q4_0.gguf", prompt_s, a.threads[i], dir + "/generate.err"));
  } catch (...) {
    remove_tree(dir);
    throw;
  }
  remove_tree(dir);
  return sizes;
}

// The contenders, in this order (the indices below): native q4_0 and q8_0, oneDNN s8, OpenBLAS f32.
const size_t kQ4 = 0, kQ8 = 1, kDnn = 2, kBlas = 3;
std::vector<ServeContender> serve_contenders(const ServeModels& m, int64_t ctx) {
  std::vector<ServeContender> cs;
  cs.push_back(make_contender("native q4_0", m.q4, Backend::native, ctx));
  cs.push_back(make_contender("native q8_0", m.q8, Backend::native, ctx));
  cs.push_back(make_contender("onednn s8 per-channel", m.q8, Backend::onednn, ctx));
  cs.push_back(make_contender("openblas f32", m.q4, Backend::openblas, ctx));
  return cs;
}

// The header lines and the GGUF file-size table.
void print_serve_header(const ServeArgs& a, int64_t params, const FileSizes& f) {
  const ModelConfig& cfg = a.cfg;
  std::printf("Serving, preset %s (%lld parameters, %lld layers, d_model %lld, ffn %lld, vocab %lld), random weights; "
              "prompt %lld tokens, then %lld decoded one at a time; %lld interleaved rounds; native kernels: %s.\n",
              a.preset.c_str(), (long long)params, (long long)cfg.n_layers, (long long)cfg.d_model,
              (long long)cfg.ffn, (long long)cfg.vocab, (long long)a.prompt_len, (long long)a.gen, (long long)a.rounds,
              kernels().name);
  std::printf("tokens/s: median over rounds; spread = (max - min) / median; x openblas / x onednn: medians of per-round "
              "ratios of tokens/s.\n\n");
  std::string sizes = str("| GGUF file | bytes | MiB | x f32 |\n|---|---|---|---|\n");
  const std::pair<const char*, int64_t> files[] = {{"f32", f.f32}, {"q8_0", f.q8}, {"q4_0", f.q4}};
  for (auto [name, b] : files)
    sizes += str("| ", name, " | ", b, " | ", fmt("%.3f", double(b) / (1 << 20)), " | ",
                 fmt("%.3f", double(b) / double(f.f32)), " |\n");
  std::printf("%s\n", sizes.c_str());
}

// One warm-up run of each contender, then `rounds` interleaved rounds of prefill + `gen` decoded tokens.
void serve_rounds(std::vector<ServeContender>& cs, const std::vector<int32_t>& prompt, int64_t gen, int64_t rounds) {
  for (ServeContender& c : cs) {
    c.prefill.clear();
    c.decode.clear();
    run_once(c, prompt, std::min<int64_t>(gen, 4));  // warm-up (oneDNN builds its primitives per M here)
  }
  for (int64_t r = 0; r < rounds; r++)
    for (ServeContender& c : cs) {
      auto [tp, td] = run_once(c, prompt, gen);
      c.prefill.push_back(tp);
      c.decode.push_back(td);
    }
}

// What `bench serve` prints after the header: the speed table, the time-to-first-token table, the goals.
struct ServeReport {
  std::string table, ttft_table;
  std::vector<Goal> goals;
};
ServeReport start_report(const ServeArgs& a, const FileSizes& f) {
  ServeReport rep;
  rep.goals.push_back({"GGUF q4_0 file / f32 file", double(f.q4) / double(f.f32), 0.16, true, ""});
  rep.table = "| threads | backend | weight MiB/token | prefill tok/s | spread | decode tok/s | spread | "
              "decode x openblas | decode x onednn | prefill x openblas | note |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n";
  rep.ttft_table = str("Time to first token of a fresh `bin/generate --model q4_0.gguf --tokens 1` process (its own "
                       "report, median of ", a.rounds, " runs) against the warm in-process q4_0 prefill of the "
                       "same ", a.prompt_len, "-token prompt:\n\n| threads | fresh-process first token ms | spread | "
                       "warm prefill ms | fresh / warm | note |\n|---|---|---|---|---|---|\n");
  return rep;
}

// The rows and goals of one thread count `th`, whose fresh-process first-token samples are `ttft` (ms).
void add_thread_rows(ServeReport* rep, const std::vector<ServeContender>& cs, int th, const std::string& note,
                     const std::vector<double>& ttft, int64_t prompt_len) {
  for (const ServeContender& c : cs) {
    const Stats sp = stats(c.prefill), sd = stats(c.decode);
    rep->table += str("| ", th, " | ", c.name, " | ", fmt("%.3f", double(c.model->weight_bytes()) / (1 << 20)), " | ",
                      fmt("%.0f", sp.median), " | ", fmt("%.0f%%", sp.spread() * 100), " | ", fmt("%.1f", sd.median), " | ",
                      fmt("%.0f%%", sd.spread() * 100), " | ", fmt("%.2f", ratio_stats(c.decode, cs[kBlas].decode).median),
                      " | ", fmt("%.2f", ratio_stats(c.decode, cs[kDnn].decode).median), " | ",
                      fmt("%.2f", ratio_stats(c.prefill, cs[kBlas].prefill).median), " | ", note, " |\n");
  }
  auto x = [&](size_t a, size_t b) { return ratio_stats(cs[a].decode, cs[b].decode).median; };
  rep->goals.push_back({str("q4_0 decode / openblas f32, ", th, " thr"), x(kQ4, kBlas), 4.0, false, note});
  rep->goals.push_back({str("q4_0 decode / onednn int8, ", th, " thr"), x(kQ4, kDnn), 2.0, false, note});
  rep->goals.push_back({str("q8_0 decode / openblas f32, ", th, " thr"), x(kQ8, kBlas), 2.0, false, note});
  // A fresh bin/generate's first token against the same prefill in a warm process: start-up work
  // that delays the first token (spinning BLAS threads, page faults) shows as the excess.
  const double warm_ms = double(prompt_len) / stats(cs[kQ4].prefill).median * 1e3, cold_ms = stats(ttft).median;
  rep->ttft_table += str("| ", th, " | ", fmt("%.2f", cold_ms), " | ", fmt("%.0f%%", stats(ttft).spread() * 100), " | ",
                         fmt("%.2f", warm_ms), " | ", fmt("%.2f", cold_ms / warm_ms), " | ", note, " |\n");
}

}  // namespace

int bench_serve(int argc, char** argv) {
  ServeArgs a;
  if (!parse_serve_args(argc, argv, &a)) return 0;
  const ServeModels models = serve_models(a.cfg);
  std::vector<std::vector<double>> ttft;  // ms, one sample per round, per thread count
  const FileSizes files = gguf_sizes_and_ttft(a, models, &ttft);
  std::vector<ServeContender> cs = serve_contenders(models, a.cfg.context);
  std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_len));
  Rng rng(5);
  for (int32_t& id : prompt) id = int32_t(rng.below(uint64_t(a.cfg.vocab)));
  print_serve_header(a, models.params, files);
  ServeReport rep = start_report(a, files);
  for (size_t ti = 0; ti < a.threads.size(); ti++) {
    const int th = a.threads[ti];
    ParallelCheck pc;
    if (th > 1) {
      pc = parallel_check();
      std::printf("%s\n", pc.line().c_str());
    }
    set_num_threads(th);
    serve_rounds(cs, prompt, a.gen, a.rounds);
    add_thread_rows(&rep, cs, th, thread_note(th, pc), ttft[ti], a.prompt_len);
  }
  set_num_threads(0);
  std::printf("%s\n%s\nGoals:\n\n%s", rep.table.c_str(), rep.ttft_table.c_str(), goals_table(rep.goals).c_str());
  append_goals(a.goals_path, rep.goals);
  return 0;
}

}  // namespace qat::bench
