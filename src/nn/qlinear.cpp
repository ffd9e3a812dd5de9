// The comparison backends of qlinear.h: native (our kernels), oneDNN int8 matmul, OpenBLAS f32.
#include "src/nn/qlinear.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>
#include <vector>

#include "src/ops/blas.h"
#include "kernels/ref/quant.h"
#include "src/util/error.h"

namespace qat {

namespace {

// W (N, K) in f32 from codes and scales of any format.
std::vector<float> dequantized(WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K) {
  std::vector<float> w(size_t(N * K));
  dequantize(q, d, N * K, f == WFormat::s8_pc ? K : QK, w.data());
  return w;
}

}  // namespace

struct QLinear::Impl {
  Backend backend;
  int64_t N, K;
  explicit Impl(Backend b, int64_t n, int64_t k) : backend(b), N(n), K(k) {}
  virtual ~Impl() = default;
  virtual void forward(const float* x, int64_t M, float* y, int replica) = 0;
  virtual void forward_s32(const QuantActs&, int32_t*) {
    fail("forward_s32: the ", backend_name(backend), " backend has no int32 accumulators");
  }
  virtual void set_replicas(int n, int64_t M) = 0;
  virtual int64_t weight_bytes() const = 0;
};

namespace {

struct NativeLinear : QLinear::Impl {
  std::vector<PackedWeights> w;  // replicas
  QuantActs acts;
  NativeLinear(WFormat f, const int8_t* q, const float* d, int64_t n, int64_t k, const Kernels& t)
      : Impl(Backend::native, n, k), w(1) {
    pack_weights(f, q, d, n, k, &w[0], t);
  }
  void forward(const float* x, int64_t M, float* y, int replica) override { qgemm(w[size_t(replica)], x, M, y, &acts); }
  void forward_s32(const QuantActs& a, int32_t* y) override { qgemm_s32(w[0], a, y); }
  void set_replicas(int n, int64_t) override { w.resize(size_t(n), w[0]); }
  int64_t weight_bytes() const override { return int64_t(w[0].data.size()); }
};

struct BlasLinear : QLinear::Impl {
  std::vector<std::vector<float>> w;  // replicas of W (N, K)
  BlasLinear(WFormat f, const int8_t* q, const float* d, int64_t n, int64_t k)
      : Impl(Backend::openblas, n, k), w{dequantized(f, q, d, n, k)} {}
  void forward(const float* x, int64_t M, float* y, int replica) override {
    const float* W = w[size_t(replica)].data();
    if (M > 1) return sgemm(false, true, M, N, K, 1.0f, x, K, W, K, 0.0f, y, N);
    // M = 1: OpenBLAS runs single-threaded (src/core/parallel.cpp), so threads take row chunks.
    const int64_t chunks = N * K >= (1 << 18) ? std::min<int64_t>(omp_get_max_threads(), (N + 63) / 64) : 1;
    const int64_t rows = (N + chunks - 1) / chunks;
    auto chunk = [&](int64_t c) {
      const int64_t r0 = c * rows, r = std::min(rows, N - r0);
      if (r > 0) cblas_sgemv(CblasRowMajor, CblasNoTrans, int(r), int(K), 1.0f, W + r0 * K, int(K), x, 1, 0.0f, y + r0, 1);
    };
    if (chunks == 1) return chunk(0);  // no parallel region (about a microsecond) for one chunk
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; c++) chunk(c);
  }
  void set_replicas(int n, int64_t) override { w.resize(size_t(n), w[0]); }
  int64_t weight_bytes() const override { return N * K * 4; }
};

// oneDNN matmul: dst (M, N) s32 = src (M, K) s8 x wei (K, N) s8. Our W (N, K) row-major is wei with
// format tag ba. One primitive and one reordered copy of the weights per distinct M.
struct OneDnnLinear : QLinear::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::vector<int8_t> wq;  // (N, K) per-channel codes
  std::vector<float> wd;   // (N) scales
  struct Prim {
    dnnl::matmul prim;
    dnnl::matmul::primitive_desc pd;
    std::vector<dnnl::memory> wei;  // replicas, in the primitive's layout
  };
  std::map<int64_t, Prim> by_m;
  QuantActs acts;
  std::vector<int32_t> acc;

  OneDnnLinear(WFormat f, const int8_t* q, const float* d, int64_t n, int64_t k)
      : Impl(Backend::onednn, n, k), wq(size_t(n * k)), wd(size_t(n)) {
    if (f == WFormat::s8_pc) {
      std::memcpy(wq.data(), q, size_t(n * k));
      std::memcpy(wd.data(), d, size_t(n) * 4);
    } else {
      std::vector<float> w = dequantized(f, q, d, n, k);
      quantize_per_channel_int8(w.data(), n, k, wq.data(), wd.data());
    }
  }

  Prim& prepare(int64_t M) {
    auto it = by_m.find(M);
    if (it != by_m.end()) return it->second;
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    dnnl::memory::desc src_md({M, K}, dt::s8, tag::ab), wei_md({K, N}, dt::s8, tag::any),
        dst_md({M, N}, dt::s32, tag::ab);
    Prim p;
    p.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, wei_md, dst_md), eng);
    p.prim = dnnl::matmul(p.pd);
    dnnl::memory user({{K, N}, dt::s8, tag::ba}, eng, wq.data());
    p.wei.emplace_back(p.pd.weights_desc(), eng);
    dnnl::reorder(user, p.wei[0]).execute(strm, user, p.wei[0]);
    strm.wait();
    return by_m.emplace(M, std::move(p)).first->second;
  }

  void run(const QuantActs& a, int replica) {
    Prim& p = prepare(a.M);
    acc.resize(size_t(a.M * N));
    dnnl::memory src(p.pd.src_desc(), eng, const_cast<int8_t*>(a.q.data()));
    dnnl::memory dst(p.pd.dst_desc(), eng, acc.data());
    p.prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.wei[size_t(replica)]}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }

  void forward(const float* x, int64_t M, float* y, int replica) override {
    quantize_acts(true, x, M, K, &acts);
    run(acts, replica);
    // The scales, as gemm_s8_pc applies them: y = (dw * da) * (float)isum.
    auto row = [&](int64_t m) {
      for (int64_t n = 0; n < N; n++) y[m * N + n] = (wd[size_t(n)] * acts.d[size_t(m)]) * float(acc[size_t(m * N + n)]);
    };
    if (M * N < 65536 || omp_get_max_threads() < 2) {  // no parallel region (about a microsecond)
      for (int64_t m = 0; m < M; m++) row(m);
      return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) row(m);
  }
  void forward_s32(const QuantActs& a, int32_t* y) override {
    QAT_CHECK(a.per_token && a.K == K, "forward_s32: needs per-token activations with K = ", K);
    run(a, 0);
    std::memcpy(y, acc.data(), acc.size() * 4);
  }
  void set_replicas(int n, int64_t M) override {
    Prim& p = prepare(M);
    const size_t bytes = p.pd.weights_desc().get_size();
    while (int(p.wei.size()) < n) {
      p.wei.emplace_back(p.pd.weights_desc(), eng);
      std::memcpy(p.wei.back().get_data_handle(), p.wei[0].get_data_handle(), bytes);
    }
    p.wei.resize(size_t(n));
  }
  int64_t weight_bytes() const override { return N * K + N * 4; }
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

QLinear::QLinear(Backend b, WFormat f, const int8_t* q, const float* d, int64_t N, int64_t K, const Kernels& t) {
  QAT_CHECK(N > 0 && K > 0 && K % QK == 0, "QLinear: weights (", N, ", ", K, "): K must be a positive multiple of 32");
  switch (b) {
    case Backend::native: impl_ = std::make_unique<NativeLinear>(f, q, d, N, K, t); break;
    case Backend::onednn: impl_ = std::make_unique<OneDnnLinear>(f, q, d, N, K); break;
    case Backend::openblas: impl_ = std::make_unique<BlasLinear>(f, q, d, N, K); break;
  }
}
QLinear::~QLinear() = default;
QLinear::QLinear(QLinear&&) noexcept = default;
QLinear& QLinear::operator=(QLinear&&) noexcept = default;

void QLinear::forward(const float* x, int64_t M, float* y, int replica) {
  if (M > 0) impl_->forward(x, M, y, replica);
}
void QLinear::forward_s32(const QuantActs& a, int32_t* y) { impl_->forward_s32(a, y); }
void QLinear::set_replicas(int n, int64_t M) {
  QAT_CHECK(n >= 1 && M >= 1, "set_replicas: need n >= 1 and M >= 1");
  impl_->set_replicas(n, M);
}
Backend QLinear::backend() const { return impl_->backend; }
int64_t QLinear::N() const { return impl_->N; }
int64_t QLinear::K() const { return impl_->K; }
int64_t QLinear::weight_bytes() const { return impl_->weight_bytes(); }

std::string backend_versions() {
  const dnnl_version_t* v = dnnl_version();
  std::string blas = openblas_get_config();
  return str("oneDNN ", v->major, ".", v->minor, ".", v->patch, " (", dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()),
             "), ", blas, " (", openblas_get_corename(), ")");
}

}  // namespace qat
