// The K-quants (llama.cpp's Q4_K and Q6_K): llama.cpp's own blocks and dequantized values reproduced
// byte for byte (tests/fixtures/kq_golden.bin, written by tools/golden/make-golden.sh from
// quantize_row_q4_K_ref / quantize_row_q6_K_ref / dequantize_row_q*_K of llama.cpp c392e50), the MSE
// variant of the search, the refusals; then a model: PTQ into q4_k / q6_k / the Q4_K_M mixture, its GGUF
// round trip, and the command line (bin/quantize, bin/eval on the file against eval --ptq).
//
// Fixture layout (little-endian): u32 magic 0x5147514b, version 1, NB, K (256), sizeof q4_K (144),
// sizeof q6_K (210); NB*K f32 inputs; NB q4_K blocks; NB q6_K blocks; NB*K f32 dequantized q4_K;
// NB*K f32 dequantized q6_K. Blocks 0-8 are edge cases (zeros, all equal of each sign, ties of |max|,
// below ggml's GROUP_MAX_EPS, near f16's top, positive with a zero sub-block, one outlier, f16-subnormal
// scales), 9-15 pseudo-random (uniform, and near-normal with outliers).
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <unistd.h>

#include "data/tokenizer.h"
#include "kernels/ref/quant.h"
#include "models/decode.h"
#include "models/gguf_model.h"
#include "models/quantized.h"
#include "src/io/file.h"
#include "src/util/error.h"
#include "tests/golden_blocks.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

struct KGolden {
  std::vector<float> x, y4, y6;  // inputs, llama.cpp's dequantized q4_K and q6_K (NB * 256 each)
  std::vector<BlockQ4_K> q4;     // (NB)
  std::vector<BlockQ6_K> q6;     // (NB)
};

KGolden load_k_golden() {
  std::ifstream in;
  const size_t nb = open_golden(in, "kq_golden.bin", 0x5147514bu, sizeof(BlockQ4_K), sizeof(BlockQ6_K));
  KGolden g;
  read_into(in, g.x, nb * QKK);
  read_into(in, g.q4, nb);
  read_into(in, g.q6, nb);
  read_into(in, g.y4, nb * QKK);
  read_into(in, g.y6, nb * QKK);
  require_golden_end(in);
  return g;
}

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); i++) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return e;
}

}  // namespace

TEST_CASE("q4_k and q6_k reproduce llama.cpp's blocks and dequantized values byte for byte", "[quant][kquant]") {
  KGolden g = load_k_golden();
  const int64_t n = int64_t(g.x.size());
  std::vector<BlockQ4_K> q4(g.q4.size());
  std::vector<BlockQ6_K> q6(g.q6.size());
  quantize_q4_k(g.x.data(), n, q4.data(), KRule::ggml);
  quantize_q6_k(g.x.data(), n, q6.data(), KRule::ggml);
  CHECK(count_different(q4, g.q4, 1) == 0);
  CHECK(count_different(q6, g.q6, 1) == 0);
  // Dequantizing llama.cpp's blocks gives llama.cpp's floats, bit for bit.
  std::vector<float> y4(g.x.size()), y6(g.x.size());
  dequantize_q4_k(g.q4.data(), n, y4.data());
  dequantize_q6_k(g.q6.data(), n, y6.data());
  CHECK(count_different(y4, g.y4, QKK) == 0);
  CHECK(count_different(y6, g.y6, QKK) == 0);
}

TEST_CASE("q4_k and q6_k: the unweighted (mse) search has the smaller squared error, and refusals", "[quant][kquant]") {
  KGolden g = load_k_golden();
  // The random blocks (9-15): the ggml rule minimises a weighted error, the mse rule the plain one.
  std::vector<float> x(g.x.begin() + 9 * QKK, g.x.end());
  const int64_t n = int64_t(x.size());
  std::vector<BlockQ4_K> q4(size_t(n / QKK));
  std::vector<BlockQ6_K> q6(size_t(n / QKK));
  std::vector<float> y(x.size());
  double e[2][2];  // [q4_k, q6_k][ggml, mse]
  for (KRule r : {KRule::ggml, KRule::mse}) {
    quantize_q4_k(x.data(), n, q4.data(), r);
    dequantize_q4_k(q4.data(), n, y.data());
    e[0][int(r)] = squared_error(x, y);
    quantize_q6_k(x.data(), n, q6.data(), r);
    dequantize_q6_k(q6.data(), n, y.data());
    e[1][int(r)] = squared_error(x, y);
  }
  INFO("q4_k ggml " << e[0][0] << " mse " << e[0][1] << "; q6_k ggml " << e[1][0] << " mse " << e[1][1]);
  CHECK(e[0][1] < e[0][0]);
  CHECK(e[1][1] < e[1][0]);
  CHECK(e[0][0] > 0);  // not a lossless accident

  std::vector<float> bad(QKK, 1.0f);
  bad[7] = NAN;
  CHECK_THROWS_WITH(quantize_q4_k(bad.data(), QKK, q4.data(), KRule::ggml), Catch::Contains("element 7 is not finite"));
  bad[7] = INFINITY;
  CHECK_THROWS_WITH(quantize_q6_k(bad.data(), QKK, q6.data(), KRule::ggml), Catch::Contains("element 7 is not finite"));
  CHECK_THROWS_WITH(quantize_q4_k(x.data(), 100, q4.data(), KRule::ggml),
                    Catch::Contains("100 elements are not a whole number of blocks of 256"));
  CHECK_THROWS_WITH(dequantize_q6_k(q6.data(), 300, y.data()), Catch::Contains("not a whole number of blocks"));
}

namespace {
// An FP32 model whose every K is a whole number of super-blocks (d_model = ffn = 256), 8 layers so that
// the Q4_K_M rule picks some of them (n / 8 = 1: layers 0, 3, 6 and 7).
Transformer kquant_model(bool tied) {
  ModelConfig c = tiny_ternary_config();
  c.n_layers = 8;
  c.vocab = 300;
  c.tied = tied;
  Transformer t(c, nullptr);
  t.init_weights(21);
  return t;
}

std::vector<uint8_t> q4_k_blocks(const Tensor& w) {
  std::vector<uint8_t> b(size_t(w.numel() / QKK * int64_t(sizeof(BlockQ4_K))));
  quantize_q4_k(w.f32(), w.numel(), reinterpret_cast<BlockQ4_K*>(b.data()), KRule::ggml);
  return b;
}
std::vector<uint8_t> q6_k_blocks(const Tensor& w) {
  std::vector<uint8_t> b(size_t(w.numel() / QKK * int64_t(sizeof(BlockQ6_K))));
  quantize_q6_k(w.f32(), w.numel(), reinterpret_cast<BlockQ6_K*>(b.data()), KRule::ggml);
  return b;
}
}  // namespace

TEST_CASE("PTQ q4_k_m: llama.cpp's mixture and blocks, a GGUF round trip, served as the dequantized weights",
          "[kquant][gguf_model]") {
  std::vector<std::string> docs;
  for (int i = 0; i < 100; i++) docs.push_back("a quick brown fox " + std::to_string(i) + " jumps.");
  Tokenizer tok = Tokenizer::train(docs, 300);
  const std::string path = "/tmp/qat-test-kquant-" + std::to_string(::getpid()) + ".gguf";
  for (bool tied : {true, false}) {
    INFO("tied " << tied);
    Transformer t = kquant_model(tied);
    QatConfig q = QatConfig::make("q4_k_m", "", t.cfg.n_layers, tied);
    // The mixture: Q6_K for the output (and a tied embedding), attn_v / ffn_down in layers 0, 3, 6, 7.
    CHECK(q.lm_head.name() == "q6_k");
    CHECK(q.embed.name() == (tied ? "q6_k" : "q4_k"));
    for (int l = 0; l < 8; l++) {
      const bool more = l == 0 || l == 3 || l == 6 || l == 7;
      INFO("layer " << l);
      for (Proj p : kBlockProj)
        CHECK(q.linear(l, p).name() == (more && (p == Proj::v || p == Proj::down) ? "q6_k" : "q4_k"));
    }
    QuantizedModel qm = quantized_from_ptq(t, q, "minmax");
    qm.scheme = "q4_k_m";
    // Each weight's blocks are the reference quantizer's over the whole tensor (rows are whole blocks).
    CHECK(qm.layers[3][size_t(Proj::v)].owned_blocks == q6_k_blocks(t.params[t.layers[3].weight(Proj::v)]));
    CHECK(qm.layers[4][size_t(Proj::v)].owned_blocks == q4_k_blocks(t.params[t.layers[4].weight(Proj::v)]));
    CHECK(qm.embed.owned_blocks == (tied ? q6_k_blocks(t.params[t.tok_embd]) : q4_k_blocks(t.params[t.tok_embd])));
    CHECK(qm.layers[1][size_t(Proj::q)].codes.empty());
    write_gguf_model(path, qm, tok);
    GgufFile f = read_gguf(path);
    CHECK(f.get_u32("general.file_type") == 15u);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
    CHECK(uint32_t(f.tensor("blk.3.attn_v.weight").type) == 14u);  // GGML_TYPE_Q6_K
    CHECK(uint32_t(f.tensor("blk.4.attn_v.weight").type) == 12u);  // GGML_TYPE_Q4_K
    CHECK(f.tensor("blk.4.attn_v.weight").nbytes == uint64_t(t.cfg.n_kv_heads * t.cfg.head_dim() * 256 / 256 * 144));
    // As llama-quantize writes it (no qat.* key): named by the mixture general.file_type announces, and
    // "mixed" when that type is no mixture (LLAMA_FTYPE_MOSTLY_Q4_0 over Q4_K / Q6_K tensors).
    for (uint32_t ftype : {15u, 2u}) {
      GgufWriter w;
      for (const GgufKv& kv : f.kv)
        if (kv.key.rfind("qat.", 0) != 0 && kv.key != "general.file_type") w.set_value(kv.key, kv.value);
      w.set_u32("general.file_type", ftype);
      for (const GgufTensorInfo& ti : f.tensors)
        w.add_tensor(ti.name, ti.type, ti.ne, std::string(reinterpret_cast<const char*>(ti.data), ti.nbytes));
      w.write(path + ".foreign");
      CHECK(read_gguf_model(path + ".foreign").model.scheme == (ftype == 15u ? "q4_k_m" : "mixed"));
    }
    remove_tree(path + ".foreign");
    // header: what bin/quantize opens a GGUF with (it reads the f32 weights itself): no weight read.
    GgufModel h = read_gguf_model(path, GgufLoad::header);
    CHECK(h.model.scheme == "q4_k_m");
    CHECK(h.model.cfg.n_layers == 8);
    CHECK(h.tokenizer->vocab_size() == tok.vocab_size());
    CHECK((h.model.layers.empty() && h.model.embed.N == 0 && !h.model.final_norm.defined()));
    std::string reexport;
    for (GgufLoad load : {GgufLoad::eager, GgufLoad::lazy}) {
      GgufModel g = read_gguf_model(path, load);
      CHECK(g.model.scheme == "q4_k_m");
      const ServedWeight& w = g.model.layers[6][size_t(Proj::down)];
      CHECK(w.q.name() == "q6_k");
      CHECK(w.lazy() == (load == GgufLoad::lazy));
      CHECK(test::same_bits(w.dequantized(), qm.layers[6][size_t(Proj::down)].dequantized()));
      // Served: the same logits as the model PTQ made, and as the f32 model given the dequantized weights.
      std::vector<int32_t> ids = tok.encode("a quick brown fox jumps");
      DecodeModel a = decode_model(qm), b = decode_model(g.model);
      // A tied K-quant embedding's dequantized values are one tensor, the lm_head's weight too.
      const Tensor& rows = b.tok_embd.f32;
      CHECK((rows.impl.use_count() > 1 || rows.impl->storage.use_count() > 1) == tied);
      Transformer deq = kquant_model(tied);
      auto put = [&](int index, const ServedWeight& s) { deq.params[index].copy_from(s.dequantized()); };
      put(deq.tok_embd, qm.embed);
      if (!tied) put(deq.lm_head, qm.lm_head);
      for (int l = 0; l < 8; l++)
        for (Proj p : kBlockProj) put(deq.layers[size_t(l)].weight(p), qm.layers[size_t(l)][size_t(p)]);
      DecodeModel c = decode_model(quantized_from_f32(deq));
      DecodeSession sa(a, 32), sb(b, 32), sc(c, 32);
      Tensor la = sa.forward(ids.data(), int64_t(ids.size()), true);
      CHECK(test::same_bits(la, sb.forward(ids.data(), int64_t(ids.size()), true)));
      CHECK(test::same_bits(la, sc.forward(ids.data(), int64_t(ids.size()), true)));
      // Re-exported from the blocks read (eager) and from the file's pages (lazy): one file.
      write_gguf_model(path + ".again", g.model, tok);
      if (load == GgufLoad::eager) reexport = read_file(path + ".again");
      CHECK(read_file(path + ".again") == reexport);
      CHECK(GgufFile(read_gguf(path + ".again")).tensor("blk.6.ffn_down.weight").type == GgmlType::Q6_K);
    }
  }
  remove_tree(path);
  remove_tree(path + ".again");
  // K must be whole super-blocks; QAT does not train a post-training format.
  ModelConfig c = tiny_gqa_config();
  Transformer small(c, nullptr);
  small.init_weights(3);
  CHECK_THROWS_WITH(quantized_from_ptq(small, QatConfig::make("q6_k", "", c.n_layers, c.tied), "minmax"),
                    Catch::Contains("has K = 64, not a multiple of 256"));
  // A non-finite weight is refused in one line naming it (before the parallel quantization, not inside it).
  Transformer wide = kquant_model(true);
  wide.params[wide.layers[2].weight(Proj::up)].f32()[77] = NAN;
  CHECK_THROWS_WITH(quantized_from_ptq(wide, QatConfig::make("q4_k", "", 8, true), "minmax"),
                    Catch::Contains("PTQ q4_k: model.layers.2.mlp.up_proj.weight holds a non-finite value") &&
                        Catch::Contains("at index 77"));
  CHECK_THROWS_WITH(QatConfig::make("q4_0", "layers.1.v=q4_k", c.n_layers, c.tied).require_trainable("--qat"),
                    Catch::Contains("--qat q4_0: layers.1.v is q4_k, a post-training format"));
}

TEST_CASE("bin/quantize --scheme q4_k_m writes what bin/eval --ptq q4_k_m evaluates; --qat q4_k is refused", "[kquant][cli]") {
  ScratchDir dir("kquant-cli");
  const std::string corpus = dir.put("corpus.txt", synthetic_corpus(120)), ckpt = dir.path + "/ckpt",
                    cache = dir.path + "/cache";
  ProcResult r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--dim", "256", "--ffn", "256", "--layers", "2",
                           "--vocab", "280", "--ctx", "16", "--batch", "2", "--steps", "2", "--threads", "1", "--out", ckpt,
                           "--cache-dir", cache, "--quiet", "--no-plot"},
                          dir.path + "/train");
  REQUIRE(r.code == 0);
  for (const char* method : {"minmax", "mse"}) {
    INFO("--ptq " << method);
    const std::string gguf = dir.path + "/model-" + method + ".gguf";
    r = run_proc({"bin/quantize", "--model", ckpt, "--scheme", "q4_k_m", "--ptq", method, "--to-gguf", gguf, "--threads", "2"},
                 dir.path + "/quantize");
    INFO(r.what());
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("q6_k") && Catch::Contains("q4_k") && Catch::Contains("PTQ (" + std::string(method) + ")"));
    ProcResult a = run_proc({"bin/eval", "--model", gguf, "--data", corpus, "--cache-dir", cache, "--threads", "1", "--json"},
                            dir.path + "/eval-gguf");
    ProcResult b = run_proc({"bin/eval", "--model", ckpt, "--ptq", std::string("q4_k_m:") + method, "--data", corpus,
                             "--cache-dir", cache, "--threads", "1", "--json"},
                            dir.path + "/eval-ptq");
    INFO(a.what() << b.what());
    REQUIRE((a.code == 0 && b.code == 0));
    auto loss = [](const std::string& out) { return Json::parse(lines_of(out).back()).at("val_loss").as_double(); };
    CHECK(loss(a.out) == loss(b.out));  // the file holds exactly the weights eval's PTQ made
    // tools/gguf-tensors.py (the oracle's tensor lister) reads the file: types as written, one line each.
    ProcResult l = run_proc({"tools/gguf-tensors.py", gguf}, dir.path + "/tensors");
    REQUIRE(l.code == 0);
    const std::vector<std::string> rows = lines_of(l.out);
    CHECK(rows.size() == 2 + 2 * 9);  // embedding (tied: no output.weight), final norm; per layer 2 norms + 7 weights
    int checked = 0;
    for (const std::string& row : rows)  // Q4_K_M with 2 layers: layer 1 is a "more bits" layer, layer 0 not
      if (row.rfind("blk.1.attn_v.weight ", 0) == 0 || row.rfind("blk.0.attn_v.weight ", 0) == 0) {
        INFO(row);
        CHECK(std::regex_match(row, std::regex(row[4] == '1' ? "\\S+ +Q6_K +256x128 +[0-9a-f]{16}" : "\\S+ +Q4_K +256x128 +[0-9a-f]{16}")));
        checked++;
      }
    CHECK(checked == 2);
  }
  ProcResult bad = run_proc({"tools/gguf-tensors.py", corpus}, dir.path + "/tensors-bad");
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("not a GGUF file"));
  r = run_proc({"bin/train", "--data", corpus, "--preset", "tiny", "--dim", "256", "--ffn", "256", "--vocab", "280",
                "--ctx", "16", "--steps", "1", "--qat", "q4_k", "--out", dir.path + "/qat", "--cache-dir", cache, "--quiet"},
               dir.path + "/train-qat");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--qat q4_k: embed is q4_k, a post-training format"));
}
