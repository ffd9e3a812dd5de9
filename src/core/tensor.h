// Tensor: a handle to shared, 64-byte-aligned storage plus dtype, shape, strides (in elements) and an
// offset. Copies of a Tensor share everything (like a Python reference); views (reshape, transpose,
// slice: src/ops/shape.cpp) share the storage. Autograd state lives here too (requires_grad, grad,
// grad_fn): see autograd.h for how backward() walks it.
// Read next: autograd.h, then src/ops/ops.h (every op) and src/ops/elementwise.cpp (one op family).
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "src/core/dtype.h"
#include "src/core/storage.h"
#include "src/util/error.h"

namespace qat {

using Shape = std::vector<int64_t>;
struct Node;
struct BackwardObserver;  // autograd.h

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::f32;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements

  // autograd
  bool requires_grad = false;
  bool retain_grad = false;          // keep .grad of a non-leaf after backward
  std::shared_ptr<TensorImpl> grad;  // f32, same shape, contiguous
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor (null for leaves)
  std::string name;                  // optional, for errors and the profiler
};

class Tensor {
 public:
  std::shared_ptr<TensorImpl> impl;

  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> p) : impl(std::move(p)) {}

  // ---- factories (contiguous, f32 unless said) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);
  static Tensor from_s32(const Shape& shape, const std::vector<int32_t>& values);
  // Standard normal values from a counter-based generator keyed on (seed, index): thread-count independent.
  static Tensor randn(const Shape& shape, uint64_t seed, float stddev = 1.0f);
  static Tensor uniform(const Shape& shape, uint64_t seed, float lo, float hi);
  // A view of memory the caller keeps alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype);

  // ---- metadata ----
  bool defined() const { return impl != nullptr; }
  const Shape& shape() const { return impl->shape; }
  const Shape& strides() const { return impl->strides; }
  int ndim() const { return int(impl->shape.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(impl->shape); }
  DType dtype() const { return impl->dtype; }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string shape_string() const;

  // ---- data access (checks dtype; pointer to element 0 of this view) ----
  template <class T>
  T* data() const;
  float* f32() const { return data<float>(); }
  float item() const;  // a one-element f32 tensor's value
  std::vector<float> to_vector() const;  // f32, in logical (row-major) order
  float at(std::initializer_list<int64_t> idx) const;

  // ---- copies and conversions ----
  Tensor contiguous() const;  // this if already contiguous (no copy), else a copy; autograd-aware
  Tensor clone() const;       // always a fresh contiguous copy; not recorded by autograd
  void copy_from(const Tensor& src);  // same shape and dtype; elementwise copy, any strides

  // ---- autograd ----
  bool requires_grad() const { return impl->requires_grad; }
  Tensor& set_requires_grad(bool r = true);
  Tensor grad() const { return impl->grad ? Tensor(impl->grad) : Tensor(); }
  void set_grad(const Tensor& g);  // installs g as the grad buffer (e.g. a view into a flat buffer)
  void zero_grad();
  Tensor detach() const;  // shares storage, cut from the graph
  // This must hold one element; seeds d(this) = 1. `obs` (may be null) is told as each leaf's
  // gradient becomes final and after each node (autograd.h BackwardObserver).
  void backward(BackwardObserver* obs = nullptr) const;
  void retain_grad() const { impl->retain_grad = true; }

  // ---- views (autograd-aware; defined in src/ops/shape.cpp) ----
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int a, int b) const;
  Tensor permute(const std::vector<int>& order) const;
  Tensor slice(int dim, int64_t start, int64_t end) const;
};

template <class T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::f16; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::s8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::s32; };

template <class T>
T* Tensor::data() const {
  QAT_CHECK(impl, "tensor: data() of an undefined tensor");
  QAT_CHECK(impl->dtype == DTypeOf<T>::value, "tensor: asked for ", dtype_name(DTypeOf<T>::value),
            " data of a ", dtype_name(impl->dtype), " tensor");
  if (!impl->storage || !impl->storage->data) return nullptr;
  return static_cast<T*>(impl->storage->data) + impl->offset;
}

// "shape mismatch in <op>: (2, 3) vs (3, 2)"
[[noreturn]] void shape_error(const char* op, const Shape& a, const Shape& b);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
int normalize_dim(int dim, int ndim, const char* op);

}  // namespace qat
