// bin/landscape: the basin picture of docs/QAT.md §4, measured. Three points in weight space: the FP32
// model QAT started from (F), its post-training quantization (P: the weights PTQ serves) and the QAT
// model (Q: the weights it serves, its norms). Two drawings:
//  * the plane through F, P and Q: a grid of validation losses of the f32 forward at F + a e1 + b e2
//    (e1 along P - F, e2 the part of Q - F orthogonal to it), on one fixed set of windows, as a heat map
//    with contours and the three points marked;
//  * per quantized tensor, the loss along the line F + t (P - F) with only that tensor moved (t = 1 is its
//    PTQ value): how far its rounding step reaches across the basin's width in that direction.
// Every evaluation uses the same windows, so the pictures compare points, not batches.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "data/corpus.h"
#include "data/dataset.h"
#include "models/model_source.h"
#include "models/quantized.h"
#include "models/train/evaluate.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "src/util/gnuplot.h"

using namespace qat;

namespace {

struct Args {
  std::string fp32, qat, ptq = "minmax", data, documents, cache_dir = "runs/cache", out = "runs/landscape";
  int64_t grid = 21, windows = 16, line_points = 9, threads = 0;
  double margin = 0.3, rise = 0.01;
  bool data_given = false, documents_given = false;
};

bool parse_args(int argc, char** argv, Args* a) {
  ArgParser p("landscape",
              "The loss landscape around an FP32 model F, its PTQ P and its QAT model Q (QAT fine-tuned from F):\n"
              "  OUT-plane.png   the plane through F, P and Q: validation loss on a grid, contours, the points\n"
              "  OUT-layers.png  per quantized tensor, the loss with only that tensor moved from F (t = 0) to P (t = 1)\n"
              "and their numbers (OUT-plane.tsv, OUT-layers.tsv). Losses are the f32 forward's on fixed windows.");
  p.option("--fp32", &a->fp32, "the FP32 checkpoint the QAT run started from (its --init)", "DIR");
  p.option("--qat", &a->qat, "the QAT checkpoint; P is the PTQ of F into its scheme and layer formats", "DIR");
  p.option("--ptq", &a->ptq, "the PTQ rule: minmax (ggml's) or mse", "M");
  p.option("--data", &a->data, "corpus of the validation windows (default: the one F was trained on)", "PATH");
  p.option("--documents", &a->documents, "how the corpus becomes documents, as train --documents", "MODE");
  p.option("--windows", &a->windows, "validation windows per evaluation", 1, 1 << 20);
  p.option("--grid", &a->grid, "grid points per side of the plane", 3, 201);
  p.option("--margin", &a->margin, "the plane's extent beyond the three points, as a fraction of their spread", 0.0, 10.0);
  p.option("--line-points", &a->line_points, "points per tensor on the line t in [0, 2] (0 skips the tensors)", 0, 201);
  p.option("--rise", &a->rise, "the basin's edge: the loss increase (nats/token; 0.01 = +1% perplexity) that ends it along a "
           "tensor's line", 1e-6, 100.0);
  p.option("--out", &a->out, "prefix of the output files", "PREFIX");
  p.option("--threads", &a->threads, "threads (0: all cores)", 0, 4096);
  p.option("--cache-dir", &a->cache_dir, "where tokenized data is cached", "DIR");
  if (!p.parse(argc, argv)) return false;
  a->data_given = p.given("--data");
  a->documents_given = p.given("--documents");
  if (a->fp32.empty()) throw UsageError("--fp32: missing (the FP32 checkpoint QAT started from)");
  if (a->qat.empty()) throw UsageError("--qat: missing (the QAT checkpoint)");
  if (a->ptq != "minmax" && a->ptq != "mse") throw UsageError("--ptq: expected minmax or mse, got '" + a->ptq + "'");
  if (a->line_points == 1) throw UsageError("--line-points: 0 (none) or at least 2");
  return true;
}

// A point in weight space: the FP32 model's flat parameter buffer (ParamStore: every tensor, padding
// included, which stays 0 in every point and direction).
using Point = std::vector<float>;

Point flat_of(Transformer& t) {
  const float* p = t.params.flat().f32();
  return Point(p, p + t.params.total());
}

// `base` with every weight of `m` replaced by the values it serves (dequantized codes, or f32).
Point served_point(const Transformer& f, const Point& base, const QuantizedModel& m) {
  Point out = base;
  auto put = [&](const ServedWeight& w) {
    const int i = f.params.index_of(w.name);
    QAT_CHECK(i >= 0, "landscape: the model has no tensor ", w.name);
    Tensor d = w.dequantized();
    std::copy(d.f32(), d.f32() + d.numel(), out.begin() + f.params.info(i).offset);
  };
  put(m.embed);
  for (const auto& l : m.layers)
    for (const ServedWeight& w : l) put(w);
  if (!m.cfg.tied) put(m.lm_head);
  return out;
}

double dot(const Point& a, const Point& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * double(b[i]);
  return s;
}

// The f32 forward's validation loss of `model` with its parameters set to `p`.
struct Evaluator {
  Transformer* model;
  const std::vector<int32_t>* tokens;
  const std::vector<int32_t>* token_bytes;
  int64_t ctx, windows;
  int64_t count = 0;
  double loss(const Point& p) {
    std::copy(p.begin(), p.end(), model->params.flat().f32());
    count++;
    return evaluate(*model, *tokens, *token_bytes, 8, ctx, windows).loss;
  }
};

// ARG1 grid (x y loss, a blank line between rows), ARG2 points (x y name), ARG3 png, ARG4 a scratch file
// for the contour lines, ARG5 title, ARG6 / ARG7 / ARG8 the colour range's low end, contour step, high end.
const char* kPlaneScript = R"gp(set terminal pngcairo size 960,800 noenhanced font ",11"
set view map
set contour base
unset surface
set cntrparam levels incremental real(ARG6), real(ARG7), real(ARG8)
set table ARG4
splot ARG1 using 1:2:3 with lines notitle
unset table
unset contour
set output ARG3
set title ARG5
set xlabel "along P - F (L2 distance in weight space)"
set ylabel "towards Q, orthogonal to P - F (L2)"
set cblabel "validation loss, f32 forward (nats/token)"
set cbrange [real(ARG6):real(ARG8)]
set palette rgbformulae 33,13,10
set size ratio -1
set autoscale fix
plot ARG1 using 1:2:3 with image notitle, \
     ARG4 using 1:2 with lines lc rgb "#ffffff" lw 0.7 notitle, \
     ARG2 using 1:2 with points pt 7 ps 1.6 lc rgb "black" notitle, \
     ARG2 using 1:2:3 with labels offset char 1.5,0.8 font ",13" tc rgb "black" notitle
)gp";

// ARG1 lines (one block per tensor: t, loss increase, colour index by kind; two blank lines between
// blocks), ARG2 png, ARG3 title, ARG4 the basin's edge (loss increase), ARG5 the number of blocks, ARG6
// 1 to draw the edge (0 when it lies far above every line: it would flatten them).
const char* kLayersScript = R"gp(set terminal pngcairo size 960,640 noenhanced font ",11"
set output ARG2
set title ARG3
set xlabel "t: the tensor alone moved from F (t = 0) to its PTQ value (t = 1) and beyond"
set ylabel "validation loss increase (nats/token)"
set key outside right top
set grid
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lc rgb "gray40"
colours = "#1b9e77 #d95f02 #7570b3 #e7298a #66a61e #e6ab02 #a6761d #377eb8 #666666"
do for [k=1:9] { set linetype k lc rgb word(colours, k) }
kinds = "embed q k v o gate up down lm_head"
edge = int(ARG6) ? real(ARG4) : NaN
plot for [i=0:int(ARG5)-1] ARG1 index i using 1:2:3 with lines lw 1.2 lc variable notitle, \
     edge with lines dt 3 lc rgb "black" title (int(ARG6) ? "basin edge (--rise)" : ""), \
     for [k=1:9] keyentry with lines lw 2 lc k title word(kinds, k)
)gp";

// The colour index of a tensor's kind (kinds in kLayersScript's order).
int kind_index(const std::string& name) {
  const char* kinds[] = {"embed_tokens", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"};
  for (int k = 0; k < 9; k++)
    if (name.find(kinds[k]) != std::string::npos) return k + 1;
  return 9;
}

std::string short_name(const std::string& hf) {  // model.layers.3.self_attn.q_proj.weight -> layers.3.q_proj
  std::string s = hf;
  for (const char* cut : {"model.", "self_attn.", "mlp.", ".weight"}) {
    const size_t at = s.find(cut);
    if (at != std::string::npos) s.erase(at, std::strlen(cut));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("landscape", [&]() {
    Args a;
    if (!parse_args(argc, argv, &a)) return 0;
    set_num_threads(int(a.threads));
    ModelSource fs = open_model(a.fp32), qs = open_model(a.qat);
    QAT_CHECK(!fs.is_gguf() && !fs.qat, "--fp32: ", a.fp32, " is not an FP32 checkpoint");
    QAT_CHECK(!qs.is_gguf() && qs.qat, "--qat: ", a.qat, " is not a QAT checkpoint");
    QAT_CHECK(fs.config().to_json().dump() == qs.config().to_json().dump(), "--qat: ", a.qat,
              " has another shape than --fp32 ", a.fp32);
    std::unique_ptr<Transformer> f = fs.transformer(), q = qs.transformer();
    const ModelConfig& cfg = fs.config();

    // The three points. P: the PTQ of F into Q's layer formats; Q: Q's served weights and its own norms.
    const Point F = flat_of(*f);
    const Point P = served_point(*f, F, quantized_from_ptq(*f, *qs.qat, a.ptq));
    Point Q = F;
    for (int i = 0; i < f->params.size(); i++) {
      const int j = q->params.index_of(f->params.info(i).name);
      QAT_CHECK(j >= 0, "--qat: ", a.qat, " has no tensor ", f->params.info(i).name);
      std::copy((*q).params[j].f32(), (*q).params[j].f32() + f->params.info(i).numel, Q.begin() + f->params.info(i).offset);
    }
    Q = served_point(*f, Q, quantized_from_qat(*q));

    // e1 along P - F; e2 the part of Q - F orthogonal to it. Coordinates: F (0, 0), P (|u|, 0), Q (qx, qy).
    Point e1(F.size()), e2(F.size());
    for (size_t i = 0; i < F.size(); i++) e1[i] = P[i] - F[i], e2[i] = Q[i] - F[i];
    const double un = std::sqrt(dot(e1, e1));
    QAT_CHECK(un > 0, "landscape: the PTQ model equals the FP32 model (nothing is quantized)");
    for (float& v : e1) v = float(v / un);
    const double qx = dot(e2, e1);
    for (size_t i = 0; i < F.size(); i++) e2[i] = float(double(e2[i]) - qx * double(e1[i]));
    const double qy = std::sqrt(dot(e2, e2));
    QAT_CHECK(qy > 0, "landscape: the QAT point lies on the line through F and P: no plane");
    for (float& v : e2) v = float(v / qy);

    // The windows: one fixed set for every evaluation.
    const TrainingText text = training_text(fs, a.data, a.data_given, a.documents, a.documents_given);
    Corpus corpus = load_corpus(text.data, text.mode);
    TokenizedData td = load_or_tokenize(corpus, *fs.tokenizer, a.cache_dir);
    std::vector<int32_t> tokens = td.val.tokens.to_vector(), token_bytes(size_t(cfg.vocab));
    for (int32_t id = 0; id < cfg.vocab; id++) token_bytes[size_t(id)] = int32_t(fs.tokenizer->text_bytes(id));
    Evaluator ev{f.get(), &tokens, &token_bytes, cfg.context, a.windows};
    const double lf = ev.loss(F), lp = ev.loss(P), lq = ev.loss(Q);
    std::printf("landscape: F %s, Q %s (%s), P = PTQ %s of F; %lld windows of %lld tokens from %s\n", a.fp32.c_str(),
                a.qat.c_str(), qs.qat->scheme.c_str(), a.ptq.c_str(), (long long)a.windows, (long long)cfg.context,
                corpus.source.c_str());
    std::printf("loss: F %.6f, P %.6f (%+.6f), Q %.6f (%+.6f)\n", lf, lp, lp - lf, lq, lq - lf);
    std::printf("distances: |P - F| %.4f, |Q - F| %.4f, |Q - P| %.4f; cos(P - F, Q - F) %.4f\n", un,
                std::hypot(qx, qy), std::hypot(qx - un, qy), qx / std::hypot(qx, qy));

    const std::string out = std::filesystem::absolute(a.out).string();
    if (const auto dir = std::filesystem::path(out).parent_path(); !dir.empty()) make_dirs(dir.string());
    auto base = [](const std::string& p) { return std::filesystem::path(p).filename().string(); };
    const std::string title_base = str(qs.qat->scheme, ": F ", base(a.fp32), ", Q ", base(a.qat), ", P = PTQ ", a.ptq, " of F");

    // The plane: a grid over the three points' box, extended by the margin on every side.
    const double x0 = std::min(0.0, qx), x1 = std::max(un, qx), y0 = 0, y1 = qy;
    const double mx = a.margin * (x1 - x0), my = a.margin * (y1 - y0);
    const int64_t G = a.grid;
    std::string grid_tsv = "# x\ty\tloss (f32 forward, nats/token); x along P - F, y towards Q (L2 in weight space)\n";
    double lo = INFINITY;
    Point w(F.size());
    for (int64_t r = 0; r < G; r++) {
      const double y = y0 - my + (y1 - y0 + 2 * my) * double(r) / double(G - 1);
      for (int64_t c = 0; c < G; c++) {
        const double x = x0 - mx + (x1 - x0 + 2 * mx) * double(c) / double(G - 1);
        for (size_t i = 0; i < F.size(); i++) w[i] = float(double(F[i]) + x * double(e1[i]) + y * double(e2[i]));
        const double l = ev.loss(w);
        lo = std::min(lo, l);
        grid_tsv += str(x, "\t", y, "\t", l, "\n");
        std::fprintf(stderr, "\rlandscape: plane %lld / %lld", (long long)(r * G + c + 1), (long long)(G * G));
      }
      grid_tsv += "\n";
    }
    std::fprintf(stderr, "\n");
    write_file_atomic(out + "-plane.tsv", grid_tsv);
    write_file_atomic(out + "-points.tsv", str("0\t0\tF\n", un, "\t0\tP\n", qx, "\t", qy, "\tQ\n"));
    // Colours from the lowest loss seen to a little above the worse of P and Q; 12 contour levels.
    const double hi = std::max(lp, lq) + 0.5 * (std::max(lp, lq) - std::min(lo, lf)) + 1e-6;
    const double step = (hi - lo) / 12;
    const std::string plane_gp = out + "-plane.gp";
    write_file_atomic(plane_gp, std::string("# gnuplot -c ") + "THIS PLANE.tsv POINTS.tsv OUT.png SCRATCH TITLE LO STEP HI\n" + kPlaneScript);
    // Every path given to gnuplot is absolute (run_gnuplot: none may start with '|' or '<').
    const std::string why = run_gnuplot(plane_gp, {out + "-plane.tsv", out + "-points.tsv", out + "-plane.png",
                                         out + "-contours.tmp", title_base, str(lo), str(step), str(hi)});
    std::remove((out + "-contours.tmp").c_str());
    std::printf("plane: %lld x %lld losses, min %.4f: %s\n", (long long)G, (long long)G, lo,
                why.empty() ? (out + "-plane.png").c_str() : why.c_str());

    // Each quantized tensor alone along its PTQ rounding: loss increase at t, and where it reaches --rise.
    if (a.line_points > 0) {
      // The rounding's reach |P - F| against the basin's half-width along it, t* |P - F| (t*: where the
      // loss has risen by --rise; "> 2" when it stays below up to t = 2).
      std::printf("\n%-28s %10s %10s %10s %8s %12s\n", "tensor", "elements", "|P - F|", "dL(t=1)", "edge t*", "basin width");
      std::string lines_tsv = "# t\tloss increase\tkind colour; one block per tensor: F + t (P - F) on that tensor only\n";
      int64_t blocks = 0, outside = 0;
      double top = 0;  // the largest loss increase on any line
      Point x = F;  // F with one tensor moved; restored after each tensor's line
      for (int i = 0; i < f->params.size(); i++) {
        const ParamInfo& pi = f->params.info(i);
        double d2 = 0;
        for (int64_t k = 0; k < pi.numel; k++) d2 += std::pow(double(P[size_t(pi.offset + k)]) - F[size_t(pi.offset + k)], 2);
        if (d2 == 0) continue;  // not quantized (norms)
        double prev_t = 0, prev_dl = 0, edge = NAN, dl1 = NAN;
        lines_tsv += str("# ", short_name(pi.name), "\n");
        for (int64_t s = 0; s < a.line_points; s++) {
          const double t = 2.0 * double(s) / double(a.line_points - 1);
          for (int64_t k = 0; k < pi.numel; k++) {
            const size_t e = size_t(pi.offset + k);
            x[e] = float(double(F[e]) + t * (double(P[e]) - double(F[e])));
          }
          const double dl = s == 0 ? 0.0 : ev.loss(x) - lf;
          if (std::fabs(t - 1.0) < 1e-9) dl1 = dl;
          top = std::max(top, dl);
          if (std::isnan(edge) && dl >= a.rise) edge = prev_t + (t - prev_t) * (a.rise - prev_dl) / (dl - prev_dl);
          prev_t = t;
          prev_dl = dl;
          lines_tsv += str(t, "\t", dl, "\t", kind_index(pi.name), "\n");
        }
        std::copy(F.begin() + pi.offset, F.begin() + pi.offset + pi.numel, x.begin() + pi.offset);
        lines_tsv += "\n\n";
        blocks++;
        if (!std::isnan(edge) && edge < 1) outside++;
        char t_star[32] = "> 2", width[32] = "> 2 |P - F|";
        if (!std::isnan(edge)) {
          std::snprintf(t_star, sizeof t_star, "%.3f", edge);
          std::snprintf(width, sizeof width, "%.4f", edge * std::sqrt(d2));
        }
        std::printf("%-28s %10lld %10.4f %10.4f %8s %12s\n", short_name(pi.name).c_str(), (long long)pi.numel, std::sqrt(d2),
                    dl1, t_star, width);
        std::fprintf(stderr, "\rlandscape: tensor %lld", (long long)blocks);
      }
      std::fprintf(stderr, "\n");
      write_file_atomic(out + "-layers.tsv", lines_tsv);
      const std::string layers_gp = out + "-layers.gp";
      write_file_atomic(layers_gp, std::string("# gnuplot -c THIS LAYERS.tsv OUT.png TITLE RISE BLOCKS DRAW_EDGE\n") + kLayersScript);
      const std::string why2 = run_gnuplot(layers_gp, {out + "-layers.tsv", out + "-layers.png",
                                            str("each tensor alone along its rounding; ", title_base), str(a.rise),
                                            str(blocks), a.rise <= 3 * top ? "1" : "0"});
      std::printf("tensors: %lld of %lld reach the basin's edge (+%.3g nats) before their PTQ value (t* < 1): %s\n",
                  (long long)outside, (long long)blocks, a.rise, why2.empty() ? (out + "-layers.png").c_str() : why2.c_str());
    }
    std::printf("landscape: %lld evaluations\n", (long long)ev.count);
    return 0;
  });
}
