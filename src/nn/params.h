// ParamStore: every trainable tensor of a model as a view into ONE contiguous f32 buffer, and every
// gradient as a view into one gradient buffer of the same layout. The optimizer walks the buffers in
// one pass; gradient clipping takes one norm; data-parallel training can all-reduce one buffer.
// Read next: src/optim/adamw.h.
#pragma once
#include <string>
#include <vector>

#include "src/core/tensor.h"

namespace qat {

struct ParamInfo {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj.weight" (HF Llama names)
  Shape shape;
  int64_t offset;    // into the flat buffers, in elements (multiple of 16: 64-byte aligned views)
  int64_t numel;
  bool decay;        // AdamW weight decay applies
  bool log_space = false;  // AdamW updates log(p) (positive scales: steps relative to the magnitude)
  float lr_mult = 1.0f;    // AdamW's step for this parameter is lr * lr_mult
};

class ParamStore {
 public:
  // Declares a parameter; call before finalize(). Returns its index.
  int add(const std::string& name, const Shape& shape, bool decay, bool log_space = false);
  // Allocates the flat buffers (zeros) and creates the views with requires_grad and grad set.
  // trainable false: no gradient buffer and no requires_grad (a model only evaluated or quantized:
  // the gradients would be as large as the weights, and forwards would build graphs for nothing).
  void finalize(bool trainable = true);

  Tensor& operator[](int i) { return tensors_[size_t(i)]; }
  const Tensor& operator[](int i) const { return tensors_[size_t(i)]; }
  int index_of(const std::string& name) const;  // -1 when absent
  int size() const { return int(info_.size()); }
  const ParamInfo& info(int i) const { return info_[size_t(i)]; }
  const std::vector<ParamInfo>& infos() const { return info_; }
  void set_lr_mult(int i, float m) { info_[size_t(i)].lr_mult = m; }

  Tensor& flat() { return flat_; }           // (total,) all parameters
  Tensor& flat_grad() { return flat_grad_; }  // (total,) all gradients
  int64_t total() const { return total_; }    // elements, padding included
  int64_t count() const;                     // parameters, padding excluded
  void zero_grad();

 private:
  std::vector<ParamInfo> info_;
  std::vector<Tensor> tensors_;
  Tensor flat_, flat_grad_;
  int64_t total_ = 0;
  bool final_ = false;
};

}  // namespace qat
