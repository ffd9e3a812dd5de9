// Entry points of qgemm.h: argument checks, the OpenMP split, and the calls into the kernel table.
// The split: output columns in chunks of whole panels, rows in blocks of kRowBlock; every output is
// computed by one kernel call with the whole K, so the bits never depend on the split or thread count.
#include "kernels/qgemm.h"

#include <omp.h>

#include <algorithm>

#include "src/util/error.h"

namespace qat {

namespace {

constexpr int64_t kRowBlock = 64;          // activation rows per work item (64 x K codes stay in L2)
constexpr int64_t kMinParallelMacs = 1 << 20;  // below this (~5 us on one core) a matmul runs on the calling thread

const QGemmKernels& family(const Kernels& t, WFormat f) {
  switch (f) {
    case WFormat::q4_0: return t.q4_0;
    case WFormat::q8_0: return t.q8_0;
    case WFormat::s8_pc: return t.s8_pc;
    case WFormat::tq: return t.tq;
  }
  fail("unknown weight format");
}

void check_shape(const char* what, WFormat f, int64_t N, int64_t K) {
  QAT_CHECK(N >= 0 && K > 0 && K % QK == 0, what, ": ", wformat_name(f), " weights (", N, ", ", K,
            "): K must be a positive multiple of 32");
  QAT_CHECK(f != WFormat::s8_pc || K <= kMaxKS8, what, ": s8_pc weights need K <= ", kMaxKS8, ", got ", K);
  QAT_CHECK(f != WFormat::tq || K % QKK == 0, what, ": tq weights (", N, ", ", K, "): K must be a multiple of ", QKK);
}

// Runs f(0..n-1), over OpenMP threads when `parallel` and there is more than one item and thread. A
// parallel region costs about a microsecond even with one thread: a GEMV of a few microseconds skips it.
template <class F>
void for_each_item(int64_t n, bool parallel, F&& f) {
  if (!parallel || n < 2 || omp_get_max_threads() < 2) {
    for (int64_t i = 0; i < n; i++) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) f(i);
}

// Work items (row block, column chunk) for M rows and `panels` panels: about 4 per thread.
struct Split {
  int64_t row_blocks, col_chunks, panels_per_chunk;
};
Split split_work(int64_t M, int64_t panels, int64_t rows_per_block, bool parallel) {
  Split s;  // panels >= 1
  s.row_blocks = (M + rows_per_block - 1) / rows_per_block;
  const int64_t want = parallel ? 4 * int64_t(omp_get_max_threads()) : 1;
  const int64_t chunks = std::clamp<int64_t>((want + s.row_blocks - 1) / s.row_blocks, 1, panels);
  s.panels_per_chunk = (panels + chunks - 1) / chunks;
  s.col_chunks = (panels + s.panels_per_chunk - 1) / s.panels_per_chunk;
  return s;
}

}  // namespace

const char* wformat_name(WFormat f) {
  switch (f) {
    case WFormat::q4_0: return "q4_0";
    case WFormat::q8_0: return "q8_0";
    case WFormat::s8_pc: return "s8_pc";
    case WFormat::tq: return "tq";
  }
  return "?";
}

// ---- packing ----

void pack_weights(WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K, PackedWeights* out,
                  const Kernels& t) {
  check_shape("pack_weights", f, N, K);
  const QGemmKernels& k = family(t, f);
  const int64_t panels = (N + k.nr - 1) / k.nr, pb = k.panel_bytes(K);
  const int64_t dstride = K / wformat_group(f, K);  // scales per row
  out->format = f;
  out->table = &t;
  out->N = N;
  out->K = K;
  out->data.resize(size_t(panels * pb));
  for_each_item(panels, N * K >= kMinParallelMacs, [&](int64_t p) {
    const int64_t r0 = p * k.nr;
    k.pack(q + r0 * K, d + r0 * dstride, std::min<int64_t>(k.nr, N - r0), K, out->data.data() + p * pb);
  });
}

// ---- activations ----

void quantize_acts(bool per_token, const float* x, int64_t M, int64_t K, QuantActs* out, const Kernels& t) {
  QAT_CHECK(M >= 0 && K > 0 && K % QK == 0, "quantize_acts: K must be a positive multiple of 32, got ", K);
  const int64_t groups = per_token ? 1 : K / QK;  // per row
  out->per_token = per_token;
  out->M = M;
  out->K = K;
  out->q.resize(size_t(M * K));
  out->d.resize(size_t(M * groups));
  out->s.resize(size_t(M * groups));
  auto fn = per_token ? t.quant.per_token : t.quant.q8_0;
  const int64_t rows_per_chunk = std::max<int64_t>(1, 16384 / K);
  const int64_t chunks = (M + rows_per_chunk - 1) / rows_per_chunk;
  for_each_item(chunks, M * K >= 65536, [&](int64_t c) {
    const int64_t m0 = c * rows_per_chunk, rows = std::min(rows_per_chunk, M - m0);
    fn(x + m0 * K, rows, K, out->q.data() + m0 * K, out->d.data() + m0 * groups, out->s.data() + m0 * groups);
  });
}

void quantize_weights_learned(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q,
                              float* s16, const Kernels& t) {
  QAT_CHECK(G > 0 && n >= 0 && n % G == 0, "quantize_weights_learned: ", n, " elements are not a whole number of groups of ", G);
  QAT_CHECK(lo < 0 && hi > 0 && lo >= -128 && hi <= 127, "quantize_weights_learned: bad code range [", lo, ", ", hi, "]");
  const int64_t groups = n / G, per_chunk = std::max<int64_t>(1, 65536 / G), chunks = (groups + per_chunk - 1) / per_chunk;
  for_each_item(chunks, n >= (1 << 17), [&](int64_t c) {
    const int64_t g0 = c * per_chunk, ng = std::min(per_chunk, groups - g0);
    t.quant.learned(x + g0 * G, ng * G, G, s + g0, lo, hi, q + g0 * G, s16 ? s16 + g0 : nullptr);
  });
}

void acts_from_codes(bool per_token, const int8_t* q, const float* d, int64_t M, int64_t K, QuantActs* out) {
  QAT_CHECK(M >= 0 && K > 0 && K % QK == 0, "acts_from_codes: K must be a positive multiple of 32, got ", K);
  const int64_t G = per_token ? K : QK, groups = M * K / G;
  out->per_token = per_token;
  out->M = M;
  out->K = K;
  out->q.assign(q, q + M * K);
  out->d.assign(d, d + groups);
  out->s.assign(size_t(groups), 0);
  for (int64_t i = 0; i < M * K; i++) out->s[size_t(i / G)] += q[i];
}

// ---- products ----

static void check_product(const char* what, const PackedWeights& w, const QuantActs& a) {
  QAT_CHECK(w.table, what, ": the weights were never packed");
  QAT_CHECK(a.K == w.K, what, ": activations have K = ", a.K, " but the weights (", w.N, ", ", w.K, ")");
  QAT_CHECK(a.per_token == uses_per_token(w.format), what, ": ", wformat_name(w.format), " weights need ",
            uses_per_token(w.format) ? "per-token" : "q8_0-block", " activations");
}

void qgemm(const PackedWeights& w, const QuantActs& a, float* y) {
  check_product("qgemm", w, a);
  const QGemmKernels& k = family(*w.table, w.format);
  const int64_t M = a.M, N = w.N, K = w.K, panels = (N + k.nr - 1) / k.nr;
  const int64_t groups = a.per_token ? 1 : K / QK;
  if (M == 0 || N == 0) return;
  const bool parallel = M * N * K >= kMinParallelMacs;
  const Split s = split_work(M, panels, M == 1 ? 1 : kRowBlock, parallel);
  for_each_item(s.row_blocks * s.col_chunks, parallel, [&](int64_t i) {
    const int64_t c = i / s.row_blocks, rb = i % s.row_blocks;  // consecutive items share a column chunk
    const int64_t n0 = c * s.panels_per_chunk * k.nr, n1 = std::min(N, n0 + s.panels_per_chunk * k.nr);
    const int64_t m0 = rb * kRowBlock, rows = std::min(kRowBlock, M - m0);
    if (M == 1)
      k.gemv(w.data.data(), n0, n1, K, a.q.data(), a.d.data(), a.s.data(), y);
    else
      k.gemm(w.data.data(), n0, n1, K, a.q.data() + m0 * K, a.d.data() + m0 * groups, a.s.data() + m0 * groups,
             rows, y + m0 * N, N);
  });
}

void qgemv_part(const PackedWeights& w, const QuantActs& a, int part, int parts, float* y) {
  check_product("qgemv_part", w, a);
  QAT_CHECK(a.M == 1 && parts >= 1 && part >= 0 && part < parts, "qgemv_part: needs one row and 0 <= part < parts");
  const QGemmKernels& k = family(*w.table, w.format);
  const int64_t panels = (w.N + k.nr - 1) / k.nr;
  const int64_t p0 = panels * part / parts, p1 = panels * (part + 1) / parts;  // balanced, whole panels
  const int64_t n0 = p0 * k.nr, n1 = std::min(w.N, p1 * k.nr);
  if (n1 > n0) k.gemv(w.data.data(), n0, n1, w.K, a.q.data(), a.d.data(), a.s.data(), y);
}

void qgemm(const PackedWeights& w, const float* x, int64_t M, float* y, QuantActs* scratch) {
  QAT_CHECK(w.table, "qgemm: the weights were never packed");
  thread_local QuantActs local;
  QuantActs* a = scratch ? scratch : &local;
  quantize_acts(uses_per_token(w.format), x, M, w.K, a, *w.table);
  qgemm(w, *a, y);
}

void qgemm_s32(const PackedWeights& w, const QuantActs& a, int32_t* y) {
  check_product("qgemm_s32", w, a);
  QAT_CHECK(w.format == WFormat::s8_pc, "qgemm_s32: needs s8_pc weights, got ", wformat_name(w.format));
  const QGemmKernels& k = w.table->s8_pc;
  const int64_t M = a.M, N = w.N, K = w.K, panels = (N + k.nr - 1) / k.nr;
  if (M == 0 || N == 0) return;
  const bool parallel = M * N * K >= kMinParallelMacs;
  const Split s = split_work(M, panels, kRowBlock, parallel);
  for_each_item(s.row_blocks * s.col_chunks, parallel, [&](int64_t i) {
    const int64_t c = i / s.row_blocks, rb = i % s.row_blocks;
    const int64_t n0 = c * s.panels_per_chunk * k.nr, n1 = std::min(N, n0 + s.panels_per_chunk * k.nr);
    const int64_t m0 = rb * kRowBlock, rows = std::min(kRowBlock, M - m0);
    k.gemm_s32(w.data.data(), n0, n1, K, a.q.data() + m0 * K, a.s.data() + m0, rows, y + m0 * N, N);
  });
}

void gemm_f32(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
              float* y, int64_t ldy, const Kernels& t) {
  QAT_CHECK(M >= 0 && N >= 0 && K >= 0 && ldx >= K && ldw >= K && ldy >= N, "gemm_f32: bad shape (M ", M,
            ", N ", N, ", K ", K, ") or strides (", ldx, ", ", ldw, ", ", ldy, ")");
  if (M == 0 || N == 0) return;
  constexpr int64_t kCols = 16;  // columns per chunk unit
  const bool parallel = M * N * K >= kMinParallelMacs;
  const Split s = split_work(M, (N + kCols - 1) / kCols, M == 1 ? 1 : kRowBlock, parallel);
  for_each_item(s.row_blocks * s.col_chunks, parallel, [&](int64_t i) {
    const int64_t c = i / s.row_blocks, rb = i % s.row_blocks;
    const int64_t n0 = c * s.panels_per_chunk * kCols, n1 = std::min(N, n0 + s.panels_per_chunk * kCols);
    const int64_t m0 = rb * kRowBlock, rows = std::min(kRowBlock, M - m0);
    if (M == 1)
      t.f32.gemv(x, w + n0 * ldw, ldw, n1 - n0, K, y + n0);
    else
      t.f32.gemm(x + m0 * ldx, ldx, w + n0 * ldw, ldw, rows, n1 - n0, K, y + m0 * ldy + n0, ldy);
  });
}

}  // namespace qat
