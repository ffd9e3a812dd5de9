// `bench llama`: our engine against llama.cpp's llama-bench on the same GGUF files, over a ladder of
// shapes from `small` to >= 1B parameters (random weights, PTQ'd to q4_0 and q8_0 by the function
// `bin/quantize --ptq minmax` runs, written once into a cache directory and reused). For each shape,
// format and thread count: prefill tokens/s of a P-token prompt (pp512) and decode tokens/s of G tokens
// one at a time from an empty cache (tg128), as llama-bench measures them (no load time, no sampling,
// random token ids), in interleaved rounds (ours, then one `llama-bench -r 1`), both pinned to the same
// CPUs; decode GB/s of weights against the read bandwidth measured here; the goals; a gnuplot
// PNG; with --doc this machine's `-llama` section of docs/BENCHMARKS.md. Logic: src/util/bench_llama.h.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"
#include "kernels/peaks.h"
#include "models/decode.h"
#include "models/gguf_model.h"
#include "models/model_source.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/util/bench_llama.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

const char* kLadder = "small,base,110m,300m,1b";
const char* kQuickLadder = "small,base";
constexpr int64_t kLadderContext = 2048;  // every shape's context: pp512 + tg128 fit at any setting

// A ladder shape by name: the presets (tiny, small, base, 15m, 110m) and two larger ones, `300m`
// (docs/MEMORY.md's 309M shape) and `1b` (TinyLlama's width and GQA, 24 layers: 1.06B parameters).
// Vocabulary 1024 (the project's BPE default) and a context of kLadderContext for all.
ModelConfig ladder_shape(const std::string& name) {
  ModelConfig c;
  if (name == "300m" || name == "1b") {
    const bool big = name == "1b";
    c.n_layers = 24;
    c.d_model = big ? 2048 : 1024;
    c.n_heads = big ? 32 : 16;
    c.n_kv_heads = big ? 4 : 16;
    c.ffn = big ? 5632 : 2816;
    c.preset = name;
  } else {
    try {
      c = ModelConfig::preset_named(name);
    } catch (const Error&) {
      throw UsageError(str("--shapes: unknown shape '", name, "' (expected tiny, small, base, 15m, 110m, 300m or 1b)"));
    }
  }
  c.vocab = 1024;
  c.context = kLadderContext;
  c.validate();
  return c;
}

// The command line.
struct LlamaArgs : ModelBenchArgs {
  std::string llama_cpp, shapes, formats = "q4_0,q8_0", cache = "/tmp/qat-bench-llama", doc, plot;
  int64_t rounds = 5, prompt = 512, gen = 128, llc_mib = 0;
  bool prepare = false;     // write the files and exit
  std::string llama_bench;  // resolved: the llama-bench binary
  std::vector<std::string> shape_list, format_list;
};

std::vector<std::string> split_list(const std::string& flag, const std::string& s) {
  std::vector<std::string> v;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(',', a), s.size());
    if (b > a) v.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  if (v.empty()) throw UsageError(str(flag, ": expected a comma-separated list, got '", s, "'"));
  return v;
}

// DIR/bin/llama-bench (a CMake build directory) or DIR/llama-bench; a usage error naming DIR otherwise.
std::string find_llama_bench(const std::string& dir) {
  for (const std::string& p : {dir + "/bin/llama-bench", dir + "/llama-bench"})
    if (::access(p.c_str(), X_OK) == 0) return p;
  throw UsageError(str("--llama-cpp ", dir, ": no executable bin/llama-bench or llama-bench there (build llama.cpp as "
                       "the README says)"));
}

// Parses argv into *a; false after --help.
bool parse_llama_args(int argc, char** argv, LlamaArgs* a) {
  ArgParser p("bench llama", "Prefill (pp) and decode (tg) tokens/s of qat against llama.cpp's llama-bench on the same GGUF\n"
                             "files, over a ladder of shapes; decode GB/s against the measured DRAM read bandwidth; goals; plot.");
  a->declare(p, str("2 rounds, shapes ", kQuickLadder), false);
  p.option("--llama-cpp", &a->llama_cpp, "llama.cpp build directory (default: $LLAMA_CPP)", "DIR");
  p.option("--shapes", &a->shapes, str("ladder shapes (default ", kLadder, "; also tiny, 15m)"), "LIST");
  p.option("--formats", &a->formats, "weight formats, of q4_0,q8_0", "LIST");
  p.option("--rounds", &a->rounds, "interleaved rounds", 1, 1000);
  p.option("--prompt", &a->prompt, "prompt tokens of the prefill test (llama-bench -p)", 1, kLadderContext);
  p.option("--gen", &a->gen, "tokens of the decode test (llama-bench -n)", 1, kLadderContext);
  p.option("--llc-mib", &a->llc_mib, "last-level cache size deciding which rows are DRAM-bound (0: as cpuid reports; a VM may\n"
                                      "report the whole socket's)", 0, 1 << 20);
  p.option("--cache", &a->cache, "directory of the GGUF files, kept for reruns", "DIR");
  p.flag("--prepare", &a->prepare, "write the ladder's GGUF files into --cache and exit (a busy host can make them; a quiet one\n"
                                     "then measures only)");
  p.option("--doc", &a->doc, "write this machine's -llama section into this document (docs/BENCHMARKS.md)", "PATH");
  p.option("--plot", &a->plot, "the PNG plot (default with --doc: bench-KEY-llama.png next to it)", "PATH");
  if (!p.parse(argc, argv)) return false;
  a->resolve();
  if (a->llama_cpp.empty() && std::getenv("LLAMA_CPP")) a->llama_cpp = std::getenv("LLAMA_CPP");
  if (a->llama_cpp.empty() && !a->prepare)  // --prepare only writes our files: no llama.cpp needed
    throw UsageError("no llama.cpp build: give --llama-cpp DIR or LLAMA_CPP=DIR (the README says how to build one)");
  if (!a->prepare) a->llama_bench = find_llama_bench(a->llama_cpp);
  if (a->quick) a->rounds = std::min<int64_t>(a->rounds, 2);
  if (a->shapes.empty()) a->shapes = a->quick ? kQuickLadder : kLadder;
  a->shape_list = split_list("--shapes", a->shapes);
  for (const std::string& s : a->shape_list) ladder_shape(s);  // validates the names
  a->format_list = split_list("--formats", a->formats);
  for (const std::string& f : a->format_list)
    if (f != "q4_0" && f != "q8_0") throw UsageError(str("--formats: expected q4_0 or q8_0, got '", f, "'"));
  if (a->prompt + a->gen > kLadderContext)
    throw UsageError(str("--prompt + --gen = ", a->prompt + a->gen, " exceeds the ladder's context of ", kLadderContext));
  if (!a->doc.empty() && a->plot.empty()) {
    const size_t slash = a->doc.rfind('/');
    a->plot = (slash == std::string::npos ? std::string() : a->doc.substr(0, slash + 1)) + "bench-" + this_machine_key() + "-llama.png";
  }
  return true;
}

// ---- files ----

// The cached file of a shape and format: every shape field in the name, so a changed shape is a new file.
std::string cached_path(const std::string& dir, const std::string& name, const ModelConfig& c, const std::string& fmt) {
  return str(dir, "/", name, "-L", c.n_layers, "-C", c.d_model, "-H", c.n_heads, "-KV", c.n_kv_heads, "-F", c.ffn, "-V",
             c.vocab, "-T", c.context, "-", fmt, ".gguf");
}

// Writes the shape's missing files: random weights (seed 1337), PTQ minmax, as `bin/quantize --ptq` would.
void ensure_files(const LlamaArgs& a, const std::string& name, const ModelConfig& cfg) {
  std::vector<std::string> missing;
  for (const std::string& f : a.format_list)
    if (!file_exists(cached_path(a.cache, name, cfg, f))) missing.push_back(f);
  if (missing.empty()) return;
  make_dirs(a.cache);
  auto t0 = Clock::now();
  Transformer t(cfg, nullptr, Transformer::Frozen{});  // weights only: no gradient buffer
  t.init_weights(1337);
  const Tokenizer tok = bench_tokenizer(int(cfg.vocab));
  for (const std::string& f : missing) {
    const std::string path = cached_path(a.cache, name, cfg, f);
    write_gguf_model(path, quantized_from_ptq(t, QatConfig::make(f, "", cfg.n_layers, cfg.tied), "minmax"), tok);
    std::printf("bench llama: wrote %s (%.1f MiB) in %.1f s\n", path.c_str(),
                double(std::filesystem::file_size(path)) / (1 << 20), seconds_since(t0));
  }
  std::fflush(stdout);
}

// ---- pinning: both engines on the same CPUs ----

// Pins every thread of this process (and so the children it starts, which inherit the mask) to the
// first n CPUs it was allowed at the first call; n <= 0 restores that original mask.
void pin_process(int n) {
  static cpu_set_t original;
  static bool saved = false;
  if (!saved) {
    CPU_ZERO(&original);
    QAT_CHECK(::sched_getaffinity(0, sizeof original, &original) == 0, "sched_getaffinity: ", std::strerror(errno));
    saved = true;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  int taken = 0;
  for (int c = 0; c < CPU_SETSIZE && (n <= 0 || taken < n); c++)
    if (CPU_ISSET(c, &original)) {
      CPU_SET(c, &set);
      taken++;
    }
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
    ::sched_setaffinity(pid_t(std::atoi(e.path().filename().c_str())), sizeof set, &set);  // a thread may have ended
}

// ---- the two engines ----

// One llama-bench run (-r 1: it loads the file, warms up, runs each test once; load not timed).
LlamaBenchRun run_llama(const LlamaArgs& a, const std::string& model, int threads) {
  const std::string out = str(a.cache, "/llama-bench-", ::getpid(), ".json"), err = out + ".err";
  std::vector<std::string> args{a.llama_bench, "-m", model, "-p", std::to_string(a.prompt), "-n", std::to_string(a.gen),
                                "-t", std::to_string(threads), "-r", "1", "-o", "json"};
  const int status = wait_child(spawn_child(args, out, err, false, "bench llama"));
  const std::string text = read_file(out);
  if (!exited_ok(status)) {
    std::string msg = read_file(err);
    if (msg.size() > 400) msg = "..." + msg.substr(msg.size() - 400);
    fail("bench llama: ", a.llama_bench, " failed on ", model, ": ", msg);
  }
  return parse_llama_bench_json(text, a.prompt, a.gen);
}

// Ours, as llama-bench times its two tests: the prompt from an empty cache, then (cache cleared) G
// single-token forwards from position 0. Returns {prefill tok/s, decode tok/s}.
std::pair<double, double> run_ours(DecodeSession& s, const std::vector<int32_t>& prompt, int64_t gen) {
  s.reset();
  auto t0 = Clock::now();
  s.forward(prompt.data(), int64_t(prompt.size()));
  const double tp = seconds_since(t0);
  s.reset();
  auto t1 = Clock::now();
  for (int64_t i = 0; i < gen; i++) s.forward(&prompt[size_t(i) % prompt.size()], 1);
  return {double(prompt.size()) / tp, double(gen) / seconds_since(t1)};
}

// ---- one shape ----

// Interleaved rounds of one shape and format at every thread count; appends one row per thread count.
void bench_file(const LlamaArgs& a, const std::string& name, const ModelConfig& cfg, const std::string& fmt,
                const std::vector<std::string>& notes, std::vector<LadderRow>* rows) {
  const std::string path = cached_path(a.cache, name, cfg, fmt);
  ModelSource src = open_model(path);
  const DecodeModel model = decode_model(src.gguf->model, Backend::native);
  std::vector<int32_t> prompt(size_t(a.prompt));
  Rng rng(5);
  for (int32_t& id : prompt) id = int32_t(rng.below(uint64_t(cfg.vocab)));
  std::vector<std::unique_ptr<DecodeSession>> sessions;  // one per thread count (its pool's size)
  const size_t first = rows->size();
  for (size_t i = 0; i < a.threads.size(); i++) {
    set_num_threads(a.threads[i]);
    pin_process(a.threads[i]);
    sessions.push_back(std::make_unique<DecodeSession>(model, std::max(a.prompt, a.gen)));
    run_ours(*sessions.back(), prompt, std::min<int64_t>(a.gen, 8));  // warm-up: first touches, pool start
    rows->push_back({name, fmt, cfg.n_params(), model.weight_bytes(), a.threads[i], {}, {}, {}, {}, notes[i]});
  }
  for (int64_t r = 0; r < a.rounds; r++)
    for (size_t i = 0; i < a.threads.size(); i++) {
      LadderRow& row = (*rows)[first + i];
      set_num_threads(row.threads);
      pin_process(row.threads);
      const auto [pp, tg] = run_ours(*sessions[i], prompt, a.gen);
      const LlamaBenchRun l = run_llama(a, path, row.threads);
      row.ours_pp.push_back(pp);
      row.ours_tg.push_back(tg);
      row.llama_pp.push_back(l.pp_ts);
      row.llama_tg.push_back(l.tg_ts);
      std::printf("  round %lld/%lld %s %s %d thr: pp%lld qat %.1f llama.cpp %.1f | tg%lld qat %.1f llama.cpp %.1f tok/s\n",
                  (long long)r + 1, (long long)a.rounds, name.c_str(), fmt.c_str(), row.threads, (long long)a.prompt, pp,
                  l.pp_ts, (long long)a.gen, tg, l.tg_ts);
      std::fflush(stdout);
    }
}

// The note of each thread count's rows: the parallel check, run right before each shape and format
// (a shared host's load changes within a ladder), pinned to the CPUs the rows use.
std::vector<std::string> thread_notes(const std::vector<int>& threads) {
  std::vector<std::string> notes;
  for (int th : threads) {
    ParallelCheck pc;
    if (th > 1) {
      pin_process(th);
      pc = parallel_check();
      std::printf("%s\n", pc.line().c_str());
    }
    notes.push_back(thread_note(th, pc));
  }
  return notes;
}

// ---- the report ----

std::string ladder_table(const LlamaArgs& a, const std::vector<LadderRow>& rows, const std::vector<double>& bw) {
  std::string t = str("| shape | parameters | format | weight MiB | threads | qat pp", a.prompt, " tok/s | spread | llama.cpp pp",
                      a.prompt, " | spread | pp x llama.cpp | qat tg", a.gen, " tok/s | spread | llama.cpp tg", a.gen,
                      " | spread | tg x llama.cpp | qat GB/s | llama.cpp GB/s | qat % DRAM read | note |\n"
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const LadderRow& r : rows) {
    const double roof = size_t(r.threads) < bw.size() ? bw[size_t(r.threads)] : 0;
    auto med = [](const std::vector<double>& v, const char* f) { return fmt(f, stats(v).median); };
    auto spread = [](const std::vector<double>& v) { return fmt("%.0f%%", stats(v).spread() * 100); };
    t += str("| ", r.shape, " | ", fmt("%.1fM", double(r.params) * 1e-6), " | ", r.format, " | ",
             fmt("%.1f", double(r.weight_bytes) / (1 << 20)), " | ", r.threads, " | ", med(r.ours_pp, "%.1f"), " | ",
             spread(r.ours_pp), " | ", med(r.llama_pp, "%.1f"), " | ", spread(r.llama_pp), " | ",
             fmt("%.2f", ratio_stats(r.ours_pp, r.llama_pp).median), " | ", med(r.ours_tg, "%.1f"), " | ", spread(r.ours_tg),
             " | ", med(r.llama_tg, "%.1f"), " | ", spread(r.llama_tg), " | ",
             fmt("%.2f", ratio_stats(r.ours_tg, r.llama_tg).median), " | ", fmt("%.1f", decode_gbs(r, true)), " | ",
             fmt("%.1f", decode_gbs(r, false)), " | ", roof > 0 ? fmt("%.0f%%", decode_gbs(r, true) / roof * 100) : "-",
             " | ", r.note, " |\n");
  }
  return t;
}

// Draws the plot with gnuplot; "" when drawn, else why not.
std::string draw_plot(const std::string& script) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return "gnuplot is not installed (apt-get install gnuplot-nox)";
  FILE* f = ::popen("gnuplot", "w");
  if (!f) return "cannot run gnuplot";
  std::fwrite(script.data(), 1, script.size(), f);
  const int st = ::pclose(f);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "" : "gnuplot failed (its message is above)";
}

}  // namespace

int bench_llama(int argc, char** argv) {
  LlamaArgs a;
  if (!parse_llama_args(argc, argv, &a)) return 0;
  if (a.prepare) {
    for (const std::string& name : a.shape_list) ensure_files(a, name, ladder_shape(name));
    std::printf("bench llama: the files of %s (%s) are in %s\n", a.shapes.c_str(), a.formats.c_str(), a.cache.c_str());
    return 0;
  }
  const std::string started = load_average();
  std::printf("bench llama: qat against %s on the same GGUF files; shapes %s; formats %s; pp%lld and tg%lld; "
              "%lld interleaved rounds; threads %s, both engines pinned to the same CPUs; files cached in %s\n%s\n",
              a.llama_bench.c_str(), a.shapes.c_str(),
              a.formats.c_str(), (long long)a.prompt, (long long)a.gen, (long long)a.rounds, a.thread_list.c_str(),
              a.cache.c_str(), machine_summary().c_str());
  std::vector<double> bw(size_t(*std::max_element(a.threads.begin(), a.threads.end()) + 1), 0.0);
  for (int th : a.threads) {
    pin_process(th);
    bw[size_t(th)] = measure_peaks(th, 0.5).dram_gbs;
    std::printf("DRAM read bandwidth, %d thread(s) (kernels/peaks.h, the best of short runs): %.1f GB/s\n", th, bw[size_t(th)]);
  }
  const int64_t llc = a.llc_mib ? a.llc_mib << 20 : cpu_features().l3_bytes;
  std::printf("last-level cache: %lld MiB (%s); rows with more weight bytes stream them from DRAM\n\n", (long long)(llc >> 20), a.llc_mib ? "--llc-mib" : "cpuid");
  std::fflush(stdout);
  std::vector<LadderRow> rows;
  for (const std::string& name : a.shape_list) {
    const ModelConfig cfg = ladder_shape(name);
    ensure_files(a, name, cfg);
    for (const std::string& f : a.format_list) bench_file(a, name, cfg, f, thread_notes(a.threads), &rows);
  }
  pin_process(0);
  set_num_threads(0);
  std::vector<std::string> missing;
  const std::vector<Goal> goals = ladder_goals(rows, bw, llc, &missing);
  const std::string table = ladder_table(a, rows, bw);
  std::string report = str("\n", table, "\nGoals of issue 19 (the worst row of each decides; ratios are medians of per-round ratios):\n\n",
                           goals_table(goals));
  for (const std::string& m : missing) report += str("\nnot measured: ", m);
  std::printf("%s\n", report.c_str());
  append_goals(a.goals_path, goals);
  std::string why_no_plot = "no --plot or --doc given";
  if (!a.plot.empty()) {
    why_no_plot = draw_plot(ladder_plot_script(rows, bw, a.plot, str("decode: qat vs llama.cpp, ", cpu_features().brand)));
    std::printf("bench llama: %s\n", why_no_plot.empty() ? str("wrote ", a.plot).c_str() : str("no plot: ", why_no_plot).c_str());
  }
  if (!a.doc.empty()) {
    const std::string key = this_machine_key() + "-llama", png = a.plot.substr(a.plot.rfind('/') + 1);
    const std::string body = str("## qat vs llama.cpp, ", cpu_features().brand, ", kernel table ", kernels().name, "\n\n",
                                 "Generated by `bin/bench llama", a.quick ? " --quick" : "", "` (`make bench LLAMA_CPP=...`) on ",
                                 utc_now(), "; load average ", started, " at the start, ", load_average(), " at the end; llama-bench: `",
                                 a.llama_bench, "`. Replaced on every run; do not edit by hand.", a.quick ? " **QUICK run.**" : "",
                                 "\n\n```\n", machine_summary(), "\n```\n\n", report, "\n\n",
                                 why_no_plot.empty() ? str("![decode tokens/s vs weight bytes](", png, ")\n") : str("(no plot: ", why_no_plot, ")\n"));
    const std::string old = file_exists(a.doc) ? read_file(a.doc) : std::string("# Benchmarks\n");
    write_file_atomic(a.doc, replace_section(old, key, body));
    std::printf("bench llama: updated the section %s of %s\n", key.c_str(), a.doc.c_str());
  }
  return 0;
}

}  // namespace qat::bench
