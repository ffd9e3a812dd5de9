// add / sub / mul / div with numpy broadcasting, and scale. Forward and backward side by side.
// Backward of broadcasting: the gradient of a broadcast operand is the output gradient summed over
// the dimensions it was stretched along (reduce_to_shape).
#include <cstring>

#include "src/ops/ops.h"
#include "src/ops/strided.h"
#include "src/util/profile.h"

namespace qat {

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  int nd = int(out.size()), tn = t.ndim();
  Shape s(nd, 0);
  for (int d = 0; d < tn; d++) {
    int od = nd - tn + d;
    s[od] = t.shape()[d] == 1 && out[od] != 1 ? 0 : t.strides()[d];
  }
  return s;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t nd = std::max(a.size(), b.size());
  Shape out(nd);
  for (size_t i = 0; i < nd; i++) {
    int64_t da = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
    int64_t db = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
    if (da != db && da != 1 && db != 1) fail("cannot broadcast shapes ", shape_str(a), " and ", shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void accumulate(const Tensor& dst, const Tensor& src) {
  check_same_shape("accumulate", dst, src);
  float* d = dst.f32();
  const float* s = src.f32();
  int64_t n = dst.numel();
  if (src.is_contiguous() && dst.is_contiguous()) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
    return;
  }
  const Shape st[2] = {dst.strides(), src.strides()};
  const int64_t base[2] = {0, 0};
  int64_t inner = dst.ndim() ? dst.dim(-1) : 1;
  int64_t sd = dst.ndim() ? dst.strides().back() : 0, ss = dst.ndim() ? src.strides().back() : 0;
  for_each_row<2>(dst.shape(), st, base, [&](int64_t, const int64_t* off) {
    for (int64_t i = 0; i < inner; i++) d[off[0] + i * sd] += s[off[1] + i * ss];
  }, n > 32768);
}

Tensor reduce_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  int nd = g.ndim(), tn = int(shape.size());
  QAT_CHECK(tn <= nd, "reduce_to_shape: ", g.shape_string(), " cannot reduce to ", shape_str(shape));
  std::vector<int> dims;
  for (int d = 0; d < nd; d++) {
    int td = d - (nd - tn);
    if (td < 0 || (shape[td] == 1 && g.shape()[d] != 1)) dims.push_back(d);
  }
  NoGrad ng;
  return reshape(sum(g, dims, false), shape);
}

// out[i] = f(a[i], b[i]) with broadcasting.
template <class F>
static Tensor binary_map(const Tensor& a, const Tensor& b, F f) {
  QAT_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32, "elementwise ops take f32 tensors");
  Shape out_shape = broadcast_shapes(a.shape(), b.shape());
  QAT_PROF("elementwise", forward, double(shape_numel(out_shape)), 12.0 * double(shape_numel(out_shape)));
  Tensor out = Tensor::empty(out_shape);
  float* o = out.f32();
  const float* pa = a.f32();
  const float* pb = b.f32();
  int64_t n = out.numel();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) o[i] = f(pa[i], pb[i]);
    return out;
  }
  const Shape st[3] = {out.strides(), broadcast_strides(a, out_shape), broadcast_strides(b, out_shape)};
  const int64_t base[3] = {0, 0, 0};
  int64_t inner = out_shape.empty() ? 1 : out_shape.back();
  int64_t sa = out_shape.empty() ? 0 : st[1].back(), sb = out_shape.empty() ? 0 : st[2].back();
  for_each_row<3>(out_shape, st, base, [&](int64_t, const int64_t* off) {
    for (int64_t i = 0; i < inner; i++) o[off[0] + i] = f(pa[off[1] + i * sa], pb[off[2] + i * sb]);
  }, n > 32768);
  return out;
}

// Adds g (the output's shape) into x's gradient, summing over broadcast dims.
static void accumulate_broadcast(const Tensor& x, const Tensor& g) {
  if (Tensor dx = grad_buffer(x); dx.defined()) accumulate(dx, reduce_to_shape(g, x.shape()));
}

// ---- add / sub: d(a+b) = (dout, dout); d(a-b) = (dout, -dout) ----
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(a, b, [](float x, float y) { return x + y; });
  record(out, "add", {a, b}, [a, b](const Tensor&, const Tensor& dout) {
    accumulate_broadcast(a, dout);
    accumulate_broadcast(b, dout);
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(a, b, [](float x, float y) { return x - y; });
  record(out, "sub", {a, b}, [a, b](const Tensor&, const Tensor& dout) {
    accumulate_broadcast(a, dout);
    if (b.requires_grad()) accumulate_broadcast(b, scale(dout, -1.0f));
  });
  return out;
}

// ---- mul: d(a*b) = (dout*b, dout*a) ----
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(a, b, [](float x, float y) { return x * y; });
  record(out, "mul", {a, b}, [a, b](const Tensor&, const Tensor& dout) {
    NoGrad ng;
    if (a.requires_grad()) accumulate_broadcast(a, binary_map(dout, b, [](float g, float y) { return g * y; }));
    if (b.requires_grad()) accumulate_broadcast(b, binary_map(dout, a, [](float g, float x) { return g * x; }));
  });
  return out;
}

// ---- div: d(a/b) = (dout/b, -dout*a/b^2) = (dout/b, -dout*out/b) ----
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_map(a, b, [](float x, float y) { return x / y; });
  record(out, "div", {a, b}, [a, b](const Tensor& out, const Tensor& dout) {
    NoGrad ng;
    Tensor g_over_b = binary_map(dout, b, [](float g, float y) { return g / y; });
    if (a.requires_grad()) accumulate_broadcast(a, g_over_b);
    if (b.requires_grad())
      accumulate_broadcast(b, binary_map(g_over_b, out, [](float gb, float o) { return -gb * o; }));
  });
  return out;
}

// ---- scale: d(a*s) = dout*s ----
Tensor scale(const Tensor& a, float s) {
  QAT_PROF("scale", forward, double(a.numel()), 8.0 * double(a.numel()));
  Tensor c = a.is_contiguous() ? a : a.clone();
  Tensor out = Tensor::empty(a.shape());
  const float* x = c.f32();
  float* o = out.f32();
  int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; i++) o[i] = x[i] * s;
  record(out, "scale", {a}, [a, s](const Tensor&, const Tensor& dout) {
    Tensor da = grad_buffer(a);
    float* g = da.f32();
    const float* d = dout.f32();
    int64_t n = da.numel();
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; i++) g[i] += d[i] * s;
  });
  return out;
}

}  // namespace qat
