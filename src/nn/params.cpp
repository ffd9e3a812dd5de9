// One flat buffer for parameters, one for gradients (see params.h).
#include "src/nn/params.h"

#include <cstring>

namespace qat {

int ParamStore::add(const std::string& name, const Shape& shape, bool decay, bool log_space) {
  QAT_CHECK(!final_, "ParamStore: add('", name, "') after finalize()");
  QAT_CHECK(index_of(name) < 0, "ParamStore: duplicate parameter '", name, "'");
  int64_t n = shape_numel(shape);
  info_.push_back({name, shape, total_, n, decay, log_space});
  total_ += (n + 15) / 16 * 16;  // keep every view 64-byte aligned
  return int(info_.size()) - 1;
}

void ParamStore::finalize(bool trainable) {
  flat_ = Tensor::zeros({total_});
  flat_grad_ = trainable ? Tensor::zeros({total_}) : Tensor();
  tensors_.clear();
  for (const ParamInfo& p : info_) {
    Tensor t = flat_.slice(0, p.offset, p.offset + p.numel).reshape(p.shape);
    t.impl->name = p.name;
    if (trainable) {
      t.set_requires_grad();
      t.set_grad(flat_grad_.slice(0, p.offset, p.offset + p.numel).reshape(p.shape));
    }
    tensors_.push_back(t);
  }
  final_ = true;
}

int ParamStore::index_of(const std::string& name) const {
  for (size_t i = 0; i < info_.size(); i++)
    if (info_[i].name == name) return int(i);
  return -1;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const ParamInfo& p : info_) n += p.numel;
  return n;
}

void ParamStore::zero_grad() {
  QAT_CHECK(flat_grad_.defined(), "ParamStore: zero_grad() of parameters finalized without gradients");
  std::memset(flat_grad_.f32(), 0, flat_grad_.nbytes());
}

}  // namespace qat
