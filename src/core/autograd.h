// Reverse-mode autograd, micrograd-sized. Every op that may need a gradient records one Node on its
// output: the input tensors and a backward function. Tensor::backward() sorts the graph topologically
// and walks it in reverse; each backward function ADDS (+=) into its inputs' gradient buffers, so a
// tensor used twice receives both contributions. Read next: src/ops/ops.h.
#pragma once
#include <functional>
#include <vector>

#include "src/core/tensor.h"

namespace qat {

// backward(out, dout): out is the tensor the node produced (passed in, not captured, so that a node
// never owns its own output and no reference cycle forms); dout = dLoss/dout, contiguous f32.
using BackwardFn = std::function<void(const Tensor& out, const Tensor& dout)>;

struct Node {
  const char* op = "";
  std::vector<Tensor> inputs;  // the tensors this node sends gradient to
  BackwardFn backward;
  double flops = 0, bytes = 0;  // work of the backward, for the profiler (0: unknown)
};

// Watches one backward pass (data-parallel training sends each parameter's gradient while the
// backward still runs). The walk visits a leaf after every node that sends it gradient (reverse
// topological order), so at leaf_done the leaf's gradient is final.
struct BackwardObserver {
  virtual ~BackwardObserver() = default;
  virtual void leaf_done(const Tensor& leaf) = 0;  // leaf's .grad will not change again in this pass
  virtual void node_done() = 0;                    // after each node's backward: a moment for other work
};

// Gradient recording is on by default; NoGrad turns it off for a scope (inference, optimizer updates).
bool grad_enabled();
struct NoGrad {
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};

// True when recording is on and at least one input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Records `fn` as the backward of `out` (marks out.requires_grad) when needs_grad(inputs).
void record(const Tensor& out, const char* op, std::vector<Tensor> inputs, BackwardFn fn);

// The gradient buffer of t, allocated as zeros on first use: f32, contiguous, t's shape. Undefined when
// t does not require grad, so backward functions write `if (Tensor dx = grad_buffer(x); dx.defined())`.
Tensor grad_buffer(const Tensor& t);

// Declares the backward's work of the node that produced `out` (profiler columns GFLOP/s, GB/s).
void set_backward_cost(const Tensor& out, double flops, double bytes);

}  // namespace qat
