// bin/generate: generates text from a checkpoint directory (f32) or a GGUF file (integer kernels),
// streaming tokens to stdout until a stop (end of text, a --stop string, -n tokens, the context); the
// final line (stderr) says why it stopped and gives the measured speeds and sizes. --chat is a REPL on
// one KV cache (models/chat.h's template). Sampling and stopping: models/sampler.h, shared with bin/serve.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>

#include "data/vocab.h"
#include "src/nn/linear.h"
#include "kernels/kernels.h"
#include "kernels/peaks.h"
#include "models/chat.h"
#include "models/decode.h"
#include "models/from_checkpoint.h"
#include "models/model_size.h"
#include "models/model_source.h"
#include "models/quantized.h"
#include "models/sampler.h"
#include "models/token_profile.h"
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
  int64_t n = -1, top_k = 40, threads = 0, seed = 42, repeat_last_n = 64;
  double temp = 0.8, top_p = 0.95, min_p = 0, repeat_penalty = 1, frequency_penalty = 0, presence_penalty = 0;
  std::vector<std::string> stops;
  bool stdin_prompt = false, keep_going = false, profile = false, chat = false;
  SamplerConfig sampler(const Vocab& tok) const {
    SamplerConfig c{float(temp), top_k, float(top_p), uint64_t(seed)};
    if (keep_going) c.banned = end_token_ids(tok);  // as llama.cpp's --ignore-eos: never sampled
    c.min_p = float(min_p);
    c.repeat_penalty = float(repeat_penalty);
    c.repeat_last_n = repeat_last_n;
    c.frequency_penalty = float(frequency_penalty);
    c.presence_penalty = float(presence_penalty);
    return c;
  }
};

// Parses argv into *a (the prompt read from stdin with --stdin); false after --help.
bool parse_args(int argc, char** argv, Args* a) {
  ArgParser p("generate", "Generates text from a trained model: a checkpoint directory (f32) or a GGUF file (quantized,\n"
                          "served by the integer kernels). Text streams to stdout; speeds and sizes go to stderr.");
  p.option("--model", &a->model_path, "checkpoint directory or .gguf file", "PATH");
  p.alias("-m", "--model");
  p.option("--prompt", &a->prompt, "text to continue (default: start a new document); with --chat: the system message", "TEXT");
  p.alias("-p", "--prompt");
  p.flag("--stdin", &a->stdin_prompt, "read the prompt from standard input");
  p.option("--tokens", &a->n, "tokens to generate (-1: until the model's context is full)", -1, 1 << 20);
  p.alias("-n", "--tokens");
  p.repeated("--stop", &a->stops, "stop when the text contains STR (the stop text is not printed)", "STR");
  p.option("--temp", &a->temp, "sampling temperature (0: greedy)", 0.0, 100.0);
  p.option("--top-k", &a->top_k, "sample among the k most likely tokens (0: all)", 0, 1 << 20);
  p.option("--top-p", &a->top_p, "nucleus sampling mass (1: off)", 0.0, 1.0);
  p.option("--min-p", &a->min_p, "keep tokens with p >= min-p x p(most likely) (0: off)", 0.0, 1.0);
  p.option("--repeat-penalty", &a->repeat_penalty, "divide (multiply if negative) the logits of recent tokens (1: off)", 0.01, 100.0);
  p.option("--repeat-last-n", &a->repeat_last_n, "recent tokens the penalties look at (0: off)", 0, 1 << 20);
  p.option("--frequency-penalty", &a->frequency_penalty, "subtract X per occurrence among recent tokens", -2.0, 2.0);
  p.option("--presence-penalty", &a->presence_penalty, "subtract X once from recent tokens", -2.0, 2.0);
  p.option("--seed", &a->seed, "sampling seed", 0, INT64_MAX);
  p.flag("--chat", &a->chat, "chat on standard input, one line per turn, keeping the KV cache between turns "
                             "(template: \"User: ...\\nAssistant:\", see README)");
  p.alias("--interactive", "--chat");
  p.option("--threads", &a->threads, "threads (0: all cores)", 0, 4096);
  p.flag("--keep-going", &a->keep_going, "never sample the end-of-text token (llama.cpp's --ignore-eos)");
  p.option("--isa", &a->isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
  p.option("--backend", &a->backend, "native (our integer kernels), onednn (oneDNN int8 matmul) or openblas (f32 on "
                                     "dequantized weights)", "B");
  p.flag("--profile", &a->profile, "print per-op tables of the prefill and of the decode at the end, and where a decoded "
                                    "token's time goes (GEMVs, attention, norms, sampling; weights' GB/s vs the DRAM roof)");
  if (!p.parse(argc, argv)) return false;
  if (a->chat && a->stdin_prompt) throw UsageError("--stdin: --chat reads its turns from standard input");
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

// The prompt's token ids (P) as the model is prompted (ours: after the end-of-text token a document
// starts with; a pretrained model's: its BOS when it adds one); P < ctx.
std::vector<int32_t> prompt_ids(const Vocab& tok, const std::string& prompt, int64_t ctx) {
  std::vector<int32_t> ids = tok.encode_prompt(prompt);
  QAT_CHECK(int64_t(ids.size()) < ctx, "--prompt: ", ids.size(), " tokens do not fit the model context of ", ctx);
  return ids;
}

// What one generation measured, and why it ended.
struct Run {
  int64_t prompt_tokens = 0, generated = 0;
  double t_prefill = 0, t_decode = 0;  // seconds
  StopReason reason = StopReason::none;
  int32_t pending = -1;  // the last token sampled and not yet run through the model (-1: none)
};

// Samples from `logits` (V) and feeds each token back, streaming its text through the stop strings,
// until `budget` tokens (-1: no limit), the end of the context, a stop string or (without --keep-going)
// the end-of-text token. The sequence of samples and forwards is the same as before stop strings.
void decode_tokens(const Args& a, DecodeSession& session, Sampler& sampler, const Vocab& tok, Tensor logits,
                   int64_t budget, Run* r) {
  const int64_t ctx = session.max_ctx(), V = logits.shape()[1];
  StopMatcher stop(a.stops);
  while (true) {
    if (budget >= 0 && r->generated >= budget) { r->reason = StopReason::max_tokens; break; }
    prof::Scope sample_scope("sample+print", prof::Phase::other);
    const int32_t next = sampler.sample(logits.f32(), V);
    r->pending = next;
    if (tok.is_end(next) && !a.keep_going) { r->reason = StopReason::end_of_text; break; }
    emit(stop.feed(tok.decode({next})));
    r->generated++;
    if (stop.stopped()) { r->reason = StopReason::stop_string; break; }
    if (budget >= 0 && r->generated >= budget) { r->reason = StopReason::max_tokens; break; }
    if (session.pos() >= ctx) { r->reason = StopReason::context_full; break; }
    logits = session.forward(&next, 1);
    r->pending = -1;
  }
  emit(stop.finish());
}

// Prompt, prefill, decode, streamed to stdout; with --profile one table for the prefill and one for the
// decode (different workloads: GEMMs vs GEMVs) on stderr at the end.
Run generate(const Args& a, const DecodeModel& model, const Vocab& tok, const std::vector<int32_t>& ids) {
  DecodeSession session(model, model.cfg.context, int64_t(ids.size()));  // activations for the prompt, no more
  Sampler sampler(a.sampler(tok));
  for (int32_t id : ids) sampler.accept(id);  // the prompt counts for the penalties (llama.cpp's rule)
  emit(a.prompt);
  MachinePeaks mp;
  if (a.profile) {
    mp = measure_peaks(num_threads(), 0.6);  // the roofline's ceilings, before anything is timed
    prof::enable(true);
  }
  Run r;
  r.prompt_tokens = int64_t(ids.size());
  double t0 = now_s();
  Tensor logits = session.forward(ids.data(), int64_t(ids.size()));
  r.t_prefill = now_s() - t0;
  std::string prefill_table;
  if (a.profile) {
    prefill_table = prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, 1, r.t_prefill);
    prof::reset();
  }
  double t1 = now_s();
  decode_tokens(a, session, sampler, tok, logits, a.n, &r);
  r.t_decode = now_s() - t1;
  emit("\n");
  if (a.profile) {
    std::fprintf(stderr, "profile of the prefill (%zu tokens in one forward):\n%s", ids.size(), prefill_table.c_str());
    std::fprintf(stderr, "profile of the decode (per token, %lld tokens):\n%s", (long long)r.generated,
                 prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, std::max<int64_t>(1, r.generated), r.t_decode)
                     .c_str());
    if (r.generated > 0 && r.t_decode > 0)
      std::fprintf(stderr, "%s", token_breakdown(prof::rows(), r.generated, r.t_decode, model.weight_bytes(), mp.dram_gbs)
                                     .text().c_str());
    prof::enable(false);
  }
  return r;
}

// --chat: one line of standard input per user turn, the reply streamed to stdout; the KV cache and the
// sampler carry over, so each turn runs only its own tokens (the reply's tokens are already in the
// cache). Ends at end of input or when the context is full. Returns the last turn's figures.
Run chat(const Args& a, const DecodeModel& model, const Vocab& tok) {
  DecodeSession session(model, model.cfg.context);
  Sampler sampler(a.sampler(tok));
  Args turn_args = a;
  turn_args.stops.push_back(kChatStop);
  const bool tty = ::isatty(0) && ::isatty(1);
  std::vector<int32_t> ids = tok.encode_prompt("");  // the start token (ours: end-of-text)
  std::string text = chat_prompt(a.prompt.empty() ? std::vector<ChatMessage>{} : std::vector<ChatMessage>{{"system", a.prompt}});
  text.resize(text.size() - std::string("Assistant:").size());  // the first user turn adds its own prompt
  Run r;
  std::string line;
  while (true) {
    if (tty) emit("> ");
    if (!std::getline(std::cin, line)) {
      if (tty) emit("\n");
      break;
    }
    if (r.pending >= 0) ids.push_back(r.pending);  // the reply's last token joins the cache first
    for (int32_t id : tok.encode(text + (r.prompt_tokens ? chat_next_turn(line) : "User: " + line + "\nAssistant:")))
      ids.push_back(id);
    text.clear();
    if (session.pos() + int64_t(ids.size()) >= session.max_ctx()) { r.reason = StopReason::context_full; break; }
    for (int32_t id : ids) sampler.accept(id);
    const double t0 = now_s();
    Tensor logits = session.forward(ids.data(), int64_t(ids.size()));
    r = Run{int64_t(ids.size()), 0, now_s() - t0, 0, StopReason::none, -1};
    ids.clear();
    const double t1 = now_s();
    decode_tokens(turn_args, session, sampler, tok, logits, a.n, &r);
    r.t_decode = now_s() - t1;
    emit("\n");
    if (r.reason == StopReason::context_full) break;
  }
  if (r.reason == StopReason::context_full) std::fprintf(stderr, "generate: the conversation fills the model's context of %lld tokens\n", (long long)session.max_ctx());
  return r;
}

// The final line (stderr): why it stopped, speeds, time to first token, load time, memory, threads and
// sizes. The text on stdout always ends with a newline, so on a terminal this line starts its own.
void print_summary(const Run& r, double t_load, const ModelConfig& cfg, const Served& s) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr,
               "generate: stopped: %s (finish_reason %s); prompt %lld tokens at %.1f tok/s, decode %lld tokens at "
               "%.1f tok/s, time to first token %.1f ms, load %.2f s, peak RSS %s, threads %d (%d in the process), "
               "%s (%s in memory for the kernels; %s)\n",
               stop_reason_text(r.reason), finish_reason(r.reason), (long long)r.prompt_tokens,
               double(r.prompt_tokens) / std::max(r.t_prefill, 1e-9), (long long)r.generated,
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
    Run r;
    if (a.chat) {
      r = chat(a, served.model, *src.tokenizer);
    } else {
      const std::vector<int32_t> ids = prompt_ids(*src.tokenizer, a.prompt, served.model.cfg.context);
      r = generate(a, served.model, *src.tokenizer, ids);
    }
    print_summary(r, t_load, src.config(), served);
    return 0;
  });
}
