// bin/quantize: writes a checkpoint as a GGUF file that bin/generate and llama.cpp serve, with the
// model's own tokenizer (an imported model's tokenizer.ggml.* keys as it came). A QAT
// checkpoint is exported with exactly the codes and f16 scales its forward used (no re-quantization);
// an FP32 checkpoint is quantized post-training (PTQ) with the ggml rule or an MSE clipping search.
#include <cmath>
#include <cstdio>

#include "models/gguf_model.h"
#include "models/model_size.h"
#include "models/model_source.h"
#include "src/core/parallel.h"
#include "src/quant/fake_quant.h"
#include "src/quant/scheme.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;

int main(int argc, char** argv) {
  return run_main("quantize", [&]() {
    std::string model_path = "runs/small", scheme, ptq = "minmax", keep, out;
    int64_t threads = 0;
    ArgParser p("quantize", "Exports a checkpoint to GGUF (llama.cpp's format, `llama` architecture):\n"
                            "  QAT checkpoint: its learned codes and scales, exactly as trained (--scheme must match)\n"
                            "  FP32 checkpoint: post-training quantization with --ptq minmax (ggml's rule) or mse\n"
                            "  GGUF file (an imported model): the same, from its weights as f32 (its tokenizer kept)\n"
                            "  (q4_k, q6_k, q4_k_m: llama.cpp's K-quants and its Q4_K_M mixture, byte for byte as\n"
                            "  llama-quantize writes them with minmax; mse runs the same search unweighted)\n"
                            "Prints each weight's format and SQNR, and the file size against f32.");
    p.option("--model", &model_path, "checkpoint directory or GGUF file", "PATH");
    p.option("--scheme", &scheme, scheme_names(SchemeSet::exported) + " (default: a QAT checkpoint's own scheme, else q4_0)", "S");
    p.option("--ptq", &ptq, "FP32 checkpoints: minmax (ggml rule) or mse (MSE-optimal clipping)", "M");
    p.option("--keep", &keep, "FP32 checkpoints: per-layer overrides (as train --qat-keep)", "LIST");
    p.option("--to-gguf", &out, "output file", "FILE.gguf");
    p.option("--threads", &threads, "threads (0: all cores)", 0, 4096);
    if (!p.parse(argc, argv)) return 0;
    if (out.empty()) throw UsageError("--to-gguf: missing (where to write the GGUF file)");
    if (ptq != "minmax" && ptq != "mse") throw UsageError("--ptq: expected minmax or mse, got '" + ptq + "'");
    set_num_threads(int(threads));
    ModelSource src = open_model(model_path, false);  // from a GGUF: its f32 weights only (transformer())
    auto t = src.transformer();
    const ModelConfig& cfg = src.config();
    QuantizedModel qm;
    std::string how;
    if (src.qat) {
      if (scheme.empty()) scheme = src.qat->scheme;
      QAT_CHECK(scheme == src.qat->scheme, "--scheme ", scheme, ": ", model_path, " was trained with --qat ",
                src.qat->scheme, " (export it as such, or PTQ its FP32 parent)");
      QAT_CHECK(keep.empty(), "--keep: a QAT checkpoint's layer formats are fixed by its training");
      qm = quantized_from_qat(*t);
      how = "QAT codes and scales";
    } else if (scheme == "f32") {
      qm = quantized_from_f32(*t);
      how = "f32";
    } else {
      if (scheme.empty()) scheme = "q4_0";
      qm = quantized_from_ptq(*t, QatConfig::make(scheme, keep, cfg.n_layers, cfg.tied), ptq);
      how = "PTQ (" + ptq + ")";
    }
    qm.scheme = scheme;
    write_gguf_model(out, qm, *src.tokenizer);

    // What was written, with the quantization error of each weight against the checkpoint's f32 values.
    std::printf("%-44s %-6s %10s %9s\n", "tensor", "format", "bytes", "SQNR dB");
    auto row = [&](const ServedWeight& w) {
      Tensor deq = w.dequantized();
      const Tensor& ref = t->params[t->params.index_of(w.name)];
      double db = sqnr_db(ref.f32(), deq.f32(), deq.numel());
      std::printf("%-44s %-6s %10lld %9.2f\n", w.name.c_str(), w.q.name().c_str(), (long long)w.storage_bytes(),
                  std::isfinite(db) ? db : 999.0);
    };
    row(qm.embed);
    for (const auto& l : qm.layers)
      for (const ServedWeight& w : l) row(w);
    if (!cfg.tied) row(qm.lm_head);
    const int64_t bytes = weight_bytes(qm), f32_bytes = f32_weight_bytes(cfg);
    std::printf("quantize: %s -> %s (%s, %s): %s = %.3fx the f32 model (%s)\n", model_path.c_str(), out.c_str(),
                scheme.c_str(), how.c_str(), size_figures(cfg, bytes).c_str(), double(bytes) / double(f32_bytes),
                mib(f32_bytes).c_str());
    return 0;
  });
}
