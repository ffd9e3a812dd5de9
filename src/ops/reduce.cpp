// sum / mean over all elements or over chosen axes. Each output element is summed sequentially in
// double, in row-major order of the reduced indices: deterministic at any thread count.
// Backward: every input element receives the gradient of the output element it was summed into.
#include <algorithm>

#include "src/core/parallel.h"
#include "src/ops/ops.h"
#include "src/ops/strided.h"
#include "src/util/profile.h"

namespace qat {

Tensor expand_view(const Tensor& t, const Shape& shape) {
  auto p = std::make_shared<TensorImpl>(*t.impl);
  p->requires_grad = false;
  p->grad.reset();
  p->grad_fn.reset();
  p->shape = shape;
  p->strides = broadcast_strides(t, shape);
  return Tensor(p);
}

Tensor sum(const Tensor& a) {
  std::vector<int> all(static_cast<size_t>(a.ndim()));
  for (int d = 0; d < a.ndim(); d++) all[d] = d;
  return sum(a, all, false);
}

Tensor sum(const Tensor& a, std::vector<int> dims, bool keepdim) {
  QAT_CHECK(a.dtype() == DType::f32, "sum: takes f32, got ", dtype_name(a.dtype()));
  QAT_PROF("sum", forward, double(a.numel()), 4.0 * double(a.numel()));
  int nd = a.ndim();
  std::vector<bool> reduced(static_cast<size_t>(nd), false);
  for (int& d : dims) {
    d = normalize_dim(d, nd, "sum");
    QAT_CHECK(!reduced[d], "sum: dim ", d, " listed twice");
    reduced[d] = true;
  }
  Shape keep_shape, kept, red, kept_strides, red_strides;  // keep_shape: with 1s (keepdim form)
  for (int d = 0; d < nd; d++) {
    keep_shape.push_back(reduced[d] ? 1 : a.shape()[d]);
    if (reduced[d]) { red.push_back(a.shape()[d]); red_strides.push_back(a.strides()[d]); }
    else { kept.push_back(a.shape()[d]); kept_strides.push_back(a.strides()[d]); }
  }
  Tensor out = Tensor::empty(kept);
  float* o = out.f32();
  const float* x = a.f32();
  int64_t n_out = shape_numel(kept), n_red = shape_numel(red);
  if (a.is_contiguous() && n_out == 1) {
    o[0] = float(det_sum(x, n_red));
  } else {
#pragma omp parallel for schedule(static) if (n_out * n_red > 65536)
    for (int64_t i = 0; i < n_out; i++) {
      int64_t base = 0, rem = i;
      for (int d = int(kept.size()) - 1; d >= 0; d--) { base += (rem % kept[d]) * kept_strides[d]; rem /= kept[d]; }
      double s = 0;
      for (int64_t j = 0; j < n_red; j++) {
        int64_t off = base, r = j;
        for (int d = int(red.size()) - 1; d >= 0; d--) { off += (r % red[d]) * red_strides[d]; r /= red[d]; }
        s += x[off];
      }
      o[i] = float(s);
    }
  }
  if (keepdim) out = Tensor(out.reshape(keep_shape).impl);
  record(out, "sum", {a}, [a, keep_shape](const Tensor&, const Tensor& dout) {
    accumulate(grad_buffer(a), expand_view(dout.reshape(keep_shape), a.shape()));
  });
  return out;
}

Tensor mean(const Tensor& a) { return scale(sum(a), a.numel() ? 1.0f / float(a.numel()) : 0.0f); }

Tensor mean(const Tensor& a, std::vector<int> dims, bool keepdim) {
  int64_t n = 1;
  for (int d : dims) n *= a.dim(d);
  return scale(sum(a, dims, keepdim), n ? 1.0f / float(n) : 0.0f);
}

}  // namespace qat
