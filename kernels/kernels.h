// The kernel tables: one struct of function pointers per family, one table per ISA, chosen once
// (dispatch.cpp). Nothing outside kernels/ knows which ISA runs; ops call the entry points of
// kernels/qgemm.h, which call kernels().<family>. Read next: kernels/scalar/ (the spec: plain loops),
// then kernels/pack.cpp (the interleaved weight layout), then kernels/qgemm_tiles.h (the SIMD tiles, one
// loop nest for every vector width) with its ymm layer kernels/avx2/qgemm_ymm.h.
//
// Letters: out y (M, N) = x (M, K) W (N, K)^T; G = 32 (q4_0 / q8_0 block); b = block index 0..K/32-1.
// Codes are the reference quantizer's (kernels/ref/quant.h): int8 in [-127, 127], int4 in [-8, 7].
//
// THE f32 reduction orders. Every ISA and both the M = 1 and the M > 1 paths compute each output with
// exactly these operations, so every table is bit-identical to kernels/scalar, at any thread count:
//  * q4_0 / q8_0 (weights W with f16 block scales dw (N, K/32), activations X in q8_0 blocks da (M, K/32)):
//        isum[m][n][b] = sum_{j<32} qw[n][32b+j] * qa[m][32b+j]          (exact int32)
//        acc = 0.0f;  for b = 0, 1, ..., K/32-1:  acc = fmaf(dw[n][b] * da[m][b], (float)isum, acc);
//        y[m][n] = acc                 (dw*da rounded to f32 first, then one fused multiply-add per block)
//  * tq (ternary codes W in [-1, 1] with one f16 scale per 256 k, dw (N, K/256); activations in q8_0
//        blocks): the q4_0 / q8_0 order with each block b taking its 256-block's scale dw[n][b / 8]:
//        acc = fmaf(dw[n][b/8] * da[m][b], (float)isum[m][n][b], acc), b = 0, 1, ..., K/32-1.
//  * s8_pc (per-channel int8 W with scale dw (N), per-token int8 X with scale da (M)):
//        isum = sum_{k<K} qw[n][k] * qa[m][k]   (exact int32; K <= kMaxKS8 keeps every ISA's sum in range)
//        y[m][n] = (dw[n] * da[m]) * (float)isum
//  * f32 (no quantization): y[m][n] = dot_f32(x_m, w_n, K) of kernels/ref/order.h: 8 interleaved partial
//        sums (lane j takes k % 8 == j, acc = acc + x*w, no FMA), combined ((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7)).
// Integer sums are exact in any order, so SIMD kernels may add the products of a block in any order;
// the f32 operations above may not be reordered, fused or split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qat {

enum class Isa : uint8_t {
  scalar, avx2, avx512, avx512vnni, avxvnni,         // native (dispatched when the CPU has them)
  avx512_simde, avx512vnni_simde, avxvnni_simde,     // the same sources on SIMDe: run on any CPU (tests)
};
constexpr int kNumIsas = 8;

// Largest K of gemm_s8_pc: the VNNI kernels sum (w + 128) * a, up to 255 * 127 per element, in int32.
constexpr int64_t kMaxKS8 = 65536;

// ---- quantize activations (the int8 ggml rule of kernels/ref/quant.h) and QAT weights (the learned rule), bit for bit ----
struct QuantizeKernels {
  // x (M, K) -> q (M, K) codes, d (M, K/32) f16-rounded scales, s (M, K/32) sum of each block's codes.
  void (*q8_0)(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);
  // x (M, K) -> q (M, K), d (M) f32 scales, s (M) sum of each row's codes (per-token int8).
  void (*per_token)(const float* x, int64_t M, int64_t K, int8_t* q, float* d, int32_t* s);
  // Weights (QAT, every step): kernels/ref's quantize_learned, bit for bit. x (n), s (n/G) -> q (n) in
  // [lo, hi], s16 (n/G, may be null).
  void (*learned)(const float* x, int64_t n, int64_t G, const float* s, int lo, int hi, int8_t* q, float* s16);
};

// ---- integer GEMM of one weight format (q4_0, q8_0, tq or s8_pc) on repacked weights ----
// Packed weights are panels of `nr` output rows (rows past N are zeros), panel p at p * panel_bytes(K);
// kernels/pack.cpp documents the layout. Activations (q, d, s) are those of QuantizeKernels: q8_0 for
// q4_0 / q8_0 / tq weights, per_token for s8_pc. Kernels write columns [n0, n1) of y; n0 % nr == 0.
struct QGemmKernels {
  int nr;                                  // output rows interleaved per panel
  int64_t (*panel_bytes)(int64_t K);
  // One panel from rows (<= nr) rows of codes q (rows, K) and scales d (rows, K/32) (s8_pc: d (rows);
  // tq: d (rows, K/256)).
  void (*pack)(const int8_t* q, const float* d, int64_t rows, int64_t K, uint8_t* panel);
  // M = 1 (decode): y (N) columns [n0, n1); q (K), d, s of one activation row.
  void (*gemv)(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, float* y);
  // M > 1 (prefill, training): y (M, ldy) columns [n0, n1); q (M, K), d and s (M, K/32) or (M).
  void (*gemm)(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const float* d,
               const int32_t* s, int64_t M, float* y, int64_t ldy);
  // s8_pc only (null otherwise): the int32 accumulators isum, y (M, ldy), as oneDNN's s8 matmul returns.
  void (*gemm_s32)(const uint8_t* w, int64_t n0, int64_t n1, int64_t K, const int8_t* q, const int32_t* s,
                   int64_t M, int32_t* y, int64_t ldy);
};

// ---- the project's fixed-order f32 GEMM (attention, layers kept at f32 in a QAT model) ----
struct GemmF32Kernels {
  // y (N) = w (N, ldw) x (K): y[n] = dot_f32(x, w_n, K).
  void (*gemv)(const float* x, const float* w, int64_t ldw, int64_t N, int64_t K, float* y);
  // y (M, ldy) = x (M, ldx) w (N, ldw)^T over the first K columns.
  void (*gemm)(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t M, int64_t N, int64_t K,
               float* y, int64_t ldy);
};

// ---- f32 row functions of attention and SwiGLU (used by src/ops/rowops.h), the same bits in every table ----
struct RowKernels {
  // y (n) = exp(x) (n), the project's exp of kernels/scalar/rows.cpp (x and y may be the same array).
  void (*exp)(const float* x, int64_t n, float* y);
  // For g < G: out_g (D) = sum over j = 0, 1, ..., n-1 in that order of p_g[j] * v_j, with p_g at
  // p + g * ldp, out_g at out + g * ldo and v_j (D) at v + j * stride; each step acc = acc + p_g[j] * v_j[d]
  // (a multiply then an add, no FMA). G > 1: heads sharing one value head (GQA) read V once.
  void (*weighted_rows)(const float* p, int64_t ldp, int64_t G, const float* v, int64_t stride, int64_t n,
                        int64_t D, float* out, int64_t ldo);
  // One query row of H heads against a position-major cache (batched decode): position j's Hkv heads of D
  // floats at k + j * stride, query head h reading kv head h / group. The same outputs as the per-head
  // f32.gemm and weighted_rows, bit for bit, with the positions read in order once for all heads (one
  // sequential stream where the per-head calls read Hkv strided ones).
  //   head_scores:   s[h * lds + j] = dot_f32(q + h * D, k + j * stride + (h / group) * D, D), j < n.
  //   head_weighted: out (H, D), out_h = sum over j = 0, 1, ..., n-1 in that order of p[h * ldp + j] * v_j,h/group
  //                  (weighted_rows's steps: acc = acc + p * v from 0.0f, no FMA).
  void (*head_scores)(const float* q, int64_t H, int64_t group, const float* k, int64_t stride, int64_t n,
                      int64_t D, float* s, int64_t lds);
  void (*head_weighted)(const float* p, int64_t ldp, int64_t H, int64_t group, const float* v, int64_t stride,
                        int64_t n, int64_t D, float* out);
  // One softmax row in place (attention's): s[j] = s[j] * scale; m = the largest s[j] (s[j] > m ? s[j] : m
  // from m = -inf, so NaNs are passed over); s[j] = exp(s[j] - m); sum = the sum of s in sum_f32's order
  // (kernels/ref/order.h: 8 interleaved partial sums, ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))); s[j] = s[j] *
  // (1 / sum). *max = m, *sum = sum. Only a zero maximum's sign may differ between tables (ties of +0 and
  // -0 are met in another order); no output depends on it.
  void (*softmax)(float* s, int64_t n, float scale, float* max, float* sum);
  // y (n) = silu(g) * u = (g / (1 + exp(-g))) * u elementwise (y may be g).
  void (*swiglu)(const float* g, const float* u, int64_t n, float* y);
  // Its backward, accumulated: s = 1 / (1 + exp(-g)); dg += (dy * u) * (s * (1 + g * (1 - s)));
  // du += (dy * g) * s. dg or du may be null (not wanted).
  void (*swiglu_backward)(const float* g, const float* u, const float* dy, int64_t n, float* dg, float* du);
};

// ---- peak loops (bin/bench peak: the ceilings of the roofline) ----
// Register-resident loops with independent accumulators; each returns the operations it did (2 per
// multiply-add), and `read` the sum of the 64-bit words of p (bytes % 256 == 0), which keeps it honest.
struct PeakKernels {
  double (*f32_fma)(int64_t iters);     // vfmadd on this table's widest f32 vector (scalar: a*b+c)
  double (*int8_exact)(int64_t iters);  // this table's exact int8 step: vpmaddubsw+vpmaddwd or vpdpbusd
  double (*int8_i16)(int64_t iters);    // vpmaddubsw + vpaddw, int16 accumulation (not exact in general)
  uint64_t (*read)(const uint8_t* p, int64_t bytes);
};

struct Kernels {
  Isa isa;
  const char* name;  // "avx2", "avx512vnni_simde", ...
  QuantizeKernels quant;
  QGemmKernels q4_0, q8_0, s8_pc, tq;
  GemmF32Kernels f32;
  RowKernels rows;
  PeakKernels peak;
};

// ---- dispatch (dispatch.cpp: the one place a table is chosen) ----
// The active table: on first use the best ISA the CPU has, or QAT_ISA=scalar|avx2|avx512|avx512vnni|
// avxvnni (also the *_simde names) when set. Asking for an ISA the CPU lacks throws qat::Error.
const Kernels& kernels();
// Replaces the active table (the binaries' --isa). Call before starting threads.
void select_isa(Isa isa);
void select_isa(const std::string& name);     // UsageError on an unknown name
const Kernels& kernels_for(Isa isa);          // any table; qat::Error if the CPU lacks the ISA
bool isa_supported(Isa isa);                  // this CPU (and OS) can run it
struct CpuFeatures;
bool isa_runs_on(Isa isa, const CpuFeatures& f);  // a CPU with features f could (cpu_features.h)
const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);       // UsageError listing the valid names
std::vector<Isa> all_isas();                  // every table, supported or not, scalar first
Isa best_isa();                               // what kernels() picks without QAT_ISA

}  // namespace qat
