// Tensor factories, metadata, element access and copies. Views live in src/ops/shape.cpp.
#include "src/core/tensor.h"

#include <cstring>

#include "src/core/autograd.h"
#include "src/core/parallel.h"
#include "src/core/rng.h"

namespace qat {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = int(s.size()) - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

void shape_error(const char* op, const Shape& a, const Shape& b) {
  fail("shape mismatch in ", op, ": ", shape_str(a), " vs ", shape_str(b));
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) shape_error(op, a.shape(), b.shape());
}

int normalize_dim(int dim, int ndim, const char* op) {
  int d = dim < 0 ? dim + ndim : dim;
  QAT_CHECK(d >= 0 && d < ndim, op, ": dim ", dim, " out of range for a ", ndim, "-d tensor");
  return d;
}

static Tensor make(const Shape& shape, DType dtype, bool zero) {
  for (int64_t d : shape) QAT_CHECK(d >= 0, "tensor: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->dtype = dtype;
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->storage = make_storage(size_t(shape_numel(shape)) * dtype_size(dtype), zero);
  return Tensor(impl);
}

Tensor Tensor::empty(const Shape& shape, DType dtype) { return make(shape, dtype, false); }
Tensor Tensor::zeros(const Shape& shape, DType dtype) { return make(shape, dtype, true); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); i++) p[i] = value;
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  QAT_CHECK(int64_t(values.size()) == shape_numel(shape), "Tensor::from: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor t = empty(shape);
  if (!values.empty()) std::memcpy(t.f32(), values.data(), values.size() * 4);
  return t;
}

Tensor Tensor::from_s32(const Shape& shape, const std::vector<int32_t>& values) {
  QAT_CHECK(int64_t(values.size()) == shape_numel(shape), "Tensor::from_s32: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::s32);
  if (!values.empty()) std::memcpy(t.data<int32_t>(), values.data(), values.size() * 4);
  return t;
}

Tensor Tensor::randn(const Shape& shape, uint64_t seed, float stddev) {
  Tensor t = empty(shape);
  float* p = t.f32();
  int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) p[i] = stddev * rng_normal(seed, 0, uint64_t(i));
  return t;
}

Tensor Tensor::uniform(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = empty(shape);
  float* p = t.f32();
  int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * rng_uniform(seed, 1, uint64_t(i));
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->dtype = dtype;
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->storage = std::make_shared<Storage>(data, size_t(shape_numel(shape)) * dtype_size(dtype));
  return Tensor(impl);
}

int64_t Tensor::dim(int i) const { return impl->shape[normalize_dim(i, ndim(), "dim")]; }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int i = ndim() - 1; i >= 0; i--) {
    if (impl->shape[i] != 1 && impl->strides[i] != acc) return false;
    acc *= impl->shape[i];
  }
  return true;
}

std::string Tensor::shape_string() const { return shape_str(impl->shape); }

// Calls f(linear_index, element_offset) for every element in row-major order.
template <class F>
static void for_each_offset(const Shape& shape, const Shape& strides, int64_t offset, F f) {
  int nd = int(shape.size());
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(nd, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; i++) {
    f(i, off);
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

float Tensor::item() const {
  QAT_CHECK(numel() == 1, "item: tensor of shape ", shape_string(), " has ", numel(), " elements");
  return f32()[0];
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  const float* base = static_cast<const float*>(impl->storage ? impl->storage->data : nullptr);
  QAT_CHECK(dtype() == DType::f32, "to_vector: needs f32, got ", dtype_name(dtype()));
  for_each_offset(shape(), strides(), impl->offset, [&](int64_t i, int64_t off) { v[i] = base[off]; });
  return v;
}

float Tensor::at(std::initializer_list<int64_t> idx) const {
  QAT_CHECK(int(idx.size()) == ndim(), "at: ", idx.size(), " indices for shape ", shape_string());
  int64_t off = 0;
  int d = 0;
  for (int64_t i : idx) {
    QAT_CHECK(i >= 0 && i < impl->shape[d], "at: index ", i, " out of range for dim ", d, " of ",
              shape_string());
    off += i * impl->strides[d++];
  }
  return f32()[off];
}

void Tensor::copy_from(const Tensor& src) {
  check_same_shape("copy_from", *this, src);
  QAT_CHECK(dtype() == src.dtype(), "copy_from: dtype ", dtype_name(src.dtype()), " into ",
            dtype_name(dtype()));
  if (numel() == 0) return;
  size_t es = dtype_size(dtype());
  char* dst_base = static_cast<char*>(impl->storage->data);
  const char* src_base = static_cast<const char*>(src.impl->storage->data);
  if (is_contiguous() && src.is_contiguous()) {
    std::memmove(dst_base + impl->offset * es, src_base + src.impl->offset * es, nbytes());
    return;
  }
  // Gather src's offsets in row-major order, then scatter into this view's offsets.
  std::vector<int64_t> src_off(static_cast<size_t>(numel()));
  for_each_offset(src.shape(), src.strides(), src.impl->offset,
                  [&](int64_t i, int64_t off) { src_off[i] = off; });
  for_each_offset(shape(), strides(), impl->offset, [&](int64_t i, int64_t off) {
    std::memcpy(dst_base + off * es, src_base + src_off[i] * es, es);
  });
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype());
  t.copy_from(*this);
  return t;
}

Tensor& Tensor::set_requires_grad(bool r) {
  QAT_CHECK(!r || dtype() == DType::f32, "requires_grad: only f32 tensors can have gradients");
  impl->requires_grad = r;
  return *this;
}

void Tensor::set_grad(const Tensor& g) {
  check_same_shape("set_grad", *this, g);
  QAT_CHECK(g.dtype() == DType::f32 && g.is_contiguous(), "set_grad: needs a contiguous f32 buffer");
  impl->grad = g.impl;
}

void Tensor::zero_grad() {
  if (!impl->grad) return;
  std::memset(Tensor(impl->grad).f32(), 0, Tensor(impl->grad).nbytes());
}

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>();
  p->storage = impl->storage;
  p->dtype = impl->dtype;
  p->shape = impl->shape;
  p->strides = impl->strides;
  p->offset = impl->offset;
  return Tensor(p);
}

}  // namespace qat
