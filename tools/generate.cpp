// bin/generate: generates text from a checkpoint directory (f32) or a GGUF file (integer kernels),
// streaming tokens to stdout; the final line (stderr) gives the measured speeds and sizes.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "data/tokenizer.h"
#include "models/decode.h"
#include "models/from_checkpoint.h"
#include "models/sampler.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "src/util/cli.h"

using namespace qat;

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  return run_main("generate", [&]() {
    std::string model_path = "runs/small", prompt;
    int64_t n = 200, top_k = 40, threads = 0, seed = 42;
    double temp = 0.8, top_p = 0.95;
    bool stdin_prompt = false, keep_going = false;
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
    if (!p.parse(argc, argv)) return 0;
    if (stdin_prompt) prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    set_num_threads(int(threads));

    double t_load = now_s();
    QAT_CHECK(file_exists(model_path), "--model: ", model_path, " does not exist");
    QAT_CHECK(is_directory(model_path), "--model: ", model_path,
              ": GGUF serving is not built yet; pass a checkpoint directory");
    LoadedCheckpoint ck = load_checkpoint(model_path);
    Tokenizer tok = Tokenizer::load(ck.tokenizer_path);
    DecodeModel model = decode_model_from_checkpoint(ck);
    t_load = now_s() - t_load;

    std::vector<int32_t> ids{tok.eot_id()};  // a document starts after an end-of-text token
    for (int32_t id : tok.encode(prompt)) ids.push_back(id);
    int64_t ctx = model.cfg.context;
    QAT_CHECK(int64_t(ids.size()) < ctx, "--prompt: ", ids.size(), " tokens do not fit the model context of ", ctx);
    DecodeSession session(model, ctx);
    Sampler sampler({float(temp), top_k, float(top_p), uint64_t(seed)});

    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
    double t0 = now_s();
    Tensor logits = session.forward(ids.data(), int64_t(ids.size()));
    double t_prefill = now_s() - t0;
    int64_t generated = 0;
    double t1 = now_s();
    while (generated < n && session.pos() < ctx) {
      int32_t next = sampler.sample(logits.f32(), model.cfg.vocab);
      if (next == tok.eot_id() && !keep_going) break;
      std::string piece = tok.decode({next});
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      generated++;
      if (generated == n || session.pos() >= ctx) break;
      logits = session.forward(&next, 1);
    }
    double t_decode = now_s() - t1;
    std::printf("\n");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::fprintf(stderr,
                 "generate: prompt %zu tokens at %.1f tok/s, decode %lld tokens at %.1f tok/s, time to first token %.1f ms, "
                 "load %.2f s, peak RSS %.1f MiB, model %.2f MiB (%s)\n",
                 ids.size(), double(ids.size()) / t_prefill, (long long)generated,
                 generated ? double(generated) / t_decode : 0.0, t_prefill * 1e3, t_load, double(ru.ru_maxrss) / 1024.0,
                 double(model.weight_bytes()) / (1 << 20), "f32");
    return 0;
  });
}
