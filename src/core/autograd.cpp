// The backward engine: topological sort from the root, then each node's backward in reverse order.
#include "src/core/autograd.h"

#include <unordered_set>

#include "src/util/profile.h"

namespace qat {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }
void set_backward_cost(const Tensor& out, double flops, double bytes) {
  if (out.impl->grad_fn) {
    out.impl->grad_fn->flops = flops;
    out.impl->grad_fn->bytes = bytes;
  }
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(const Tensor& out, const char* op, std::vector<Tensor> inputs, BackwardFn fn) {
  if (!g_grad_enabled) return;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(fn);
  out.impl->grad_fn = std::move(node);
  out.impl->requires_grad = true;
}

Tensor grad_buffer(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return Tensor();
  if (!t.impl->grad) t.impl->grad = Tensor::zeros(t.shape()).impl;
  return Tensor(t.impl->grad);
}

void Tensor::backward(BackwardObserver* obs) const {
  QAT_CHECK(numel() == 1, "backward: needs a one-element tensor (a loss), got shape ", shape_string());
  QAT_CHECK(requires_grad(), "backward: the tensor does not require grad (no parameter reaches it)");

  // Iterative post-order DFS: `order` ends with the root; every node comes after all its inputs.
  // `order` holds owning pointers: releasing a node below must not free a tensor still to be visited.
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{impl, 0}};
  seen.insert(impl.get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    const Node* node = t->grad_fn.get();
    if (node && next < node->inputs.size()) {
      const std::shared_ptr<TensorImpl>& in = node->inputs[next++].impl;
      if (in && in->requires_grad && seen.insert(in.get()).second) stack.push_back({in, 0});
      continue;
    }
    order.push_back(t);
    stack.pop_back();
  }

  NoGrad no_higher_order;  // backward functions run ops on plain tensors; nothing is recorded
  Tensor seed = grad_buffer(*this);
  seed.f32()[0] += 1.0f;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const std::shared_ptr<TensorImpl>& t = *it;
    std::shared_ptr<Node> node = t->grad_fn;
    if (!node) {  // a leaf: its grad stays, and is final (every node using it came before)
      if (obs) obs->leaf_done(Tensor(t));
      continue;
    }
    if (t->grad) {
      prof::Scope scope(node->op, prof::Phase::backward, node->flops, node->bytes);
      node->backward(Tensor(t), Tensor(t->grad));
    }
    // Free the graph as we go (no retain_graph): saved tensors and intermediate grads.
    t->grad_fn.reset();
    if (!t->retain_grad) t->grad.reset();
    if (obs) obs->node_done();
  }
}

}  // namespace qat
