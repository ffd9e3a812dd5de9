// The implementations of linear.h: f32 (fixed-order or OpenBLAS), native integer kernels, oneDNN int8.
#include "src/nn/linear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>
#include <vector>

#include "src/core/parallel.h"
#include "src/ops/blas.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {


void Linear::forward_s32(const QuantActs&, int32_t*) const {
  fail("forward_s32: the ", backend_name(backend()), " backend has no int32 accumulators for this layer");
}

namespace {

// f32 W (N, K) through the fixed-order gemm_f32 of one kernel table.
class F32FixedLinear final : public Linear {
 public:
  F32FixedLinear(const Tensor& w, const Kernels& t) : Linear(w.dim(0), w.dim(1)), w_(w.contiguous()), t_(&t) {}
  void forward(const float* x, int64_t M, float* y) const override { gemm_f32(x, K_, w_.f32(), K_, M, N_, K_, y, N_, *t_); }
  Backend backend() const override { return Backend::native; }
  int64_t weight_bytes() const override { return int64_t(w_.nbytes()); }

 private:
  Tensor w_;
  const Kernels* t_;
};

// f32 W (N, K) through OpenBLAS.
class BlasLinear final : public Linear {
 public:
  explicit BlasLinear(const Tensor& w) : Linear(w.dim(0), w.dim(1)), w_(w.contiguous()) {}
  void forward(const float* x, int64_t M, float* y) const override {
    const float* W = w_.f32();
    if (M > 1) return sgemm(false, true, M, N_, K_, 1.0f, x, K_, W, K_, 0.0f, y, N_);
    // M = 1: OpenBLAS runs single-threaded (src/core/parallel.cpp), so threads take row chunks.
    const int64_t chunks = N_ * K_ >= (1 << 18) ? std::min<int64_t>(omp_get_max_threads(), (N_ + 63) / 64) : 1;
    const int64_t rows = (N_ + chunks - 1) / chunks;
    auto chunk = [&](int64_t c) {
      const int64_t r0 = c * rows, r = std::min(rows, N_ - r0);
      if (r > 0) cblas_sgemv(CblasRowMajor, CblasNoTrans, int(r), int(K_), 1.0f, W + r0 * K_, int(K_), x, 1, 0.0f, y + r0, 1);
    };
    if (chunks == 1) return chunk(0);  // no parallel region (about a microsecond) for one chunk
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) chunk(c);
  }
  Backend backend() const override { return Backend::openblas; }
  int64_t weight_bytes() const override { return int64_t(w_.nbytes()); }

 private:
  Tensor w_;
};

// Below this many multiply-adds (a ~2 us GEMV) a token's matvec stays on the calling thread.
constexpr int64_t kPoolMinMacs = 1 << 15;

// Integer W packed for one kernel table; x quantized by the reference rule into per-thread scratch.
class NativeLinear final : public Linear {
 public:
  NativeLinear(WFormat f, const int8_t* q, const float* d, int64_t n, int64_t k, const Kernels& t) : Linear(n, k) {
    pack_weights(f, q, d, n, k, &w_, t);
  }
  // qgemm quantizes x into a thread_local scratch: reentrant, and no allocation once it has grown.
  // One token (M = 1) with a pool installed (a DecodeSession's forward): x quantized once here, the
  // panels split over the pool's threads, each output by the kernel call qgemm would make.
  void forward(const float* x, int64_t M, float* y) const override {
    WorkerPool* pool = current_pool();
    if (M != 1 || !pool || pool->size() < 2 || N_ * K_ < kPoolMinMacs) return qgemm(w_, x, M, y);
    thread_local QuantActs local;
    const QuantActs* acts = &local;  // the caller's: inside the lambda `local` would name each worker's own
    quantize_acts(uses_per_token(w_.format), x, 1, K_, &local, *w_.table);
    pool->run([&](int t) { qgemv_part(w_, *acts, t, pool->size(), y); });
  }
  void forward_s32(const QuantActs& a, int32_t* y) const override { qgemm_s32(w_, a, y); }
  Backend backend() const override { return Backend::native; }
  int64_t weight_bytes() const override { return int64_t(w_.data.size()); }

 private:
  PackedWeights w_;
};

// W (N, K) in f32 from codes and scales of any format.
Tensor dequantized(WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K) {
  Tensor w = Tensor::empty({N, K});
  dequantize(q, d, N * K, wformat_group(f, K), w.f32());
  return w;
}

// oneDNN matmul: dst (M, N) s32 = src (M, K) s8 x wei (K, N) s8. Our W (N, K) row-major is wei with
// format tag ba. One primitive and one reordered copy of the weights per distinct M.
class OneDnnLinear final : public Linear {
 public:
  OneDnnLinear(WFormat f, const int8_t* q, const float* d, int64_t n, int64_t k)
      : Linear(n, k), wq_(size_t(n * k)), wd_(size_t(n)) {
    if (f == WFormat::s8_pc) {
      std::memcpy(wq_.data(), q, size_t(n * k));
      std::memcpy(wd_.data(), d, size_t(n) * 4);
    } else {
      Tensor w = dequantized(f, q, d, n, k);
      quantize_per_channel_int8(w.f32(), n, k, wq_.data(), wd_.data());
    }
  }
  void forward(const float* x, int64_t M, float* y) const override {
    quantize_acts(true, x, M, K_, &acts_);
    run(acts_);
    // The scales, as gemm_s8_pc applies them: y = (dw * da) * (float)isum.
    auto row = [&](int64_t m) {
      for (int64_t n = 0; n < N_; n++) y[m * N_ + n] = (wd_[size_t(n)] * acts_.d[size_t(m)]) * float(acc_[size_t(m * N_ + n)]);
    };
    if (M * N_ < 65536 || omp_get_max_threads() < 2) {  // no parallel region (about a microsecond)
      for (int64_t m = 0; m < M; m++) row(m);
      return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) row(m);
  }
  void forward_s32(const QuantActs& a, int32_t* y) const override {
    QAT_CHECK(a.per_token && a.K == K_, "forward_s32: needs per-token activations with K = ", K_);
    run(a);
    std::memcpy(y, acc_.data(), acc_.size() * 4);
  }
  Backend backend() const override { return Backend::onednn; }
  int64_t weight_bytes() const override { return N_ * K_ + N_ * 4; }

 private:
  struct Prim {
    dnnl::matmul prim;
    dnnl::matmul::primitive_desc pd;
    dnnl::memory wei;  // the weights in the primitive's layout
  };
  Prim& prepare(int64_t M) const {
    auto it = by_m_.find(M);
    if (it != by_m_.end()) return it->second;
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dnnl::memory::desc src_md({M, K_}, dt::s8, tag::ab), wei_md({K_, N_}, dt::s8, tag::any),
        dst_md({M, N_}, dt::s32, tag::ab);
    Prim p;
    p.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_md, dst_md), eng_);
    p.prim = dnnl::matmul(p.pd);
    dnnl::memory user({{K_, N_}, dt::s8, tag::ba}, eng_, const_cast<int8_t*>(wq_.data()));
    p.wei = dnnl::memory(p.pd.weights_desc(), eng_);
    dnnl::reorder(user, p.wei).execute(strm_, user, p.wei);
    strm_.wait();
    return by_m_.emplace(M, std::move(p)).first->second;
  }
  void run(const QuantActs& a) const {
    Prim& p = prepare(a.M);
    acc_.resize(size_t(a.M * N_));
    dnnl::memory src(p.pd.src_desc(), eng_, const_cast<int8_t*>(a.q.data()));
    dnnl::memory dst(p.pd.dst_desc(), eng_, acc_.data());
    p.prim.execute(strm_, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.wei}, {DNNL_ARG_DST, dst}});
    strm_.wait();
  }

  dnnl::engine eng_{dnnl::engine::kind::cpu, 0};
  mutable dnnl::stream strm_{eng_};
  std::vector<int8_t> wq_;  // (N, K) per-channel codes
  std::vector<float> wd_;   // (N) scales
  // Created on first use per M (a comparison backend: not reentrant, see linear.h).
  mutable std::map<int64_t, Prim> by_m_;
  mutable QuantActs acts_;
  mutable std::vector<int32_t> acc_;
};

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::native: return "native";
    case Backend::onednn: return "onednn";
    case Backend::openblas: return "openblas";
  }
  return "?";
}

Backend parse_backend(const std::string& name) {
  for (Backend b : {Backend::native, Backend::onednn, Backend::openblas})
    if (name == backend_name(b)) return b;
  throw UsageError(str("--backend: expected native, onednn or openblas, got '", name, "'"));
}

std::unique_ptr<Linear> make_f32_linear(Backend b, const Tensor& w, const Kernels& t) {
  QAT_CHECK(w.ndim() == 2 && w.dtype() == DType::f32, "f32 linear: weight must be f32 (N, K), got ", w.shape_string());
  if (b == Backend::openblas) return std::make_unique<BlasLinear>(w);
  return std::make_unique<F32FixedLinear>(w, t);
}

std::unique_ptr<Linear> make_quant_linear(Backend b, WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K,
                                          const Kernels& t) {
  QAT_CHECK(N > 0 && K > 0 && K % QK == 0, "linear: weights (", N, ", ", K, "): K must be a positive multiple of 32");
  switch (b) {
    case Backend::native: return std::make_unique<NativeLinear>(f, q, d, N, K, t);
    case Backend::onednn: return std::make_unique<OneDnnLinear>(f, q, d, N, K);
    case Backend::openblas: return std::make_unique<BlasLinear>(dequantized(f, q, d, N, K));
  }
  fail("linear: unknown backend");
}

std::string backend_versions() {
  const dnnl_version_t* v = dnnl_version();
  std::string blas = openblas_get_config();
  return str("oneDNN ", v->major, ".", v->minor, ".", v->patch, " (", dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()),
             "), ", blas, " (", openblas_get_corename(), ")");
}

}  // namespace qat
