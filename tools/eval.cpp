// bin/eval: validation loss, perplexity and bits-per-byte of a model: a checkpoint in f32, a QAT
// checkpoint under its scheme (the served integer path), an FP32 checkpoint after PTQ, or a GGUF file.
// --sensitivity quantizes one layer at a time and reports the loss increase of each. --text and
// --score-second-half reproduce llama.cpp's llama-perplexity protocol (docs/LLAMACPP.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
#include <cstring>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/unicode.h"
#include "kernels/kernels.h"
#include "models/model_size.h"
#include "models/model_source.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "models/train/evaluate.h"
#include "src/quant/scheme.h"
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

// llama.cpp's llama-perplexity (examples/perplexity, perplexity() with the default --ppl-stride 0): when
// the model adds a BOS (bos >= 0; our files set add_bos_token = true with BOS = EOT) the text's tokens
// get one in front and each chunk's first token is replaced by it; the stream is cut into
// n = size / ctx chunks of ctx tokens (the tail is dropped); each chunk is one forward from position 0
// with an empty cache; the logits at positions first = ctx/2 .. ctx-2 are scored against the next
// token, ctx - ctx/2 - 1 tokens per chunk. max_chunks > 0 keeps the first max_chunks (--chunks).
EvalResult evaluate_second_half(const LogitsFn& logits_of, int64_t V, std::span<const int32_t> text_tokens, int32_t bos,
                                const std::vector<int32_t>& token_bytes, int64_t ctx, int64_t max_chunks) {
  std::vector<int32_t> tokens;
  if (bos >= 0) tokens.push_back(bos);
  tokens.insert(tokens.end(), text_tokens.begin(), text_tokens.end());
  NoGrad ng;
  // Positions ctx/2 .. ctx-2 are scored: below 3 tokens a chunk scores none, and a perplexity over no
  // token is no measurement.
  if (ctx < 3) throw UsageError(str("--ctx ", ctx, ": --score-second-half scores positions ctx/2..ctx-2 of each chunk, "
                                    "none below --ctx 3"));
  int64_t chunks = int64_t(tokens.size()) / ctx;
  QAT_CHECK(chunks >= 2, "eval --score-second-half: the text has ", tokens.size(), " tokens; llama-perplexity needs at least 2 x ctx = ", 2 * ctx);
  if (max_chunks > 0 && max_chunks < chunks) chunks = max_chunks;
  const int64_t first = ctx / 2;
  double nats = 0;
  EvalResult r;
  for (int64_t c = 0; c < chunks; c++) {
    const int32_t* chunk = tokens.data() + c * ctx;  // (ctx)
    Tensor ids = Tensor::empty({1, ctx}, DType::s32);
    std::memcpy(ids.data<int32_t>(), chunk, size_t(ctx) * 4);
    if (bos >= 0) ids.data<int32_t>()[0] = bos;
    Tensor lp = log_softmax(logits_of(ids).reshape({ctx, V}));  // (ctx, V)
    for (int64_t i = first; i < ctx - 1; i++) {
      const int32_t target = chunk[i + 1];
      nats -= lp.f32()[i * V + target];
      r.bytes += token_bytes[size_t(target)];
      r.tokens++;
    }
  }
  r.loss = r.tokens ? nats / double(r.tokens) : 0;
  r.bpb = r.bytes ? nats / (std::log(2.0) * double(r.bytes)) : 0;
  r.ppl = std::exp(r.loss);
  return r;
}

// The val documents as one text: separated by a blank line, no trailing newline (llama.cpp's -f drops one).
std::string val_text(const Corpus& corpus) {
  std::string out;
  for (const std::string& d : corpus.val) out += (out.empty() ? "" : "\n\n") + d;
  return out;
}

// The command line.
struct Args {
  std::string model_path = "runs/small", data, scheme, ptq, keep, isa, sensitivity, cache_dir = "runs/cache";
  std::string text_path, write_val_text, documents, reference;
  int64_t windows = 0, ctx = 0, threads = 0;
  bool json = false, second_half = false, print_tokens = false, data_given = false, documents_given = false;
};


// An FP32 Transformer with the latent weights of t (QAT scales dropped).
std::unique_ptr<Transformer> latent_f32(const Transformer& t) {
  auto f = std::make_unique<Transformer>(t.cfg, nullptr, Transformer::Frozen{});
  for (int i = 0; i < f->params.size(); i++) f->params[i].copy_from(t.params[t.params.index_of(f->params.info(i).name)]);
  return f;
}

// Parses argv into *a; false after --help.
bool parse_args(int argc, char** argv, Args* a) {
  ArgParser p("eval", "Validation loss, perplexity and bits-per-byte of a model on the validation split of the corpus.\n"
                      "  FP32 checkpoint               f32 forward of its weights\n"
                      "  QAT checkpoint                under its QAT scheme: the integer path generate serves\n"
                      "  QAT checkpoint --scheme f32   f32 forward of its latent weights\n"
                      "  FP32 checkpoint --ptq S[:M]   after post-training quantization (M: minmax = ggml rule, mse)\n"
                      "  f32 / f16 GGUF --ptq S[:M]    the same, from an imported model's weights\n"
                      "  model.gguf                    the served model (integer kernels; K-quant weights as their f32 values)");
  p.option("--model", &a->model_path, "checkpoint directory or .gguf file", "PATH");
  p.option("--data", &a->data, "corpus whose validation split is used (default: the one the checkpoint was trained on; "
                               "for a model that records none, the fortunes corpus)", "PATH");
  p.option("--documents", &a->documents, "how the corpus becomes documents, as train --documents (default: as the "
                                         "checkpoint was trained; with --data: auto)", "MODE");
  p.option("--scheme", &a->scheme, "a QAT checkpoint under its scheme (the default) or f32 (its latent weights)", "S");
  p.option("--ptq", &a->ptq, "post-training quantization first: SCHEME[:minmax|:mse], SCHEME one of " + scheme_names(SchemeSet::all), "S[:M]");
  p.option("--reference", &a->reference, "also measure the distance to this model (checkpoint or GGUF, same tokenizer) on the "
           "same tokens: KL(reference || model) per token, its 99th percentile, and the same-top-1 rate", "MODEL");
  p.option("--keep", &a->keep, "with --ptq or --sensitivity: per-layer overrides (as train --qat-keep)", "LIST");
  p.option("--sensitivity", &a->sensitivity, "quantize one layer at a time with SCHEME[:M] and report the loss increase", "S[:M]");
  p.option("--windows", &a->windows, "validation windows to evaluate (0: all; --sensitivity default 64)", 0, 1 << 30);
  p.option("--ctx", &a->ctx, "tokens per window (0: the model context)", 0, 1 << 20);
  p.option("--threads", &a->threads, "threads (0: all cores)", 0, 4096);
  p.option("--isa", &a->isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
  p.option("--cache-dir", &a->cache_dir, "where tokenized data is cached", "DIR");
  p.flag("--json", &a->json, "print one JSON line (val_loss, bpb, ppl, model_bytes, tokens) instead of text");
  p.option("--text", &a->text_path, "evaluate on this UTF-8 text file tokenized as one stream (no EOT; one trailing "
                                    "newline dropped, as llama-perplexity -f does) instead of the val split", "FILE");
  p.flag("--score-second-half", &a->second_half, "llama-perplexity's protocol: BOS (EOT) + text, chunks of --ctx tokens "
                                                 "each starting with BOS, scored on positions ctx/2..ctx-1 only (--windows: number of chunks)");
  p.flag("--print-tokens", &a->print_tokens, "print the token ids of the evaluated text as [a, b, ...] (llama-tokenize --ids) and exit");
  p.option("--write-val-text", &a->write_val_text, "write the val documents of the corpus, separated by blank lines, to FILE and exit", "FILE");
  if (!p.parse(argc, argv)) return false;
  a->data_given = p.given("--data");
  a->documents_given = p.given("--documents");
  (void)parse_doc_mode(a->documents);
  if (!a->scheme.empty() && !a->ptq.empty()) throw UsageError("--scheme and --ptq exclude each other");
  if (!a->reference.empty() && a->second_half) throw UsageError("--reference measures windows, not --score-second-half chunks");
  if (!a->scheme.empty() && a->scheme != "f32") scheme_layer(a->scheme);  // validates the name
  return true;
}

// The evaluated token stream: the val split (documents, each ending in EOT) or --text as one stream;
// *measured says which, for the result line.
TokenizedData load_tokens(const Args& a, const ModelSource& src, std::string* measured) {
  TokenizedData tokens;
  if (a.text_path.empty()) {
    const TrainingText text = training_text(src, a.data, a.data_given, a.documents, a.documents_given);
    Corpus corpus = load_corpus(text.data, text.mode);
    for (const std::string& p : corpus.files.problems) std::fprintf(stderr, "warning: %s\n", p.c_str());
    *measured = str("val split of ", corpus.source, " (", text.why, corpus.stream() ? "; one stream, val = its last 10%" : "",
                    ")");
    return load_or_tokenize(corpus, *src.tokenizer, a.cache_dir);
  }
  *measured = "text " + a.text_path + " (--text)";
  std::string text = read_file(a.text_path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  size_t bad = 0;
  QAT_CHECK(is_valid_utf8(text, &bad), a.text_path, ": not valid UTF-8 at byte ", bad, " (--text needs UTF-8)");
  tokens.val.tokens = src.tokenizer->encode(text);
  tokens.val.bytes = text.size();
  return tokens;
}

// --sensitivity: every layer quantized alone (PTQ), sorted by the loss it adds to the FP32 model.
void run_sensitivity(const Args& a, const ModelSource& src, std::span<const int32_t> val,
                     const std::vector<int32_t>& token_bytes, int64_t ctx) {
  const ModelConfig& cfg = src.config();
  QAT_CHECK(!src.is_gguf() && !src.qat, "--sensitivity needs an FP32 checkpoint");
  auto [s, method] = split_ptq(a.sensitivity);
  int64_t w = a.windows > 0 ? a.windows : 64;
  auto t = src.transformer();
  EvalResult base = evaluate(*t, val, token_bytes, 8, ctx, w);
  std::printf("sensitivity of %s to %s (%s), %lld windows of %lld tokens: base val loss %.4f\n",
              src.describe().c_str(), s.c_str(), method.c_str(), (long long)w, (long long)ctx, base.loss);
  std::vector<std::pair<double, std::string>> rows;
  std::vector<std::string> slots{"embed"};
  for (int64_t l = 0; l < cfg.n_layers; l++)
    for (Proj p : kBlockProj) slots.push_back(str("layers.", l, ".", proj_info(p).name));
  if (!cfg.tied) slots.push_back("lm_head");
  for (const std::string& slot : slots) {
    // Everything f32 except this slot (a tied embedding brings its lm_head along).
    QatConfig one = QatConfig::make("f32", slot + "=" + s, cfg.n_layers, cfg.tied);
    EvalResult r = evaluate_served(decode_model(quantized_from_ptq(*t, one, method)), val, token_bytes, ctx, w);
    rows.push_back({r.loss - base.loss, slot});
  }
  std::sort(rows.rbegin(), rows.rend());
  std::printf("%-22s %12s\n", "layer", "loss increase");
  for (auto& [d, slot] : rows) std::printf("%-22s %+12.5f\n", slot.c_str(), d);
}

// What was measured and its result.
struct Measured {
  Mode mode;
  EvalResult r;
  int64_t model_bytes = 0;
};

// The loss of the model as --scheme / --ptq say: a GGUF file or a QAT checkpoint through the served
// integer path, PTQ of an FP32 model (or of a GGUF file's weights), or the f32 forward (a QAT
// checkpoint's latent weights on request). With a `reference` forward (--reference), also the distance
// of the model's next-token distributions to it on the same windows.
Measured measure(Args& a, const ModelSource& src, std::span<const int32_t> val,
                 const std::vector<int32_t>& token_bytes, int64_t ctx, const LogitsFn& reference) {
  const ModelConfig& cfg = src.config();
  const int32_t bos = src.tokenizer->start_token();  // ours: EOT; a model's: its BOS when it adds one
  auto run_served = [&](const DecodeModel& dm) {
    if (reference) return evaluate_against(served_logits_fn(dm), reference, cfg.vocab, val, token_bytes, 8, ctx, a.windows);
    return a.second_half ? evaluate_second_half(served_logits_fn(dm), cfg.vocab, val, bos, token_bytes, ctx, a.windows)
                         : evaluate_served(dm, val, token_bytes, ctx, a.windows);
  };
  Measured m;
  if (src.is_gguf() && a.ptq.empty()) {
    QAT_CHECK(a.scheme.empty(), "--scheme applies to QAT checkpoints; a GGUF file is served as it is");
    m.mode = {"gguf", src.gguf->model.scheme, ""};
    m.model_bytes = weight_bytes(src.gguf->model);
    m.r = run_served(decode_model(src.gguf->model));
    return m;
  }
  auto t = src.transformer();
  // A QAT checkpoint is what its integer path computes; its latent f32 weights only on request.
  if (a.scheme.empty() && a.ptq.empty() && src.qat) a.scheme = src.qat->scheme;
  if (!a.scheme.empty() && a.scheme != "f32") {
    QAT_CHECK(src.qat.has_value(), "--scheme: ", a.model_path, " is an FP32 checkpoint (no learned scales); use --ptq ", a.scheme);
    QAT_CHECK(a.scheme == src.qat->scheme, "--scheme ", a.scheme, ": the checkpoint was trained with --qat ", src.qat->scheme);
    m.mode = {"qat", a.scheme, ""};
    QuantizedModel qm = quantized_from_qat(*t);
    m.model_bytes = weight_bytes(qm);
    m.r = run_served(decode_model(qm));
  } else if (!a.ptq.empty()) {
    auto [s, method] = split_ptq(a.ptq);
    m.mode = {"ptq", s, method};
    std::unique_ptr<Transformer> f = src.qat ? latent_f32(*t) : std::move(t);
    QuantizedModel qm = quantized_from_ptq(*f, QatConfig::make(s, a.keep, cfg.n_layers, cfg.tied), method);
    m.model_bytes = weight_bytes(qm);
    m.r = run_served(decode_model(qm));
  } else {
    m.mode = {"f32", "", ""};
    std::unique_ptr<Transformer> f = src.qat ? latent_f32(*t) : std::move(t);
    m.model_bytes = f32_weight_bytes(cfg);
    const LogitsFn f32_fn = [&](const Tensor& ids) { return f->forward(ids); };
    m.r = reference        ? evaluate_against(f32_fn, reference, cfg.vocab, val, token_bytes, 8, ctx, a.windows)
          : a.second_half ? evaluate_second_half(f32_fn, cfg.vocab, val, bos, token_bytes, ctx, a.windows)
                          : evaluate(*f, val, token_bytes, 8, ctx, a.windows);
  }
  return m;
}

// The result: one line of text, or one JSON line with --json.
void print_result(const Args& a, const ModelSource& src, const Measured& m, const std::string& measured, int64_t ctx) {
  const Mode& mode = m.mode;
  const EvalResult& r = m.r;
  std::string what = mode.kind == "f32"   ? (src.qat ? "f32 latent weights" : "f32")
                   : mode.kind == "ptq" ? "PTQ " + mode.scheme + ":" + mode.method
                   : mode.kind == "qat" ? "QAT " + mode.scheme + " (integer path)" : "served " + mode.scheme + " (integer path)";
  if (a.json) {
    Json j = Json::object();
    j.set("model", a.model_path); j.set("text", measured); j.set("mode", mode.kind); j.set("scheme", mode.scheme);
    j.set("method", mode.method);
    j.set("val_loss", r.loss); j.set("bpb", r.bpb); j.set("ppl", r.ppl); j.set("model_bytes", m.model_bytes);
    j.set("tokens", r.tokens); j.set("isa", std::string(kernels().name));
    if (!a.reference.empty()) {
      j.set("reference", a.reference); j.set("kl", r.kl); j.set("kl_p99", r.kl_p99); j.set("same_top1", r.same_top1);
    }
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::string how = a.second_half ? str(ctx, "-token chunks, second halves scored (llama-perplexity)") : str(ctx, "-token windows");
  std::printf("eval: %s, %s, on the %s: loss %.6f, bpb %.4f, ppl %.3f over %lld tokens (%s); %s; kernels %s\n",
              src.describe().c_str(), what.c_str(), measured.c_str(), r.loss, r.bpb, r.ppl, (long long)r.tokens, how.c_str(),
              weights_figure(m.model_bytes).c_str(), kernels().name);
  if (!a.reference.empty())
    std::printf("eval: against %s on the same tokens: KL %.6f nats/token (99th percentile %.6f), same top-1 %.2f%%\n",
                a.reference.c_str(), r.kl, r.kl_p99, r.same_top1 * 100);
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("eval", [&]() {
    Args a;
    if (!parse_args(argc, argv, &a)) return 0;
    set_num_threads(int(a.threads));
    if (!a.isa.empty()) select_isa(a.isa);
    if (!a.write_val_text.empty()) {  // no model needed
      Corpus corpus = load_corpus(a.data, parse_doc_mode(a.documents));
      std::string text = val_text(corpus);
      write_file_atomic(a.write_val_text, text);
      std::printf("eval: wrote %zu val documents (%zu bytes) to %s\n", corpus.val.size(), text.size(), a.write_val_text.c_str());
      return 0;
    }
    ModelSource src = open_model(a.model_path);
    const ModelConfig& cfg = src.config();
    const int64_t ctx = a.ctx > 0 ? a.ctx : cfg.context;
    QAT_CHECK(ctx <= cfg.context, "--ctx ", ctx, " exceeds the model context ", cfg.context);
    std::vector<int32_t> token_bytes(size_t(cfg.vocab));
    for (int32_t id = 0; id < cfg.vocab; id++)
      token_bytes[size_t(id)] = int32_t(src.tokenizer->text_bytes(id));
    std::string measured;
    const TokenizedData tokens = load_tokens(a, src, &measured);
    if (a.print_tokens) {
      std::printf("[");
      for (size_t i = 0; i < tokens.val.tokens.size(); i++) std::printf(i ? ", %d" : "%d", tokens.val.tokens[i]);
      std::printf("]\n");
      return 0;
    }
    if (!a.sensitivity.empty()) {
      run_sensitivity(a, src, tokens.val.tokens, token_bytes, ctx);
      return 0;
    }
    // --reference: its forward on the same windows (an FP32 checkpoint or imported model in f32, a QAT
    // checkpoint or GGUF file as served). Built once; nothing of it is cached between batches.
    std::optional<ModelSource> ref;
    std::unique_ptr<Transformer> ref_t;
    std::optional<DecodeModel> ref_dm;
    LogitsFn reference;
    if (!a.reference.empty()) {
      ref = open_model(a.reference);
      QAT_CHECK(ref->config().vocab == cfg.vocab, "--reference: ", a.reference, " has ", ref->config().vocab,
                " tokens, the model ", cfg.vocab, " (the same tokenizer is needed)");
      if (ref->is_gguf()) ref_dm = decode_model(ref->gguf->model);
      else if (ref->qat) ref_dm = decode_model(quantized_from_qat(*ref->transformer()));
      else ref_t = ref->transformer();
      reference = ref_dm ? served_logits_fn(*ref_dm) : LogitsFn([&](const Tensor& ids) { return ref_t->forward(ids); });
    }
    const Measured m = measure(a, src, tokens.val.tokens, token_bytes, ctx, reference);
    // Every path ends here: a loss over no token (an empty text, too few tokens for one window) would
    // print ppl 1.000 as if it were a result.
    QAT_CHECK(m.r.tokens > 0, "no token was scored (", a.text_path.empty() ? "the validation split" : a.text_path,
              " with ", ctx, "-token windows): nothing was measured");
    print_result(a, src, m, measured, ctx);
    return 0;
  });
}
