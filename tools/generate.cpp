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

int main(int argc, char** argv) {
  return run_main("generate", [&]() {
    std::string model_path = "runs/small", prompt;
    int64_t n = 200, top_k = 40, threads = 0, seed = 42;
    double temp = 0.8, top_p = 0.95;
    bool stdin_prompt = false, keep_going = false;
    std::string isa, backend = "native";
    ArgParser p("generate", "Generates text from a trained model: a checkpoint directory (f32) or a GGUF file (quantized,\n"
                            "served by the integer kernels). Text streams to stdout; speeds and sizes go to stderr.");
    p.option("--model", &model_path, "checkpoint directory or .gguf file", "PATH");
    p.option("--prompt", &prompt, "text to continue (default: start a new document)", "TEXT");
    p.flag("--stdin", &stdin_prompt, "read the prompt from standard input");
    p.option("--tokens", &n, "tokens to generate", 0, 1 << 20);
    p.alias("-n", "--tokens");
    p.option("--temp", &temp, "sampling temperature (0: greedy)", 0.0, 100.0);
    p.option("--top-k", &top_k, "sample among the k most likely tokens (0: all)", 0, 1 << 20);
    p.option("--top-p", &top_p, "nucleus sampling mass (1: off)", 0.0, 1.0);
    p.option("--seed", &seed, "sampling seed", 0, INT64_MAX);
    p.option("--threads", &threads, "threads (0: all cores)", 0, 4096);
    p.flag("--keep-going", &keep_going, "do not stop at the end-of-text token");
    p.option("--isa", &isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
    p.option("--backend", &backend, "native (our integer kernels), onednn (oneDNN int8 matmul) or openblas (f32 on "
                                    "dequantized weights)", "B");
    bool profile = false;
    p.flag("--profile", &profile, "print per-op tables of the prefill and of the decode at the end");
    if (!p.parse(argc, argv)) return 0;
    if (stdin_prompt) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    set_num_threads(int(threads));
    if (!isa.empty()) select_isa(isa);
    parse_backend(backend);  // validates the name

    double t_load = now_s();
    ModelSource src = open_model(model_path);
    const Tokenizer& tok = *src.tokenizer;
    // What runs: a GGUF file or a QAT checkpoint on the integer kernels (the same codes either way),
    // an FP32 checkpoint on OpenBLAS; --backend openblas runs any of them as f32 on dequantized weights.
    std::string kind;
    DecodeModel model;
    int64_t stored_bytes = f32_weight_bytes(src.config());  // model_size.h's figure, as eval and quantize print it
    if (src.is_gguf() || src.qat) {
      QuantizedModel qm = src.is_gguf() ? src.gguf->model : quantized_from_qat(*src.transformer());
      stored_bytes = weight_bytes(qm);
      Backend b = parse_backend(backend);
      model = decode_model(qm, b);
      kind = str(qm.scheme, ", ", backend_name(b), b == Backend::native ? str(" kernels ", kernels().name) : std::string());
    } else {
      QAT_CHECK(backend == "native" || backend == "openblas", "--backend ", backend, ": an FP32 checkpoint runs on OpenBLAS");
      model = decode_model_from_checkpoint(*src.checkpoint);
      kind = "f32, openblas";
    }
    t_load = now_s() - t_load;

    std::vector<int32_t> ids{tok.eot_id()};  // a document starts after an end-of-text token
    for (int32_t id : tok.encode(prompt)) ids.push_back(id);
    int64_t ctx = model.cfg.context;
    QAT_CHECK(int64_t(ids.size()) < ctx, "--prompt: ", ids.size(), " tokens do not fit the model context of ", ctx);
    DecodeSession session(model, ctx);
    Sampler sampler({float(temp), top_k, float(top_p), uint64_t(seed)});

    emit(prompt);
    MachinePeaks mp;
    if (profile) {
      mp = measure_peaks(num_threads(), 0.6);  // the roofline's ceilings, before anything is timed
      prof::enable(true);
    }
    double t0 = now_s();
    Tensor logits = session.forward(ids.data(), int64_t(ids.size()));
    double t_prefill = now_s() - t0;
    // The prefill and the decode are different workloads (GEMMs vs GEMVs): one table each.
    std::string prefill_table;
    if (profile) {
      prefill_table = prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, 1, t_prefill);
      prof::reset();
    }
    int64_t generated = 0;
    double t1 = now_s();
    while (generated < n && session.pos() < ctx) {
      prof::Scope sample_scope("sample+print", prof::Phase::other);
      int32_t next = sampler.sample(logits.f32(), model.cfg.vocab);
      if (next == tok.eot_id() && !keep_going) break;
      std::string piece = tok.decode({next});
      emit(piece);
      generated++;
      if (generated == n || session.pos() >= ctx) break;
      logits = session.forward(&next, 1);
    }
    double t_decode = now_s() - t1;
    emit("\n");
    if (profile) {
      std::fprintf(stderr, "profile of the prefill (%zu tokens in one forward):\n%s", ids.size(), prefill_table.c_str());
      std::fprintf(stderr, "profile of the decode (per token, %lld tokens):\n%s", (long long)generated,
                   prof::table({mp.f32_gflops, mp.int8_gops, mp.dram_gbs}, std::max<int64_t>(1, generated), t_decode)
                       .c_str());
      prof::enable(false);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::fprintf(stderr,
                 "generate: prompt %zu tokens at %.1f tok/s, decode %lld tokens at %.1f tok/s, time to first token %.1f ms, "
                 "load %.2f s, peak RSS %s, threads %d (%d in the process), %s (%s in memory for the kernels; %s)\n",
                 ids.size(), double(ids.size()) / t_prefill, (long long)generated,
                 generated ? double(generated) / t_decode : 0.0, t_prefill * 1e3, t_load, mib(int64_t(ru.ru_maxrss) * 1024).c_str(),
                 num_threads(), prof::process_threads(),
                 size_figures(src.config(), stored_bytes).c_str(), mib(model.weight_bytes()).c_str(), kind.c_str());
    return 0;
  });
}
