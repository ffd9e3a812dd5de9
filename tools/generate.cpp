// bin/generate: generates text from a checkpoint directory (f32) or a GGUF file (integer kernels),
// streaming tokens to stdout; the final line (stderr) gives the measured speeds and sizes.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>

#include "data/tokenizer.h"
#include "src/nn/linear.h"
#include "kernels/kernels.h"
#include "kernels/peaks.h"
#include "models/decode.h"
#include "models/from_checkpoint.h"
#include "models/model_size.h"
#include "models/model_source.h"
#include "models/quantized.h"
#include "models/sampler.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "src/util/profile.h"

using namespace qat;

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Streams text to stdout at once. A failed write (a full disk, a closed pipe) is an error: the text a
// user asked for did not arrive, so generate must not exit 0.
static void emit(const std::string& text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0 || std::ferror(stdout))
    fail("stdout: cannot write the generated text: ", std::strerror(errno ? errno : EIO));
}

namespace {
// The command line.
struct Args {
  std::string model_path = "runs/small", prompt, isa, backend = "native";
  int64_t n = 200, top_k = 40, threads = 0, seed = 42;
  double temp = 0.8, top_p = 0.95;
  bool stdin_prompt = false, keep_going = false, profile = false;
};

// Parses argv into *a (the prompt read from stdin with --stdin); false after --help.
bool parse_args(int argc, char** argv, Args* a) {
  ArgParser p("generate", "Generates text from a trained model: a checkpoint directory (f32) or a GGUF file (quantized,\n"
                          "served by the integer kernels). Text streams to stdout; speeds and sizes go to stderr.");
  p.option("--model", &a->model_path, "checkpoint directory or .gguf file", "PATH");
  p.option("--prompt", &a->prompt, "text to continue (default: start a new document)", "TEXT");
  p.flag("--stdin", &a->stdin_prompt, "read the prompt from standard input");
  p.option("--tokens", &a->n, "tokens to generate", 0, 1 << 20);
  p.alias("-n", "--tokens");
  p.option("--temp", &a->temp, "sampling temperature (0: greedy)", 0.0, 100.0);
  p.option("--top-k", &a->top_k, "sample among the k most likely tokens (0: all)", 0, 1 << 20);
  p.option("--top-p", &a->top_p, "nucleus sampling mass (1: off)", 0.0, 1.0);
  p.option("--seed", &a->seed, "sampling seed", 0, INT64_MAX);
  p.option("--threads", &a->threads, "threads (0: all cores)", 0, 4096);
  p.flag("--keep-going", &a->keep_going, "do not stop at the end-of-text token");
  p.option("--isa", &a->isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
  p.option("--backend", &a->backend, "native (our integer kernels), onednn (oneDNN int8 matmul) or openblas (f32 on "
                                     "dequantized weights)", "B");
  p.flag("--profile", &a->profile, "print per-op tables of the prefill and of the decode at the end");
  if (!p.parse(argc, argv)) return false;
  if (a->stdin_prompt) a->prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  return true;
}

// The model as it is served, with the figures the final line reports.
struct Served {
  DecodeModel model;
  int64_t stored_bytes = 0;  // model_size.h's figure, as eval and quantize print it
  std::string kind;          // "q4_0, native kernels avx2", "f32, openblas"
};

// What runs: a GGUF file or a QAT checkpoint on the integer kernels (the same codes either way), an FP32
// checkpoint on OpenBLAS; --backend openblas runs any of them as f32 on dequantized weights.
Served serve_model(const ModelSource& src, const std::string& backend) {
  Served s;
  s.stored_bytes = f32_weight_bytes(src.config());
  if (src.is_gguf() || src.qat) {
    QuantizedModel qm = src.is_gguf() ? src.gguf->model : quantized_from_qat(*src.transformer());
    s.stored_bytes = weight_bytes(qm);
    Backend b = parse_backend(backend);
    s.model = decode_model(qm, b);
    s.kind = str(qm.scheme, ", ", backend_name(b), b == Backend::native ? str(" kernels ", kernels().name) : std::string());
  } else {
    QAT_CHECK(backend == "native" || backend == "openblas", "--backend ", backend, ": an FP32 checkpoint runs on OpenBLAS");
    s.model = decode_model_from_checkpoint(*src.checkpoint);
    s.kind = "f32, openblas";
  }
  return s;
}

// The prompt's token ids (P), after the end-of-text token a document starts with; P < ctx.
std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& prompt, int64_t ctx) {
  std::vector<int32_t> ids{tok.eot_id()};
  for (int32_t id : tok.encode(prompt)) ids.push_back(id);
  QAT_CHECK(int64_t(ids.size()) < ctx, "--prompt: ", ids.size(), " tokens do not fit the model context of ", ctx);
  return ids;
}

// What one generation measured.
struct Run {
  int64_t generated = 0;
  double t_prefill = 0, t_decode = 0;  // seconds
};

// Samples from `logits` (V) and feeds each token back, streaming its text, until a.n tokens, the end of
// the context or (without --keep-going) the end-of-text token. Returns the tokens generated.
int64_t decode_tokens(const Args& a, const ModelConfig& cfg, DecodeSession& session, Sampler& sampler, const Tokenizer& tok,
                      Tensor logits) {
  const int64_t ctx = cfg.context, V = cfg.vocab;
  int64_t generated = 0;
  while (generated < a.n && session.pos() < ctx) {
    prof::Scope sample_scope("sample+print", prof::Phase::other);
    int32_t next = sampler.sample(logits.f32(), V);
    if (next == tok.eot_id() && !a.keep_going) break;
    std::string piece = tok.decode({next});
    emit(piece);
    generated++;
    if (generated == a.n || session.pos() >= ctx) break;
    logits = session.forward(&next, 1);
  }
  return generated;
}

// Prompt, prefill, decode, streamed to stdout; with --profile one table for the prefill and one for the
// decode (different workloads: GEMMs vs GEMVs) on stderr at the end.
Run generate(const Args& a, const DecodeModel& model, const Tokenizer& tok, const std::vector<int32_t>& ids) {
  DecodeSession session(model, model.cfg.context);
  Sampler sampler({float(a.temp), a.top_k, float(a.top_p), uint64_t(a.seed)});
  emit(a.prompt);
  MachinePeaks mp;
  if (a.profile) {
    mp = measure_peaks(num_threads(), 0.6);  // the roofline's ceilings, before anything is timed
    prof::enable(true);
  }
  Run r;
  double t0 = now_s();
  Tensor logits = session.forward(ids.data(), int64_t(ids.size()));
  r.t_prefill = now_s() - t0;
  std::string prefill_table;
  if (a.profile) {
    prefill_table = prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, 1, r.t_prefill);
    prof::reset();
  }
  double t1 = now_s();
  r.generated = decode_tokens(a, model.cfg, session, sampler, tok, logits);
  r.t_decode = now_s() - t1;
  emit("\n");
  if (a.profile) {
    std::fprintf(stderr, "profile of the prefill (%zu tokens in one forward):\n%s", ids.size(), prefill_table.c_str());
    std::fprintf(stderr, "profile of the decode (per token, %lld tokens):\n%s", (long long)r.generated,
                 prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, std::max<int64_t>(1, r.generated), r.t_decode)
                     .c_str());
    prof::enable(false);
  }
  return r;
}

// The final line (stderr): speeds, time to first token, load time, memory, threads and sizes.
void print_summary(const Run& r, size_t prompt_tokens, double t_load, const ModelConfig& cfg, const Served& s) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr,
               "generate: prompt %zu tokens at %.1f tok/s, decode %lld tokens at %.1f tok/s, time to first token %.1f ms, "
               "load %.2f s, peak RSS %s, threads %d (%d in the process), %s (%s in memory for the kernels; %s)\n",
               prompt_tokens, double(prompt_tokens) / r.t_prefill, (long long)r.generated,
               r.generated ? double(r.generated) / r.t_decode : 0.0, r.t_prefill * 1e3, t_load,
               mib(int64_t(ru.ru_maxrss) * 1024).c_str(), num_threads(), prof::process_threads(),
               size_figures(cfg, s.stored_bytes).c_str(), mib(s.model.weight_bytes()).c_str(), s.kind.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  return run_main("generate", [&]() {
    Args a;
    if (!parse_args(argc, argv, &a)) return 0;
    set_num_threads(int(a.threads));
    if (!a.isa.empty()) select_isa(a.isa);
    parse_backend(a.backend);  // validates the name
    double t_load = now_s();
    ModelSource src = open_model(a.model_path);
    const Served served = serve_model(src, a.backend);
    t_load = now_s() - t_load;
    const std::vector<int32_t> ids = prompt_ids(*src.tokenizer, a.prompt, served.model.cfg.context);
    const Run r = generate(a, served.model, *src.tokenizer, ids);
    print_summary(r, ids.size(), t_load, src.config(), served);
    return 0;
  });
}
