// A model as it is served: every weight either f32 or integer codes + scales in a format of
// src/quant/scheme.h. It comes from a QAT checkpoint (the learned rule, exactly the codes the QAT
// forward used), from PTQ of an FP32 checkpoint (minmax = the ggml rule, or MSE clipping), or from a
// GGUF file, and it becomes a DecodeModel (generate, eval) or a GGUF file (bin/quantize --to-gguf).
// Read next: models/gguf_model.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "src/nn/linear.h"
#include "models/decode.h"
#include "models/transformer.h"
#include "src/io/mapped_file.h"
#include "src/quant/scheme.h"

namespace qat {

struct ServedWeight {
  std::string name;              // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  LayerQuant q;                  // f32 (w == none) or a quantized format
  int64_t N = 0, K = 0;
  Tensor f32;                    // (N, K) when q is f32
  std::vector<int8_t> codes;     // (N, K) otherwise
  std::vector<float> scales;     // (N, K/G): f16 values (q4_0 from the ggml rule may be negative)
  // A weight read lazily from a GGUF file (read_gguf_model's GgufLoad::lazy): codes and scales stay
  // empty and `blocks` points at its N K / 32 ggml blocks (q.format().ggml: Q4_0 or Q8_0) in the file's
  // mapping, which `file` keeps alive. They are decoded one weight at a time when it is packed, so a
  // served model never holds the codes (1 byte per weight) next to its packed panels.
  std::shared_ptr<const Bytes> file;
  const uint8_t* blocks = nullptr;
  bool lazy() const { return blocks != nullptr; }
  // A post-training block format (q4_k, q6_k: q.format().post_training) has no codes: its GGUF blocks,
  // owned here (PTQ, or read eagerly) or the file's (lazy), are dequantized when it is served.
  std::vector<uint8_t> owned_blocks;
  const uint8_t* block_data() const { return lazy() ? blocks : owned_blocks.data(); }
  // The codes (N, K) and scales (N, K/G), or (N) per channel: a copy of codes/scales, or decoded from the blocks.
  void codes_scales(std::vector<int8_t>* q, std::vector<float>* d) const;
  // Drops the blocks' pages from the process (Bytes::release) once they have been packed; lazy only.
  // (Inline: the GGUF reader calls it, and its fuzz target links no more than the reader.)
  void release_blocks() const {
    if (lazy()) file->release(blocks, size_t(storage_bytes()));
  }
  Tensor dequantized() const;    // (N, K) f32: codes * scales, the post-training blocks decoded, or the f32 weight
  int64_t storage_bytes() const { return stored_bytes(q.w, N, K); }  // as stored in GGUF (formats.h)
  int64_t held_bytes() const;     // what this object holds in memory (capacities): codes, scales, owned blocks,
                                  // the f32 weight (not the file)
};

struct QuantizedModel {
  ModelConfig cfg;
  std::string scheme;            // "q4_0", ..., or "f32"; informational
  std::string activations;       // how activations were quantized in training ("q8_0", "int8_token", ...)
  ServedWeight embed;            // (V, C); tied models serve the lm_head from it
  std::vector<std::vector<ServedWeight>> layers;  // [layer][q k v o gate up down]
  ServedWeight lm_head;          // untied only
  std::vector<Tensor> attn_norm, mlp_norm;  // (C) per layer
  Tensor final_norm;             // (C)
  int64_t storage_bytes() const;
};

// The served form of a QAT model: learned-rule codes and f16 scales of every quantized weight.
QuantizedModel quantized_from_qat(const Transformer& t);
// PTQ of an FP32 model into `formats` with "minmax" or "mse" (post-training formats: "minmax" is ggml's
// reference rule, "mse" its search with unweighted squared error; kernels/ref/quant.h).
QuantizedModel quantized_from_ptq(const Transformer& t, const QatConfig& formats, const std::string& method);
// An FP32 model as-is (every weight f32).
QuantizedModel quantized_from_f32(const Transformer& t);

// The inference model. Served formats run the integer kernels of the active table; f32 weights run the
// fixed-order f32 kernel; weight-only formats (w4, w8) and the post-training K-quants run their dequantized
// weights through it.
// The comparison backends (src/nn/linear.h) swap the quantized layers' engine: onednn runs oneDNN's
// int8 matmul (per-channel int8: q4_0 / q8_0 weights are re-quantized per channel, a different model
// numerically), openblas runs f32 sgemm / sgemv on the dequantized weights.
DecodeModel decode_model(const QuantizedModel& m, Backend backend = Backend::native);

}  // namespace qat
