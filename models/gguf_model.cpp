// GGUF export and import of a served model (see gguf_model.h). Names and keys follow llama.cpp's
// `llama` architecture (src/llama-arch.cpp) and its loader (src/llama-model-loader.cpp, llama-vocab.cpp).
#include "models/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "src/core/dtype.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/sysmem.h"
#include "kernels/ref/quant.h"

namespace qat {

namespace {

// llama.cpp's file type (llama_ftype, a column of kSchemes): what general.file_type announces for the bulk of the weights.
uint32_t file_type(const std::string& scheme) {
  const SchemeInfo* s = find_scheme(scheme);
  return s ? s->llama_ftype : 0;  // LLAMA_FTYPE_ALL_F32
}

// One weight as GGUF tensor bytes: F32 or its format's blocks (Q4_0, Q8_0, TQ2_0, TQ1_0, Q4_K, Q6_K; per-channel
// int8 as Q8_0 blocks repeating the row's scale).
void add_weight(GgufWriter& w, const std::string& name, const ServedWeight& s) {
  const std::vector<int64_t> ne{s.K, s.N};
  const int64_t n = s.N * s.K;
  const WeightFormat& fmt = s.q.format();
  if (!fmt.gguf)
    throw UsageError(str("--to-gguf: ", s.name, " is ", s.q.name(), ", a weight-only training format that is not served (export ",
                         scheme_names(SchemeSet::exported), ")"));
  if (!s.q.quantized()) {
    w.add_tensor(name, s.f32);
    return;
  }
  std::string bytes(size_t(stored_bytes(s.q.w, s.N, s.K)), '\0');
  if (s.lazy() || fmt.post_training) {  // read from a GGUF, or a post-training format: already these bytes
    QAT_CHECK(s.block_data() != nullptr, "--to-gguf: ", s.name, " (", s.q.name(), ") holds no blocks");
    std::memcpy(bytes.data(), s.block_data(), bytes.size());
    return w.add_tensor(name, fmt.ggml, ne, std::move(bytes));
  }
  // Block b's scale: its own (group = the block size) or its row's (per channel, group K).
  const int64_t block = ggml_type_info(uint32_t(fmt.ggml))->block_elems, blocks = n / block;
  std::vector<float> d(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; b++) d[size_t(b)] = s.scales[size_t(b * block / s.q.group(s.K))];
  fmt.codec->from_codes(s.codes.data(), d.data(), n, bytes.data());
  w.add_tensor(name, fmt.ggml, ne, std::move(bytes));
}

// n values of an F32, F16 or BF16 tensor as f32 (BF16: the top half of an f32, exactly).
void to_f32(const GgufTensorInfo& t, float* out, int64_t n) {
  if (t.type == GgmlType::F32) {
    std::memcpy(out, t.data, size_t(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    uint16_t h;
    std::memcpy(&h, t.data + 2 * i, 2);
    if (t.type == GgmlType::F16) {
      out[i] = f16_to_f32(h);
    } else {
      const uint32_t bits = uint32_t(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  }
}

// Weights, norms and scales must be finite (issue 8): one NaN or inf would reach every logit.
void require_finite(const GgufFile& f, const std::string& name, const float* p, int64_t n, const char* what) {
  for (int64_t i = 0; i < n; i++)
    if (!std::isfinite(p[i]))
      fail(f.path, ": tensor '", name, "' holds a non-finite ", what, " (", p[i], " at index ", i, ")");
}

// The GGUF types a served weight is read from, for the refusal: "F16, BF16, F32, Q4_0 and Q8_0".
std::string gguf_weight_types() {
  std::vector<std::string> names{"F16", "BF16"};  // read as f32
  for (const WeightFormat& fmt : kWeightFormats) {
    const std::string name = ggml_type_info(uint32_t(fmt.ggml))->name;
    if (fmt.gguf && std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return list_text(names, "and");
}

// A block tensor's codes (n) and one scale per block (n / block_elems) as stored.
void decode_blocks(const GgufFile& f, const std::string& name, const GgufTensorInfo& t, const LayerQuant& q, int64_t n,
                   std::vector<int8_t>* codes, std::vector<float>* d) {
  codes->resize(size_t(n));
  d->resize(size_t(n / ggml_type_info(uint32_t(t.type))->block_elems));
  q.format().codec->to_codes(t.data, n, codes->data(), d->data());  // q was read from t.type (scheme_read_from_gguf)
  require_finite(f, name, d->data(), int64_t(d->size()), "block scale");
  for (int64_t c : *codes)
    QAT_CHECK(c >= q.code_min() && c <= q.code_max(), f.path, ": tensor '", name, "' holds the code ", c, " (qat's ",
              q.name(), " codes are in [", q.code_min(), ", ", q.code_max(), "])");
}

// Per-channel scales (N) from block scales d (N * K / 32): every block of a row must carry its row's scale.
std::vector<float> row_scales(const GgufFile& f, const std::string& name, const LayerQuant& q, const std::vector<float>& d,
                              int64_t N) {
  const int64_t per_row = int64_t(d.size()) / N;
  std::vector<float> scales(static_cast<size_t>(N));
  for (int64_t r = 0; r < N; r++) {
    scales[size_t(r)] = d[size_t(r * per_row)];
    for (int64_t b = 0; b < per_row; b++)
      QAT_CHECK(d[size_t(r * per_row + b)] == scales[size_t(r)], f.path, ": tensor '", name, "' is marked ", q.name(),
                " but row ", r, " has more than one scale");
  }
  return scales;
}

// The inverse of add_weight: codes + scales (or f32) from a GGUF tensor, expected shape (N, K). Its
// scheme: kSchemes' row for the tensor type and its qat.tensor_formats entry `hint`.
ServedWeight read_weight(const GgufFile& f, const std::string& gguf_name, const std::string& hf_name, int64_t N,
                         int64_t K, const std::string& hint, GgufLoad load) {
  const GgufTensorInfo& t = f.tensor(gguf_name);
  if (t.shape() != Shape{N, K})
    fail(f.path, ": tensor '", gguf_name, "' has shape ", shape_str(t.shape()), ", the config expects ", shape_str(Shape{N, K}));
  // F16 and BF16 (imported models) are served and trained as f32.
  const bool half = t.type == GgmlType::F16 || t.type == GgmlType::BF16;
  const SchemeInfo* scheme = scheme_read_from_gguf(half ? GgmlType::F32 : t.type, half ? "" : hint);
  if (!scheme)
    fail(f.path, ": tensor '", gguf_name, "' is ", ggml_type_info(uint32_t(t.type))->name, "; qat serves ",
         gguf_weight_types(), " weights");
  ServedWeight s;
  s.name = hf_name;
  s.N = N;
  s.K = K;
  s.q = {scheme->w, scheme->a};
  const int64_t n = N * K;
  if (!s.q.quantized()) {
    s.f32 = Tensor::empty({N, K});
    to_f32(t, s.f32.f32(), n);
    require_finite(f, gguf_name, s.f32.f32(), n, "weight");
    return s;
  }
  if (const BlockRule* rule = s.q.format().post_training) {  // K-quants: checked by decoding them
    std::vector<float> values(static_cast<size_t>(n));
    rule->dequantize(t.data, n, values.data());
    require_finite(f, gguf_name, values.data(), n, "weight");
    if (load == GgufLoad::lazy && f.bytes) {
      s.file = f.bytes;
      s.blocks = t.data;
      s.release_blocks();
    } else {
      s.owned_blocks.assign(t.data, t.data + s.storage_bytes());
    }
    return s;
  }
  std::vector<float> d;
  decode_blocks(f, gguf_name, t, s.q, n, &s.codes, &d);
  s.scales = s.q.format().group > 0 ? std::move(d) : row_scales(f, gguf_name, s.q, d, N);
  if (load == GgufLoad::lazy && f.bytes) {  // checked: keep only the view, give the pages back
    std::vector<int8_t>().swap(s.codes);  // frees them (`= {}` would keep the capacity)
    std::vector<float>().swap(s.scales);
    s.file = f.bytes;
    s.blocks = t.data;
    s.release_blocks();
  }
  return s;
}

// What the weights take once read (f32 weights 4 bytes a value; block weights, eagerly, their codes
// and scales), against the memory this process may still take: a file larger than memory is refused
// with both sizes, before anything is allocated.
void check_fits_memory(const GgufFile& f, GgufLoad load) {
  double bytes = 0;
  for (const GgufTensorInfo& t : f.tensors) {
    const bool blocks = t.type == GgmlType::Q4_0 || t.type == GgmlType::Q8_0;
    bytes += blocks ? (load == GgufLoad::eager ? 1.125 * double(t.numel()) : 0.0) : 4.0 * double(t.numel());
  }
  std::string source;
  const double avail = available_memory_bytes(&source);
  QAT_CHECK(avail <= 0 || bytes <= avail, f.path, ": the model's weights take ", human_bytes(bytes), " once read (",
            human_bytes(double(f.bytes ? f.bytes->size() : 0)), " file); ", human_bytes(avail), " are available (", source,
            ")");
}

// A file not written by us has no qat.scheme: its weights' format ("q4_0"), or "mixed".
std::string weights_scheme(const GgufFile& f) {
  std::string scheme;
  for (const GgufTensorInfo& t : f.tensors) {
    if (t.ne.size() != 2) continue;  // norms
    const bool half = t.type == GgmlType::F16 || t.type == GgmlType::BF16;
    const SchemeInfo* s = scheme_read_from_gguf(half ? GgmlType::F32 : t.type, "");
    const std::string name = s ? s->name : ggml_type_info(uint32_t(t.type))->name;
    if (!scheme.empty() && scheme != name) return "mixed";
    scheme = name;
  }
  return scheme.empty() ? "f32" : scheme;
}

// qat.scheme when the file is still as we wrote it (general.file_type that scheme's), else the weights'
// format: llama-quantize copies qat.* into the files it rewrites. Mixed formats are named by the mixture
// general.file_type announces when it is one (llama-quantize's Q4_K_M: "q4_k_m").
std::string written_scheme(const GgufFile& f) {
  const SchemeInfo* s = f.has("qat.scheme") ? find_scheme(f.get_string("qat.scheme")) : nullptr;
  if (s && f.has("general.file_type") && f.get_u32("general.file_type") == s->llama_ftype) return s->name;
  const std::string w = weights_scheme(f);
  if (w == "mixed" && f.has("general.file_type"))
    for (const SchemeInfo& m : kSchemes)
      if (m.mixture && m.llama_ftype == f.get_u32("general.file_type")) return m.name;
  return w;
}

Tensor read_norm(const GgufFile& f, const std::string& name, int64_t C) {
  const GgufTensorInfo& t = f.tensor(name);
  const bool plain = t.type == GgmlType::F32 || t.type == GgmlType::F16 || t.type == GgmlType::BF16;
  QAT_CHECK(plain && t.shape() == Shape{C}, f.path, ": tensor '", name, "' must be F32, F16 or BF16 (", C, ")");
  Tensor out = Tensor::empty({C});
  to_f32(t, out.f32(), C);
  require_finite(f, name, out.f32(), C, "value");
  return out;
}
}  // namespace

void write_gguf_model(const std::string& path, const QuantizedModel& m, const Vocab& tok) {
  const ModelConfig& c = m.cfg;
  QAT_CHECK(tok.vocab_size() == c.vocab, "--to-gguf: tokenizer has ", tok.vocab_size(), " tokens, the model ", c.vocab);
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "qat-" + (c.preset.empty() ? std::string("model") : c.preset) + "-" + m.scheme);
  w.set_u32("general.file_type", file_type(m.scheme));
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.alignment", kGgufDefaultAlignment);
  w.set_u32("llama.context_length", uint32_t(c.context));
  w.set_u32("llama.embedding_length", uint32_t(c.d_model));
  w.set_u32("llama.block_count", uint32_t(c.n_layers));
  w.set_u32("llama.feed_forward_length", uint32_t(c.ffn));
  w.set_u32("llama.attention.head_count", uint32_t(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", uint32_t(c.n_kv_heads));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_f32("llama.rope.freq_base", c.rope_base);
  w.set_u32("llama.rope.dimension_count", uint32_t(c.head_dim()));
  w.set_u32("llama.vocab_size", uint32_t(c.vocab));
  tok.write_gguf(w);  // ours, or the imported model's keys as read (data/vocab.h)
  // qat.*: ignored by llama.cpp. Which rule quantizes activations, and each tensor's format.
  w.set_string("qat.scheme", m.scheme);
  w.set_string("qat.activations", m.activations);
  w.set_bool("qat.rope_adjacent_pairs", true);
  std::vector<std::string> names, formats;

  auto weight = [&](const std::string& gname, const ServedWeight& s) {
    add_weight(w, gname, s);
    names.push_back(gname);
    formats.push_back(s.q.name());
  };
  weight("token_embd.weight", m.embed);
  for (int64_t l = 0; l < c.n_layers; l++) {
    std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", m.attn_norm[size_t(l)]);
    auto proj = [&](Proj j) { weight(p + proj_info(j).gguf + ".weight", m.layers[size_t(l)][size_t(j)]); };
    for (Proj j : {Proj::q, Proj::k, Proj::v, Proj::o}) proj(j);  // llama.cpp's tensor order
    w.add_tensor(p + "ffn_norm.weight", m.mlp_norm[size_t(l)]);
    for (Proj j : {Proj::gate, Proj::up, Proj::down}) proj(j);
  }
  w.add_tensor("output_norm.weight", m.final_norm);
  if (!c.tied) weight("output.weight", m.lm_head);
  w.set_arr_string("qat.tensor_names", names);
  w.set_arr_string("qat.tensor_formats", formats);
  w.write(path);
}

GgufModel read_gguf_model(const std::string& path, GgufLoad load) {
  GgufFile f = read_gguf(path);
  auto need = [&](bool ok, const std::string& what) { QAT_CHECK(ok, path, ": ", what); };
  need(f.get_string("general.architecture") == "llama", "general.architecture must be \"llama\"");
  ModelConfig c;
  c.context = f.get_u32("llama.context_length");
  c.d_model = f.get_u32("llama.embedding_length");
  c.n_layers = f.get_u32("llama.block_count");
  c.ffn = f.get_u32("llama.feed_forward_length");
  c.n_heads = f.get_u32("llama.attention.head_count");
  c.n_kv_heads = f.has("llama.attention.head_count_kv") ? f.get_u32("llama.attention.head_count_kv") : c.n_heads;
  c.rms_eps = f.get_f32("llama.attention.layer_norm_rms_epsilon");
  c.rope_base = f.has("llama.rope.freq_base") ? f.get_f32("llama.rope.freq_base") : 10000.0f;
  c.vocab = int64_t(f.get_arr_string("tokenizer.ggml.tokens").size());
  c.tied = f.find_tensor("output.weight") == nullptr;
  try {
    c.validate();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  if (f.has("llama.rope.dimension_count"))
    need(f.get_u32("llama.rope.dimension_count") == c.head_dim(), "llama.rope.dimension_count must equal the head dim");

  // Per-tensor formats from qat.* (absent in files we did not write: then Q8_0 means q8_0 blocks).
  std::vector<std::string> names, formats;
  if (f.has("qat.tensor_names")) {
    names = f.get_arr_string("qat.tensor_names");
    formats = f.get_arr_string("qat.tensor_formats");
    need(names.size() == formats.size(), "qat.tensor_names and qat.tensor_formats differ in length");
  }
  auto hint = [&](const std::string& gname) {
    for (size_t i = 0; i < names.size(); i++)
      if (names[i] == gname) return formats[i];
    return std::string();
  };

  // The tensor count first: a file with an extra tensor is refused before any weight is decoded.
  const size_t expected_tensors = 2 + (c.tied ? 0 : 1) + 9 * size_t(c.n_layers);
  need(f.tensors.size() == expected_tensors, str("holds ", f.tensors.size(), " tensors; a ", c.n_layers,
                                                 "-layer llama model has ", expected_tensors));

  // The tokenizer (ours or the model's, data/vocab.h decides) and the memory the weights take, both
  // checked before any weight is decoded.
  GgufModel out;
  out.tokenizer = vocab_from_gguf(f);
  QuantizedModel& m = out.model;
  m.cfg = c;
  m.scheme = written_scheme(f);
  m.activations = f.has("qat.activations") ? f.get_string("qat.activations") : "q8_0";
  out.file_bytes = int64_t(f.bytes ? f.bytes->size() : 0);
  if (load == GgufLoad::header) return out;
  check_fits_memory(f, load);
  const int64_t C = c.d_model;
  m.embed = read_weight(f, "token_embd.weight", "model.embed_tokens.weight", c.vocab, C, hint("token_embd.weight"), load);
  for (int64_t l = 0; l < c.n_layers; l++) {
    std::string p = "blk." + std::to_string(l) + ".", hp = "model.layers." + std::to_string(l) + ".";
    m.attn_norm.push_back(read_norm(f, p + "attn_norm.weight", C));
    m.mlp_norm.push_back(read_norm(f, p + "ffn_norm.weight", C));
    std::vector<ServedWeight> ws;
    for (Proj j : kBlockProj) {
      const std::string g = p + proj_info(j).gguf + ".weight";
      ws.push_back(read_weight(f, g, hp + proj_info(j).hf + ".weight", c.proj_rows(j), c.proj_cols(j), hint(g), load));
    }
    m.layers.push_back(std::move(ws));
  }
  m.final_norm = read_norm(f, "output_norm.weight", C);
  if (!c.tied) m.lm_head = read_weight(f, "output.weight", "lm_head.weight", c.vocab, C, hint("output.weight"), load);
  return out;
}

}  // namespace qat
