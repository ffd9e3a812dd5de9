// Views and copies: reshape, transpose, permute, slice share storage; contiguous and concat copy.
// Backward of a view routes the gradient back through the inverse view (accumulate handles strides).
#include <cstring>
#include <numeric>

#include "src/ops/ops.h"
#include "src/ops/strided.h"
#include "src/util/profile.h"

namespace qat {

static Tensor view_of(const Tensor& a, Shape shape, Shape strides, int64_t offset) {
  auto p = std::make_shared<TensorImpl>();
  p->storage = a.impl->storage;
  p->dtype = a.dtype();
  p->shape = std::move(shape);
  p->strides = std::move(strides);
  p->offset = offset;
  return Tensor(p);
}

Tensor contiguous(const Tensor& a) {
  if (a.is_contiguous()) return a;
  QAT_PROF("contiguous", forward, 0.0, 8.0 * double(a.numel()));
  Tensor out = a.clone();
  record(out, "contiguous", {a}, [a](const Tensor&, const Tensor& dout) { accumulate(grad_buffer(a), dout); });
  return out;
}

Tensor reshape(const Tensor& a, const Shape& shape_in) {
  Shape shape = shape_in;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < int(shape.size()); i++) {
    if (shape[i] == -1) {
      QAT_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape_in));
      infer = i;
    } else {
      QAT_CHECK(shape[i] >= 0, "reshape: bad dimension in ", shape_str(shape_in));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    QAT_CHECK(known > 0 && a.numel() % known == 0, "reshape: cannot reshape ", a.shape_string(), " to ",
              shape_str(shape_in));
    shape[infer] = a.numel() / known;
  }
  if (shape_numel(shape) != a.numel()) fail("reshape: cannot reshape ", a.shape_string(), " to ", shape_str(shape_in));
  Tensor c = contiguous(a);
  Tensor out = view_of(c, shape, contiguous_strides(shape), c.impl->offset);
  record(out, "reshape", {c}, [c](const Tensor&, const Tensor& dout) {
    accumulate(grad_buffer(c), dout.reshape(c.shape()));
  });
  return out;
}

Tensor permute(const Tensor& a, const std::vector<int>& order) {
  int nd = a.ndim();
  QAT_CHECK(int(order.size()) == nd, "permute: ", order.size(), " dims given for a ", nd, "-d tensor");
  Shape shape(nd), strides(nd);
  std::vector<int> inverse(nd, -1);
  for (int i = 0; i < nd; i++) {
    int d = normalize_dim(order[i], nd, "permute");
    QAT_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = i;
    shape[i] = a.shape()[d];
    strides[i] = a.strides()[d];
  }
  Tensor out = view_of(a, shape, strides, a.impl->offset);
  record(out, "permute", {a}, [a, inverse](const Tensor&, const Tensor& dout) {
    accumulate(grad_buffer(a), permute(dout, inverse));
  });
  return out;
}

Tensor transpose(const Tensor& a, int d0, int d1) {
  std::vector<int> order(static_cast<size_t>(a.ndim()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(d0, a.ndim(), "transpose")], order[normalize_dim(d1, a.ndim(), "transpose")]);
  return permute(a, order);
}

Tensor slice(const Tensor& a, int dim, int64_t start, int64_t end) {
  int d = normalize_dim(dim, a.ndim(), "slice");
  int64_t n = a.shape()[d];
  QAT_CHECK(0 <= start && start <= end && end <= n, "slice: [", start, ", ", end, ") out of range for dim ",
            d, " of ", a.shape_string());
  Shape shape = a.shape();
  shape[d] = end - start;
  Tensor out = view_of(a, shape, a.strides(), a.impl->offset + start * a.strides()[d]);
  record(out, "slice", {a}, [a, d, start, end](const Tensor&, const Tensor& dout) {
    accumulate(slice(grad_buffer(a), d, start, end), dout);
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& parts, int dim) {
  QAT_CHECK(!parts.empty(), "concat: no tensors");
  int nd = parts[0].ndim();
  int d = normalize_dim(dim, nd, "concat");
  Shape shape = parts[0].shape();
  shape[d] = 0;
  for (const Tensor& p : parts) {
    QAT_CHECK(p.ndim() == nd && p.dtype() == parts[0].dtype(), "concat: parts differ in rank or dtype");
    for (int i = 0; i < nd; i++)
      if (i != d && p.shape()[i] != parts[0].shape()[i]) shape_error("concat", parts[0].shape(), p.shape());
    shape[d] += p.shape()[d];
  }
  QAT_PROF("concat", forward, 0.0, 8.0 * double(shape_numel(shape)));
  Tensor out = Tensor::empty(shape, parts[0].dtype());
  std::vector<int64_t> starts;
  int64_t at = 0;
  {
    NoGrad ng;
    for (const Tensor& p : parts) {
      starts.push_back(at);
      slice(out, d, at, at + p.shape()[d]).copy_from(p);
      at += p.shape()[d];
    }
  }
  record(out, "concat", parts, [parts, starts, d](const Tensor&, const Tensor& dout) {
    for (size_t i = 0; i < parts.size(); i++)
      if (Tensor g = grad_buffer(parts[i]); g.defined())
        accumulate(g, slice(dout, d, starts[i], starts[i] + parts[i].shape()[d]));
  });
  return out;
}

Tensor Tensor::contiguous() const { return qat::contiguous(*this); }
Tensor Tensor::reshape(const Shape& s) const { return qat::reshape(*this, s); }
Tensor Tensor::transpose(int a, int b) const { return qat::transpose(*this, a, b); }
Tensor Tensor::permute(const std::vector<int>& order) const { return qat::permute(*this, order); }
Tensor Tensor::slice(int dim, int64_t start, int64_t end) const { return qat::slice(*this, dim, start, end); }

}  // namespace qat
