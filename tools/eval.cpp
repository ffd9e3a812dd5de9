// bin/eval: validation loss, perplexity and bits-per-byte of a model: a checkpoint in f32, a QAT
// checkpoint under its scheme (the served integer path), an FP32 checkpoint after PTQ, or a GGUF file.
// --sensitivity quantizes one layer at a time and reports the loss increase of each.
#include <algorithm>
#include <cstdio>

#include "data/corpus.h"
#include "data/dataset.h"
#include "kernels/kernels.h"
#include "models/model_source.h"
#include "src/core/parallel.h"
#include "src/train/evaluate.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;

namespace {
struct Mode {
  std::string kind;    // "f32", "qat", "ptq", "gguf"
  std::string scheme;  // for qat / ptq
  std::string method;  // for ptq: minmax | mse
};

// "q4_0" or "q4_0:mse" -> scheme, method.
std::pair<std::string, std::string> split_ptq(const std::string& s) {
  size_t c = s.find(':');
  std::string scheme = s.substr(0, c), method = c == std::string::npos ? "minmax" : s.substr(c + 1);
  if (method != "minmax" && method != "mse") throw UsageError("--ptq: method must be minmax or mse, got '" + method + "'");
  scheme_layer(scheme);  // validates the name
  return {scheme, method};
}

// An FP32 Transformer with the latent weights of t (QAT scales dropped).
std::unique_ptr<Transformer> latent_f32(const Transformer& t) {
  auto f = std::make_unique<Transformer>(t.cfg);
  for (int i = 0; i < f->params.size(); i++) f->params[i].copy_from(t.params[t.params.index_of(f->params.info(i).name)]);
  return f;
}
}  // namespace

int main(int argc, char** argv) {
  return run_main("eval", [&]() {
    std::string model_path = "runs/small", data, scheme, ptq, keep, isa, sensitivity, cache_dir = "runs/cache";
    int64_t windows = 0, ctx = 0, threads = 0;
    bool json = false;
    ArgParser p("eval", "Validation loss, perplexity and bits-per-byte of a model on the validation split of the corpus.\n"
                        "  checkpoint (FP32 or QAT)      f32 forward of its (latent) weights\n"
                        "  QAT checkpoint --scheme S     under its QAT scheme: the integer path generate serves\n"
                        "  FP32 checkpoint --ptq S[:M]   after post-training quantization (M: minmax = ggml rule, mse)\n"
                        "  model.gguf                    the served model (integer kernels)");
    p.option("--model", &model_path, "checkpoint directory or .gguf file", "PATH");
    p.option("--data", &data, "corpus whose validation split is used (default: the fortunes corpus)", "PATH");
    p.option("--scheme", &scheme, "evaluate a QAT checkpoint under its scheme (q4_0, q8_0, w8a8, w4, w8)", "S");
    p.option("--ptq", &ptq, "post-training quantization first: SCHEME[:minmax|:mse]", "S[:M]");
    p.option("--keep", &keep, "with --ptq or --sensitivity: per-layer overrides (as train --qat-keep)", "LIST");
    p.option("--sensitivity", &sensitivity, "quantize one layer at a time with SCHEME[:M] and report the loss increase", "S[:M]");
    p.option("--windows", &windows, "validation windows to evaluate (0: all; --sensitivity default 64)", 0, 1 << 30);
    p.option("--ctx", &ctx, "tokens per window (0: the model context)", 0, 1 << 20);
    p.option("--threads", &threads, "threads (0: all cores)", 0, 4096);
    p.option("--isa", &isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
    p.option("--cache-dir", &cache_dir, "where tokenized data is cached", "DIR");
    p.flag("--json", &json, "print one JSON line (val_loss, bpb, ppl, model_bytes, tokens) instead of text");
    if (!p.parse(argc, argv)) return 0;
    if (!scheme.empty() && !ptq.empty()) throw UsageError("--scheme and --ptq exclude each other");
    set_num_threads(int(threads));
    if (!isa.empty()) select_isa(isa);

    ModelSource src = open_model(model_path);
    const ModelConfig& cfg = src.config();
    if (ctx <= 0) ctx = cfg.context;
    QAT_CHECK(ctx <= cfg.context, "--ctx ", ctx, " exceeds the model context ", cfg.context);
    Corpus corpus = load_corpus(data);
    TokenizedData tokens = load_or_tokenize(corpus, *src.tokenizer, cache_dir);
    std::vector<int32_t> token_bytes(size_t(cfg.vocab));
    for (int32_t id = 0; id < cfg.vocab; id++)
      token_bytes[size_t(id)] = id == src.tokenizer->eot_id() ? 0 : int32_t(src.tokenizer->token_bytes(id).size());

    if (!sensitivity.empty()) {  // one layer quantized at a time
      QAT_CHECK(!src.is_gguf() && !src.qat, "--sensitivity needs an FP32 checkpoint");
      auto [s, method] = split_ptq(sensitivity);
      int64_t w = windows > 0 ? windows : 64;
      auto t = src.transformer();
      EvalResult base = evaluate(*t, tokens.val.tokens, token_bytes, 8, ctx, w);
      std::printf("sensitivity of %s to %s (%s), %lld windows of %lld tokens: base val loss %.4f\n",
                  src.describe().c_str(), s.c_str(), method.c_str(), (long long)w, (long long)ctx, base.loss);
      std::vector<std::pair<double, std::string>> rows;
      std::vector<std::string> slots{"embed"};
      const char* kinds[7] = {"q", "k", "v", "o", "gate", "up", "down"};
      for (int64_t l = 0; l < cfg.n_layers; l++)
        for (const char* k : kinds) slots.push_back(str("layers.", l, ".", k));
      if (!cfg.tied) slots.push_back("lm_head");
      for (const std::string& slot : slots) {
        // Everything f32 except this slot (a tied embedding brings its lm_head along).
        QatConfig one = QatConfig::make("f32", slot + "=" + s, cfg.n_layers, cfg.tied);
        EvalResult r = evaluate_served(decode_model(quantized_from_ptq(*t, one, method)), tokens.val.tokens, token_bytes, ctx, w);
        rows.push_back({r.loss - base.loss, slot});
      }
      std::sort(rows.rbegin(), rows.rend());
      std::printf("%-22s %12s\n", "layer", "loss increase");
      for (auto& [d, slot] : rows) std::printf("%-22s %+12.5f\n", slot.c_str(), d);
      return 0;
    }

    Mode mode;
    EvalResult r;
    int64_t model_bytes = 0;
    if (src.is_gguf()) {
      QAT_CHECK(scheme.empty() && ptq.empty(), "--scheme / --ptq apply to checkpoints; a GGUF file is already quantized");
      mode = {"gguf", src.gguf->model.scheme, ""};
      model_bytes = src.gguf->model.storage_bytes();
      r = evaluate_served(decode_model(src.gguf->model), tokens.val.tokens, token_bytes, ctx, windows);
    } else {
      auto t = src.transformer();
      if (!scheme.empty()) {
        QAT_CHECK(src.qat.has_value(), "--scheme: ", model_path, " is an FP32 checkpoint (no learned scales); use --ptq ", scheme);
        QAT_CHECK(scheme == src.qat->scheme, "--scheme ", scheme, ": the checkpoint was trained with --qat ", src.qat->scheme);
        mode = {"qat", scheme, ""};
        QuantizedModel qm = quantized_from_qat(*t);
        model_bytes = qm.storage_bytes();
        r = evaluate_served(decode_model(qm), tokens.val.tokens, token_bytes, ctx, windows);
      } else if (!ptq.empty()) {
        auto [s, method] = split_ptq(ptq);
        mode = {"ptq", s, method};
        std::unique_ptr<Transformer> f = src.qat ? latent_f32(*t) : std::move(t);
        QuantizedModel qm = quantized_from_ptq(*f, QatConfig::make(s, keep, cfg.n_layers, cfg.tied), method);
        model_bytes = qm.storage_bytes();
        r = evaluate_served(decode_model(qm), tokens.val.tokens, token_bytes, ctx, windows);
      } else {
        mode = {"f32", "", ""};
        std::unique_ptr<Transformer> f = src.qat ? latent_f32(*t) : std::move(t);
        model_bytes = quantized_from_f32(*f).storage_bytes();
        r = evaluate(*f, tokens.val.tokens, token_bytes, 8, ctx, windows);
      }
    }
    std::string what = mode.kind == "f32" ? "f32" : mode.kind == "ptq" ? "PTQ " + mode.scheme + ":" + mode.method
                     : mode.kind == "qat" ? "QAT " + mode.scheme + " (integer path)" : "served " + mode.scheme + " (integer path)";
    if (json) {
      Json j = Json::object();
      j.set("model", model_path); j.set("mode", mode.kind); j.set("scheme", mode.scheme); j.set("method", mode.method);
      j.set("val_loss", r.loss); j.set("bpb", r.bpb); j.set("ppl", r.ppl); j.set("model_bytes", model_bytes);
      j.set("tokens", r.tokens); j.set("isa", std::string(kernels().name));
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("eval: %s, %s: val loss %.6f, bpb %.4f, ppl %.3f over %lld tokens (%lld-token windows); weights %.3f MiB; kernels %s\n",
                  src.describe().c_str(), what.c_str(), r.loss, r.bpb, r.ppl, (long long)r.tokens, (long long)ctx,
                  double(model_bytes) / (1 << 20), kernels().name);
    }
    return 0;
  });
}
