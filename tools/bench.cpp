// bin/bench: qat's benchmarks, one subcommand each.
//   kernels  the integer kernels against oneDNN's int8 matmul and OpenBLAS f32 (docs/BENCHMARKS.md):
//            family x ISA x backend x shape, 1 and 2 threads, weights in cache and (M = 1) in DRAM;
//            GOP/s = 2*M*N*K per second, GB/s = weight bytes per second; medians of interleaved rounds,
//            and every ratio taken round by round between runs made back to back.
//   peak     the roofline's ceilings per ISA.
//   train, torch, serve, serve-load, tokenizer, mpi, llama, all: tools/bench/ (training step FP32 vs QAT, vs PyTorch; prefill / decode per
//            backend; everything + docs/BENCHMARKS.md). Read next: src/nn/linear.h, tools/bench/bench.h.
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "src/nn/linear.h"
#include "kernels/cpu_features.h"
#include "kernels/qgemm.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"
#include "kernels/ref/quant.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

using namespace qat;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Shape {
  int64_t M, N, K;
};
const Shape kShapes[] = {{1, 768, 768},   {1, 3072, 768},   {1, 768, 3072},  {16, 768, 768},
                         {64, 768, 768},  {256, 1536, 384}, {512, 512, 512}, {1024, 1024, 1024}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "1,2,4" for option `flag`: each item an integer in [lo, hi], at least one; a usage error otherwise.
std::vector<int64_t> parse_list(const std::string& flag, const std::string& s, int64_t lo, int64_t hi) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
      throw UsageError(str(flag, ": expected a comma-separated list of integers in [", lo, ", ", hi, "], got '", s, "'"));
    v.push_back(x);
  }
  if (v.empty()) throw UsageError(str(flag, ": expected a comma-separated list of integers in [", lo, ", ", hi, "], got ''"));
  return v;
}

// ---- machine facts ----

std::string load_average() {  // the host is shared: say how busy it was
  FILE* f = std::fopen("/proc/loadavg", "r");
  char buf[64] = "?";
  if (f) {
    if (!std::fgets(buf, sizeof buf, f)) buf[0] = 0;
    std::fclose(f);
  }
  std::string s = buf;
  return s.substr(0, s.find(' '));
}

std::string machine_line() {
  const CpuFeatures& f = cpu_features();
  return str("CPU: ", f.brand, " (", omp_get_num_procs(), " hardware threads); ISA: ", f.flags(), "; caches: L1d ",
             f.l1d_bytes >> 10, " KiB, L2 ", f.l2_bytes >> 10, " KiB, L3 ", f.l3_bytes >> 20, " MiB (as cpuid reports);",
             " compiler: g++ ", __VERSION__, "; ", backend_versions(), "; load average at start: ", load_average());
}

// Both cores really run in parallel: the same integer loop on 1 and on 2 threads (each thread the
// whole loop) should take the same time. Returns t(2 threads) / t(1 thread).
double parallel_check() {
  auto spin = [] {
    uint64_t x = 1;
    for (int i = 0; i < 40000000; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
  };
  auto run = [&](int threads) {
    std::vector<uint64_t> sink(static_cast<size_t>(threads));
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    sink[size_t(omp_get_thread_num())] = spin();
    const double t = seconds_since(t0);
    if (sink[0] == 42) std::printf(" ");  // keep the loops
    return t;
  };
  run(1);
  return run(2) / run(1);
}

// Read bandwidth over `bytes` (beyond the caches), GB/s, with `threads` threads.
double read_bandwidth(std::vector<uint64_t>& buf, int threads) {
  const int64_t n = int64_t(buf.size());
  std::vector<double> t;
  for (int r = 0; r < 3; r++) {
    uint64_t total = 0;
    auto t0 = Clock::now();
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < n; i++) total += buf[size_t(i)];
    t.push_back(seconds_since(t0));
    if (total == 42) std::printf(" ");
  }
  return double(n) * 8 / *std::min_element(t.begin(), t.end()) * 1e-9;
}

// ---- contenders ----

struct Weights {
  std::vector<int8_t> q4, q8, s8;  // (N, K) codes
  std::vector<float> d4, d8, ds8;  // (N, K/32), (N, K/32), (N)
  std::vector<float> f32;          // (N, K) dequantized s8 weights (the OpenBLAS / gemm_f32 operand)
};

Weights make_weights(int64_t N, int64_t K) {
  std::vector<float> w(size_t(N * K));
  for (size_t i = 0; i < w.size(); i++) w[i] = rng_normal(7, 0, i) * 0.05f;
  Weights r;
  r.q4.resize(w.size());
  r.q8.resize(w.size());
  r.s8.resize(w.size());
  r.d4.resize(w.size() / QK);
  r.d8.resize(w.size() / QK);
  r.ds8.resize(size_t(N));
  quantize_int4_ggml(w.data(), N * K, QK, r.q4.data(), r.d4.data());
  quantize_int8_ggml(w.data(), N * K, QK, ScaleRound::f16, r.q8.data(), r.d8.data());
  quantize_per_channel_int8(w.data(), N, K, r.s8.data(), r.ds8.data());
  r.f32.resize(w.size());
  dequantize(r.s8.data(), r.ds8.data(), N * K, K, r.f32.data());
  return r;
}

struct Contender {
  std::string family, isa, backend;
  std::function<void(int replica)> call;  // one y = x W^T on weight copy `replica`
  std::function<void(int n)> replicate;   // makes n copies of the weights
  int64_t bytes = 0;                      // weight bytes one call streams
  int replicas = 1;
  int64_t batch = 1;                      // calls per sample
  std::vector<double> t;                  // seconds per call, one per round
};

// The contenders of one shape: native q4_0 / q8_0 / s8_pc on every ISA asked for, oneDNN int8, OpenBLAS
// f32, and the fixed-order gemm_f32.
std::vector<Contender> make_contenders(const Shape& s, const Weights& w, const std::vector<Isa>& isas,
                                       const float* x, float* y) {
  std::vector<Contender> cs;
  struct Fmt {
    WFormat f;
    const int8_t* q;
    const float* d;
  };
  const Fmt fmts[] = {{WFormat::q4_0, w.q4.data(), w.d4.data()},
                      {WFormat::q8_0, w.q8.data(), w.d8.data()},
                      {WFormat::s8_pc, w.s8.data(), w.ds8.data()}};
  auto add_linear = [&](std::string family, std::string isa, Backend b, WFormat f, const int8_t* q, const float* d,
                        const Kernels& t) {
    // Copy r of the weights is its own layer object (DRAM rows read a copy that is not in cache).
    auto copies = std::make_shared<std::vector<std::unique_ptr<Linear>>>();
    copies->push_back(make_quant_linear(b, f, q, d, s.N, s.K, t));
    Contender c;
    c.family = std::move(family);
    c.isa = std::move(isa);
    c.backend = backend_name(b);
    c.bytes = (*copies)[0]->weight_bytes();
    const int64_t M = s.M;
    c.call = [copies, x, y, M](int r) { (*copies)[size_t(r)]->forward(x, M, y); };
    c.replicate = [copies, b, f, q, d, s, tp = &t, x, y](int n) {
      copies->resize(std::min(copies->size(), size_t(n)));
      while (int(copies->size()) < n) {
        copies->push_back(make_quant_linear(b, f, q, d, s.N, s.K, *tp));
        copies->back()->forward(x, s.M, y);  // oneDNN creates its primitive and reorders its weights here
      }
    };
    cs.push_back(std::move(c));
  };
  for (const Fmt& f : fmts)
    for (Isa isa : isas) add_linear(str("gemm_", wformat_name(f.f)), isa_name(isa), Backend::native, f.f, f.q, f.d, kernels_for(isa));
  const std::string versions = backend_versions();
  const std::string dnnl_isa = versions.substr(versions.find('(') + 1, versions.find(')') - versions.find('(') - 1);
  add_linear("matmul_s8s8s32", dnnl_isa, Backend::onednn, WFormat::s8_pc, w.s8.data(), w.ds8.data(), kernels());
  add_linear(s.M == 1 ? "sgemv" : "sgemm", "f32", Backend::openblas, WFormat::s8_pc, w.s8.data(), w.ds8.data(), kernels());
  for (Isa isa : isas) {
    if (isa != Isa::avx2 && isa != Isa::scalar) continue;  // the other tables use AVX2's gemm_f32
    auto copies = std::make_shared<std::vector<std::vector<float>>>(1, w.f32);
    Contender c;
    c.family = "gemm_f32";
    c.isa = isa_name(isa);
    c.backend = "native";
    c.bytes = s.N * s.K * 4;
    const Kernels* t = &kernels_for(isa);
    c.call = [copies, x, y, s, t](int r) { gemm_f32(x, s.K, (*copies)[size_t(r)].data(), s.K, s.M, s.N, s.K, y, s.N, *t); };
    c.replicate = [copies](int n) { copies->resize(size_t(n), (*copies)[0]); };
    cs.push_back(std::move(c));
  }
  return cs;
}

// Interleaved rounds: every round times each contender once (one batch), so a ratio of two contenders
// compares runs made seconds apart, and noise from a shared host mostly cancels.
void measure(std::vector<Contender>& cs, bool dram, int64_t dram_bytes, int rounds, double min_s) {
  for (Contender& c : cs) {
    c.t.clear();
    c.call(0);  // warm up (oneDNN creates its primitive and reorders its weights here)
    if (dram) {
      c.replicas = int(std::max<int64_t>(2, dram_bytes / int64_t(cs.size()) / std::max<int64_t>(c.bytes, 1)));
      c.replicate(c.replicas);
      c.batch = c.replicas;  // one pass over the copies: each is read once per sample
    } else {
      auto t0 = Clock::now();
      c.call(0);
      const double once = std::max(seconds_since(t0), 1e-7);
      c.batch = std::max<int64_t>(1, int64_t(min_s / once));
    }
  }
  for (int r = 0; r < rounds; r++)
    for (Contender& c : cs) {
      auto t0 = Clock::now();
      for (int64_t i = 0; i < c.batch; i++) c.call(dram ? int(i % c.replicas) : 0);
      c.t.push_back(seconds_since(t0) / double(c.batch));
    }
  if (dram)
    for (Contender& c : cs) c.replicate(1);  // free the copies
}

// Median over rounds of t(base) / t(c): how many times faster c ran than base.
double ratio(const Contender& c, const Contender& base) {
  std::vector<double> r;
  for (size_t i = 0; i < c.t.size(); i++) r.push_back(base.t[i] / c.t[i]);
  return median(r);
}

struct Result {  // one table row, kept for the goals
  Shape s;
  int threads;
  bool dram;
  std::string family, isa, backend;
  double gops, gbs, x_onednn, x_openblas;
};

void exactness_report(const std::vector<Isa>& isas) {
  // The worst case of the sign trick and of u8 x s8 with saturation: every code 127 (and -127).
  const int64_t M = 1, N = 16, K = 64;
  std::vector<int8_t> w(size_t(N * K), 127), a(size_t(M * K), 127);
  for (int64_t i = 0; i < K; i += 2) w[size_t(K + i)] = -127;  // row 1 alternates signs
  std::vector<float> dw(size_t(N), 1.0f), da(size_t(M), 1.0f);
  QuantActs acts;
  acts_from_codes(true, a.data(), da.data(), M, K, &acts);
  std::printf("Exactness, s8 x s8 worst case (K = %ld, all codes 127; row 1 alternating -127): want %ld and 0\n", long(K),
              long(K * 127 * 127));
  auto report = [&](const std::string& who, const Linear& lin) {
    std::vector<int32_t> y(size_t(M * N));
    lin.forward_s32(acts, y.data());
    const bool ok = y[0] == K * 127 * 127 && y[1] == 0;
    std::printf("  %-28s %s (got %d and %d)\n", who.c_str(), ok ? "exact" : "NOT EXACT", y[0], y[1]);
  };
  for (Isa isa : isas) {
    auto lin = make_quant_linear(Backend::native, WFormat::s8_pc, w.data(), dw.data(), N, K, kernels_for(isa));
    report(str("native gemm_s8_pc ", isa_name(isa)), *lin);
  }
  report("onednn matmul_s8s8s32", *make_quant_linear(Backend::onednn, WFormat::s8_pc, w.data(), dw.data(), N, K));
}

// ---- bin/bench peak ----

// Runs fn(iters) on `threads` threads at once; returns the operations per second of all of them.
// Many short runs, the best kept: on a shared host that is the rate of the machine, not of its load.
double ops_per_second(double (*fn)(int64_t), int threads) {
  int64_t iters = 1 << 12;
  for (;;) {  // calibrate on one thread to ~10 ms
    auto t0 = Clock::now();
    fn(iters);
    if (seconds_since(t0) > 0.005) break;
    iters *= 2;
  }
  std::vector<double> rates;
  for (int r = 0; r < 20; r++) {
    double ops = 0;
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : ops)
    ops += fn(iters);
    rates.push_back(ops / seconds_since(t0));
  }
  return *std::max_element(rates.begin(), rates.end());
}

// Read bandwidth with `bytes` per thread (thread i reads buf + i * bytes, `passes` times), GB/s.
double read_rate(uint64_t (*fn)(const uint8_t*, int64_t), const std::vector<uint8_t>& buf, int64_t bytes, int threads) {
  const int64_t passes = std::max<int64_t>(1, (int64_t(1) << 30) / bytes);
  std::vector<double> rates;
  for (int r = 0; r < 3; r++) {
    uint64_t sum = 0;
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    for (int64_t p = 0; p < passes; p++) sum += fn(buf.data() + omp_get_thread_num() * bytes, bytes);
    rates.push_back(double(bytes * passes * threads) / seconds_since(t0) * 1e-9);
    if (sum == 42) std::printf(" ");
  }
  return *std::max_element(rates.begin(), rates.end());
}

int bench_peak(int argc, char** argv) {
  ArgParser p("bench peak", "peak f32 FMA, int8 and memory read rates per ISA (the roofline's ceilings)");
  std::string thread_list = "1,2";
  p.option("--threads", &thread_list, "thread counts", "LIST");
  if (!p.parse(argc, argv)) return 0;
  const std::vector<int64_t> threads = parse_list("--threads", thread_list, 1, 1024);
  std::printf("%s\n\n", machine_line().c_str());
  std::printf("| table | threads | f32 FMA GFLOP/s | int8 exact GOP/s | int8 int16-acc GOP/s |\n|---|---|---|---|---|\n");
  const Kernels* widest = &kernels_for(Isa::scalar);
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::avx512vnni}) {
    if (!isa_supported(isa)) continue;
    const Kernels& t = kernels_for(isa);
    if (isa == Isa::avx2 || isa == Isa::avx512) widest = &t;
    for (int64_t th : threads)
      std::printf("| %s | %ld | %.1f | %.1f | %s |\n", t.name, long(th), ops_per_second(t.peak.f32_fma, int(th)) * 1e-9,
                  ops_per_second(t.peak.int8_exact, int(th)) * 1e-9,
                  t.peak.int8_i16 ? str(int(ops_per_second(t.peak.int8_i16, int(th)) * 1e-8 + 0.5) / 10.0).c_str() : "-");
  }
  const int64_t dram = std::max<int64_t>(4 * cpu_features().l3_bytes, 256 << 20) / 256 * 256;
  const std::vector<uint8_t> buf(size_t(dram), 1);
  std::printf("\nRead bandwidth (%s loads, per-thread buffers):\n\n| working set per thread | threads | GB/s |\n|---|---|---|\n",
              widest->name);
  for (int64_t bytes : {int64_t(16) << 10, int64_t(512) << 10, int64_t(8) << 20, dram})
    for (int64_t th : threads)
      std::printf("| %ld KiB | %ld | %.1f |\n", long(bytes >> 10), long(th), read_rate(widest->peak.read, buf, bytes / th / 256 * 256, int(th)));
  return 0;
}

// ---- bin/bench kernels ----

// The command line of `bench kernels`, with the ISAs, shapes, thread counts and DRAM working set resolved.
struct KernelArgs {
  std::string isa_list = "native", thread_list = "1,2", shape_list;
  int64_t rounds = 7, min_ms = 20, dram_mb = 0;
  bool no_dram = false, quick = false;
  std::vector<Isa> isas;
  std::vector<Shape> shapes;
  std::vector<int64_t> threads;
  int64_t dram_bytes = 0;
};

// --isa: "native" (every native table this CPU has), "all" (scalar too) or a list of names.
std::vector<Isa> chosen_isas(const std::string& isa_list) {
  std::vector<Isa> isas;
  if (isa_list == "native" || isa_list == "all") {
    for (Isa i : {Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::avx512vnni})
      if (isa_supported(i)) isas.push_back(i);
    if (isa_list == "all") isas.insert(isas.begin(), Isa::scalar);
  } else {
    std::stringstream ss(isa_list);
    for (std::string n; std::getline(ss, n, ',');) isas.push_back(kernels_for(parse_isa(n)).isa);
  }
  return isas;
}

// Parses argv into *a; false after --help.
bool parse_kernel_args(int argc, char** argv, KernelArgs* a) {
  ArgParser p("bench kernels", "integer kernels vs oneDNN int8 and OpenBLAS f32 (docs/BENCHMARKS.md)");
  p.option("--isa", &a->isa_list, "tables to run: native (every native table this CPU has), all, or a list", "LIST");
  p.option("--threads", &a->thread_list, "thread counts", "LIST");
  p.option("--shapes", &a->shape_list, "only these shapes, as indices into the default list (0-7)", "LIST");
  p.option("--rounds", &a->rounds, "interleaved rounds per measurement", 1, 1000);
  p.option("--min-ms", &a->min_ms, "time per sample with weights in cache (ms)", 1, 10000);
  p.option("--dram-mb", &a->dram_mb, "working set of the DRAM runs (default: 4x the L3 cpuid reports)", 0, 1 << 20);
  p.flag("--no-dram", &a->no_dram, "skip the weights-in-DRAM runs");
  p.flag("--quick", &a->quick, "3 rounds, 5 ms samples, DRAM only for (1, 3072, 768)");
  if (!p.parse(argc, argv)) return false;
  if (a->quick) {
    a->rounds = std::min<int64_t>(a->rounds, 3);
    a->min_ms = std::min<int64_t>(a->min_ms, 5);
  }
  a->isas = chosen_isas(a->isa_list);
  if (a->shape_list.empty())
    a->shapes.assign(std::begin(kShapes), std::end(kShapes));
  else
    for (int64_t i : parse_list("--shapes", a->shape_list, 0, 7)) a->shapes.push_back(kShapes[i]);
  a->threads = parse_list("--threads", a->thread_list, 1, 1024);
  a->dram_bytes = a->dram_mb ? a->dram_mb << 20 : std::max<int64_t>(4 * cpu_features().l3_bytes, 256 << 20);
  return true;
}

// The read bandwidth per thread count (indexed by the count; 0 with --no-dram), and the parallel check
// when 2 threads are asked for, printed before the tables.
std::vector<double> print_machine_checks(const KernelArgs& a) {
  std::vector<double> bandwidth(size_t(*std::max_element(a.threads.begin(), a.threads.end()) + 1), 0.0);
  if (!a.no_dram) {
    std::vector<uint64_t> buf(size_t(a.dram_bytes / 8), 1);
    for (int64_t t : a.threads) bandwidth[size_t(t)] = read_bandwidth(buf, int(t));
    std::printf("\nRead bandwidth over %ld MiB: ", long(a.dram_bytes >> 20));
    for (int64_t t : a.threads) std::printf("%.1f GB/s at %ld thread(s)  ", bandwidth[size_t(t)], long(t));
    std::printf("\n");
  }
  if (std::find(a.threads.begin(), a.threads.end(), 2) != a.threads.end()) {
    const double pc = parallel_check();
    std::printf("Parallel check: 2 threads took %.2fx the time of 1 on the same per-thread work (1.00 = both cores free)%s\n",
                pc, pc > 1.3 ? ": the cores are busy, 2-thread numbers below measure the host's load, not the kernels" : "");
  }
  return bandwidth;
}

void print_table_header(const KernelArgs& a) {
  std::printf("\nRounds %ld, samples >= %ld ms in cache; DRAM runs stream a %ld MiB working set; ratios are medians of "
              "per-round ratios.\n\n",
              long(a.rounds), long(a.min_ms), long(a.dram_bytes >> 20));
  std::printf("us/call: median over rounds (spread = (max - min) / median); best: the fastest round; GOP/s and GB/s "
              "from the median.\n\n");
  std::printf("| M | N | K | thr | weights | family | isa | backend | us/call | spread | best us | GOP/s | GB/s | x onednn | x openblas |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

// One contender's row of shape s at t threads (dnn, blas: the oneDNN and OpenBLAS contenders of the
// same rounds), printed at once; returned for the goals.
Result report_row(const Shape& s, int64_t t, bool dram, const Contender& c, const Contender& dnn, const Contender& blas) {
  const double tm = median(c.t), lo = *std::min_element(c.t.begin(), c.t.end()),
               hi = *std::max_element(c.t.begin(), c.t.end());
  Result r{s, int(t), dram, c.family, c.isa, c.backend, 2.0 * double(s.M * s.N * s.K) / tm * 1e-9,
           double(c.bytes) / tm * 1e-9, &c == &dnn ? 1.0 : ratio(c, dnn), &c == &blas ? 1.0 : ratio(c, blas)};
  std::printf("| %ld | %ld | %ld | %ld | %s | %s | %s | %s | %.1f | %.0f%% | %.1f | %.1f | %s | %.2f | %.2f |\n",
              long(s.M), long(s.N), long(s.K), long(t), dram ? "DRAM" : "cache", c.family.c_str(), c.isa.c_str(),
              c.backend.c_str(), tm * 1e6, (hi - lo) / tm * 100, lo * 1e6, r.gops,
              s.M == 1 ? str(int(r.gbs * 10 + 0.5) / 10.0).c_str() : "", r.x_onednn, r.x_openblas);
  std::fflush(stdout);
  return r;
}

// Every contender of shape s at every thread count, weights in cache and (M = 1) in DRAM: rows printed,
// results appended.
void bench_shape(const KernelArgs& a, const Shape& s, std::vector<Result>* results) {
  Weights w = make_weights(s.N, s.K);
  std::vector<float> x(size_t(s.M * s.K)), y(size_t(s.M * s.N));
  for (size_t i = 0; i < x.size(); i++) x[i] = rng_normal(3, 0, i);
  std::vector<Contender> cs = make_contenders(s, w, a.isas, x.data(), y.data());
  const Contender* dnn = nullptr;
  const Contender* blas = nullptr;
  for (const Contender& c : cs) {
    if (c.backend == "onednn") dnn = &c;
    if (c.backend == "openblas") blas = &c;
  }
  for (int64_t t : a.threads) {
    set_num_threads(int(t));
    for (bool dram : {false, true}) {
      if (dram && (a.no_dram || s.M != 1 || (a.quick && s.N != 3072))) continue;
      measure(cs, dram, a.dram_bytes, int(a.rounds), double(a.min_ms) * 1e-3);
      for (const Contender& c : cs) results->push_back(report_row(s, t, dram, c, *dnn, *blas));
    }
  }
}

// One goal of the kernels issue per native ISA and thread count: the worst value over the rows of
// `family` that `select` keeps decides, against `need`.
void print_goal(const KernelArgs& a, const std::vector<Result>& results, const std::string& what, const std::string& family,
                double need, const std::function<bool(const Result&)>& select,
                const std::function<double(const Result&)>& value) {
  for (Isa isa : a.isas)
    for (int64_t t : a.threads) {
      double worst = 1e30;
      std::string where;
      for (const Result& r : results)
        if (r.backend == "native" && r.isa == isa_name(isa) && r.family == family && r.threads == t && select(r) &&
            value(r) < worst) {
          worst = value(r);
          where = str("(", r.s.M, ",", r.s.N, ",", r.s.K, ")");
        }
      if (worst == 1e30) continue;
      std::printf("  %-46s %-11s %ld thr: %6.2f vs >= %.2f %s %s\n", what.c_str(), isa_name(isa), long(t), worst, need,
                  worst >= need ? "MET   " : str("MISSED by ", int((1 - worst / need) * 100 + 0.5), "%").c_str(),
                  where.c_str());
    }
}

// The goals of the kernels issue, per native ISA and thread count: the worst shape decides.
void print_goals(const KernelArgs& a, const std::vector<Result>& results, const std::vector<double>& bandwidth) {
  std::printf("\nGoals (worst shape per ISA and thread count; ratios from the same rounds):\n");
  auto goal = [&](const std::string& what, const std::string& family, double need, auto select, auto value) {
    print_goal(a, results, what, family, need, select, value);
  };
  auto big = [](const Result& r) { return r.s.M >= 64 && !r.dram; };
  auto m1_cache = [](const Result& r) { return r.s.M == 1 && !r.dram; };
  auto m1_dram = [](const Result& r) { return r.s.M == 1 && r.dram; };
  auto x_dnn = [](const Result& r) { return r.x_onednn; };
  auto x_blas = [](const Result& r) { return r.x_openblas; };
  goal("gemm_s8_pc / onednn int8, M >= 64", "gemm_s8_pc", 0.95, big, x_dnn);
  goal("gemm_q8_0 / onednn int8, M >= 64", "gemm_q8_0", 0.95, big, x_dnn);
  goal("gemm_q4_0 / onednn int8, M >= 64", "gemm_q4_0", 1.3, big, x_dnn);
  goal("gemm_s8_pc / onednn int8, M = 1, in cache", "gemm_s8_pc", 4.0, m1_cache, x_dnn);
  goal("gemm_q8_0 / onednn int8, M = 1, in cache", "gemm_q8_0", 4.0, m1_cache, x_dnn);
  for (const char* f : {"gemm_q4_0", "gemm_q8_0", "gemm_s8_pc"})
    goal(str(f, " / openblas sgemm, M >= 64"), f, 2.0, big, x_blas);
  if (!a.no_dram)
    for (const char* f : {"gemm_q4_0", "gemm_q8_0"})
      goal(str(f, " GB/s / read bandwidth, M = 1, DRAM"), f, 0.9, m1_dram,
           [&](const Result& r) { return r.gbs / bandwidth[size_t(r.threads)]; });
}

int bench_kernels(int argc, char** argv) {
  KernelArgs a;
  if (!parse_kernel_args(argc, argv, &a)) return 0;
  std::printf("%s\n\n", machine_line().c_str());
  exactness_report(a.isas);
  const std::vector<double> bandwidth = print_machine_checks(a);
  print_table_header(a);
  std::vector<Result> results;
  for (const Shape& s : a.shapes) bench_shape(a, s, &results);
  set_num_threads(0);
  print_goals(a, results, bandwidth);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bench", [&]() -> int {
    const std::string usage =
        "usage: bench kernels|peak|train|serve|serve-load|tokenizer|mpi|torch|shapes|llama|all [options]   (bench SUBCOMMAND --help for the options)";
    if (argc < 2) throw UsageError(usage);
    const std::string cmd = argv[1];
    if (cmd == "kernels") return bench_kernels(argc - 1, argv + 1);
    if (cmd == "peak") return bench_peak(argc - 1, argv + 1);
    if (cmd == "train") return bench::bench_train(argc - 1, argv + 1);
    if (cmd == "torch") return bench::bench_torch(argc - 1, argv + 1);
    if (cmd == "shapes") return bench::bench_shapes(argc - 1, argv + 1);
    if (cmd == "serve") return bench::bench_serve(argc - 1, argv + 1);
    if (cmd == "tokenizer") return bench::bench_tokenizer(argc - 1, argv + 1);
    if (cmd == "mpi") return bench::bench_mpi(argc - 1, argv + 1);
    if (cmd == "serve-load") return bench::bench_serve_load(argc - 1, argv + 1);
    if (cmd == "all") return bench::bench_all(argc - 1, argv + 1);
    if (cmd == "llama") return bench::bench_llama(argc - 1, argv + 1);
    if (cmd == "--help" || cmd == "-h") {
      std::printf("%s\n", usage.c_str());
      return 0;
    }
    throw UsageError(str("unknown subcommand '", cmd, "'; ", usage));
  });
}
